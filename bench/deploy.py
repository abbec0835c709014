"""Deploy benchmark: cold deploy, re-deploy, idle memory of the fallback, bundle size.

Run as root: ``.venv/bin/python bench/deploy.py [--agents N]``. Uses its own lab
(bridge planb2, 10.77.2.0/24) on the cached image and the current offline bundle
(built first if needed), so it does not disturb a lab that is up. Prints each
figure next to the issue's aim; the re-deploy is also given as a ratio of a plain
Ansible run of the same inventory that changes nothing (``ansible -m ping`` on all
hosts, measured in the same run), which is the floor any re-deploy pays.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from planb.bundle import build_bundle
from planb.config import LabConfig, load_config
from planb.lab.lab import Lab
from planb.lab.site import write_lab_site
from planb.lab.topology import build_topology
from planb.provisioning.deploy import run_deploy

#: The fallback's services and how to find their processes (``ps -C`` names).
SERVICES = {
    "slapd": ["slapd"],
    "postgres": ["postgres"],
    "synapse": ["python3", "python"],
    "nginx": ["nginx"],
    "coturn": ["turnserver"],
}
GIB = 1024 ** 3


def idle_rss(lab: Lab, host: str) -> dict[str, int]:
    """Resident memory (bytes) of each service's processes on ``host``."""
    result: dict[str, int] = {}
    for service, names in SERVICES.items():
        out = lab.run_on(host, ["ps", "-o", "rss=,args=", "-C", ",".join(names)]).stdout
        total = 0
        for line in out.splitlines():
            rss, _, args = line.strip().partition(" ")
            if service == "synapse" and "synapse" not in args:
                continue
            total += int(rss) * 1024
        result[service] = total
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=9000, help="synthetic agents (9000)")
    parser.add_argument("--idle-seconds", type=float, default=30.0,
                        help="wait before measuring idle memory (30)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/deploy.py needs root", file=sys.stderr)
        return 2
    bundle = build_bundle()
    work = Path(tempfile.mkdtemp(prefix="planb-bench-deploy-"))
    lab_config = LabConfig(subnet="10.77.2.0/24", bridge="planb2", agents=args.agents)
    topology = build_topology(lab_config.subnet, lab_config.bridge)
    site_dir = work / "site"
    path = write_lab_site(site_dir, topology, site_dir / ".planb/lab/id_ed25519", lab_config)
    site = load_config(path)
    lab = Lab(site)
    try:
        lab.up()
        started = time.monotonic()
        first = run_deploy(site)
        cold = time.monotonic() - started
        if not first.ok:
            print(f"deploy failed: {[f.describe() for f in first.failures]}", file=sys.stderr)
            return 1
        started = time.monotonic()
        second = run_deploy(site)
        again = time.monotonic() - started
        started = time.monotonic()
        ansible = Path(sys.executable).parent / "ansible"
        subprocess.run([str(ansible), "all", "-i", str(site.inventory_dir),
                        "-m", "ansible.builtin.ping"], capture_output=True, check=False)
        ping = time.monotonic() - started
        time.sleep(args.idle_seconds)
        rss = idle_rss(lab, "fallback")
        total = sum(rss.values())
        size = bundle.archive_size
        print(f"agents: {args.agents}")
        print(f"cold deploy     {cold:7.1f} s   aim < 360 s")
        print(f"re-deploy       {again:7.1f} s   aim < 90 s   changed={second.changed_total} "
              f"({again / ping:.1f}x a no-op ansible ping of all hosts, {ping:.1f} s)")
        print("idle memory on the fallback (RSS):")
        for service, value in rss.items():
            print(f"  {service:9s} {value / 2**20:7.1f} MiB")
        print(f"  total     {total / 2**20:7.1f} MiB   aim < 1024 MiB "
              f"({total / GIB:.2f} of 1 GiB)")
        print(f"bundle size     {size / 2**20:7.1f} MiB ({len(bundle.manifest.items)} items)")
        return 0
    finally:
        if (site.state_dir / "lab" / "lab.json").exists():
            lab.down()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
