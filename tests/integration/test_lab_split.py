"""``planb lab up --split`` boots the split lab, ``planb deploy`` deploys it, and it verifies.

Its own lab, not the session's: the directory and messaging on their own hosts, on
its own bridge (PLANB_SPLIT_BRIDGE, default planb5, and PLANB_SPLIT_SUBNET) so it
never meets the session lab; 60 agents. Through the CLI as a user runs it, then
'planb verify' on the three fallback hosts, and 'lab down' at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from planb import state
from planb.config import LabConfig, load_config
from planb.lab.lab import Lab
from planb.lab.site import write_lab_site
from planb.lab.topology import build_topology

pytestmark = pytest.mark.lab
BRIDGE = os.environ.get("PLANB_SPLIT_BRIDGE", "planb5")
SUBNET = os.environ.get("PLANB_SPLIT_SUBNET", "10.77.5.0/24")


def planb(site_dir: Path, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PLANB_HOME": str(site_dir / "home"),
           "PLANB_CONFIG": str(site_dir / "planb.yml")}
    return subprocess.run([sys.executable, "-m", "planb.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def split_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    site_dir = tmp_path_factory.mktemp("splitsite")
    # Its own PLANB_HOME, so 'lab up' records this site as current there and not in the
    # machine's; the image, bundle, cache and bridge registry are the machine's.
    shared = state.planb_home()
    (site_dir / "home").mkdir()
    for name in ("images", "bundles", "cache", "bridges"):
        (shared / name).mkdir(parents=True, exist_ok=True)
        (site_dir / "home" / name).symlink_to(shared / name)
    lab = LabConfig(subnet=SUBNET, bridge=BRIDGE, agents=60, split=False)
    key = site_dir / ".planb" / "lab" / "id_ed25519"
    write_lab_site(site_dir, build_topology(SUBNET, BRIDGE, split=False), key, lab)
    try:
        yield site_dir
    finally:
        down = planb(site_dir, "lab", "down", timeout=600)
        assert down.returncode == 0, down.stderr
        assert not Lab(load_config(site_dir / "planb.yml")).status()


@pytest.fixture(scope="module")
def deployed_split(split_site: Path) -> Path:
    """The split lab booted by 'planb lab up --split' and deployed by 'planb deploy'."""
    up = planb(split_site, "lab", "up", "--split", timeout=1200)
    assert up.returncode == 0, up.stdout + up.stderr
    deployed = planb(split_site, "deploy")
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    return split_site


def test_lab_up_split_boots_and_deploys(deployed_split: Path) -> None:
    status = planb(deployed_split, "lab", "status", "--json")
    assert status.returncode == 0, status.stderr
    hosts = {h["name"]: h for h in json.loads(status.stdout[status.stdout.index("["):])}
    assert {"primary", "fallback", "directory", "messaging"} <= set(hosts), hosts
    inventory = (deployed_split / "inventories" / "lab" / "hosts.yml").read_text(
        encoding="utf-8")
    assert "directory:" in inventory and "messaging:" in inventory


def test_the_split_lab_passes_verify(deployed_split: Path) -> None:
    verified = planb(deployed_split, "verify", "--json")
    report = json.loads(verified.stdout[verified.stdout.index("{"):])
    problems = [(r["name"], r["host"], r["message"][:200]) for r in report["results"]
                if r["status"] not in ("pass", "skip")]
    assert verified.returncode == 0 and not problems, problems
    assert {"directory", "messaging"} <= {r["host"] for r in report["results"]}
