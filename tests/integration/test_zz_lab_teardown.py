"""Last of the session: 'lab down' leaves no process, link, mount or host folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from planb.lab.network import link_names
from tests.integration.conftest import TEST_BRIDGE, LabSession

pytestmark = pytest.mark.lab


def _live_nspawn_for(root: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = (proc / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        zombie = stat.rsplit(")", 1)[1].split()[0] == "Z"
        if "systemd-nspawn" in cmdline and str(root) in cmdline and not zombie:
            pids.append(int(proc.name))
    return pids


def test_lab_down_leaves_nothing_behind(lab_session: LabSession) -> None:
    site_dir = lab_session.site.base_dir
    assert _live_nspawn_for(site_dir), "the lab should be running before down"
    lab_session.lab.down()
    assert _live_nspawn_for(site_dir) == []
    links = link_names()
    assert TEST_BRIDGE not in links
    assert not [name for name in links if name.startswith(f"vb-p{TEST_BRIDGE[-1]}-")]
    mounts = Path("/proc/self/mounts").read_text()
    assert str(site_dir) not in mounts
    assert not (lab_session.site.state_dir / "lab" / "hosts").exists()
    assert lab_session.lab.status() == []
