"""Lab and deploy timings: cold and warm 'lab up', first deploy and re-deploy.

Run as root: ``.venv/bin/python bench/lab.py``. Uses its own bridge (planb2,
10.77.2.0/24) and a fresh image cache for the cold run, so it does not disturb a
lab that is up. Prints each figure next to the issue's aim, and the cold 'lab up'
as a ratio of a bare ``debootstrap`` of the same image measured in the same run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from planb.config import LabConfig, load_config
from planb.lab import image
from planb.lab.lab import Lab
from planb.lab.site import write_lab_site
from planb.lab.topology import build_topology
from planb.provisioning.deploy import run_deploy


def timed(label: str, action):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = action()
    elapsed = time.monotonic() - started
    print(f"  {label}: {elapsed:.1f} s", flush=True)
    return elapsed, result


def bare_debootstrap(target: Path) -> None:
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={','.join(image.PACKAGES)}",
         image.SUITE, str(target), os.environ.get(image.MIRROR_ENV, image.DEFAULT_MIRROR)],
        check=True, capture_output=True,
    )


def main() -> int:
    if os.geteuid() != 0:
        print("bench/lab.py needs root", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="planb-bench-lab-"))
    os.environ["PLANB_HOME"] = str(work / "home")
    lab_config = LabConfig(subnet="10.77.2.0/24", bridge="planb2")
    topology = build_topology(lab_config.subnet, lab_config.bridge)
    site_dir = work / "site"
    path = write_lab_site(site_dir, topology, site_dir / ".planb/lab/id_ed25519", lab_config)
    site = load_config(path)
    lab = Lab(site)
    try:
        print("baseline")
        base, _ = timed("bare debootstrap of the same image", lambda: bare_debootstrap(
            work / "baseline-rootfs"))
        shutil.rmtree(work / "baseline-rootfs")
        print("planb")
        cold, _ = timed("lab up, cold (no cached image)", lab.up)
        lab.down()
        warm, _ = timed("lab up, warm (cached image)", lab.up)
        first, result = timed("deploy", lambda: run_deploy(site))
        if not result.ok:
            print(f"deploy failed: {result.failures}", file=sys.stderr)
            return 1
        again, result2 = timed("re-deploy", lambda: run_deploy(site))
        print("summary")
        ratio = cold / base
        print(f"  cold lab up    {cold:7.1f} s  aim < 300 s   ({ratio:.2f}x bare debootstrap)")
        print(f"  warm lab up    {warm:7.1f} s  aim < 30 s")
        print(f"  deploy         {first:7.1f} s")
        print(f"  re-deploy      {again:7.1f} s  changed={result2.changed_total}")
        return 0
    finally:
        if (site.state_dir / "lab" / "lab.json").exists():
            lab.down()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
