"""The lab site planb.yml keeps, and the warning when it no longer matches the lab."""

from __future__ import annotations

from pathlib import Path

import pytest

from planb.config import LabConfig, load_config
from planb.lab.site import stale_primary_url, write_lab_site
from planb.lab.topology import build_topology


def test_kept_planb_yml_with_an_old_subnet_is_named_with_its_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    old = LabConfig(subnet="10.77.9.0/24", bridge="planb9")
    path = write_lab_site(tmp_path, build_topology(old.subnet, old.bridge, split=False),
                          tmp_path / "key", old)
    site = load_config(path)
    assert stale_primary_url(site, build_topology(old.subnet, old.bridge, split=False)) is None

    moved = build_topology("10.77.4.0/24", "planb9", split=False)  # lab.subnet edited
    write_lab_site(tmp_path, moved, tmp_path / "key", old)  # planb.yml is kept as it was
    message = stale_primary_url(load_config(path), moved)
    assert message is not None
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1)
                if "url: ldaps://10.77.9.10" in text)
    assert message.startswith(f"{path}:{line}: primary.ldap.url is ldaps://10.77.9.10")
    assert message.endswith("set it to ldaps://10.77.4.10")


@pytest.mark.parametrize("agents", [2, 300, 9000])
def test_the_lab_primary_search_always_takes_several_pages(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, agents: int) -> None:
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    lab = LabConfig(subnet="10.77.9.0/24", bridge="planb9", agents=agents)
    path = write_lab_site(tmp_path, build_topology(lab.subnet, lab.bridge, split=False),
                          tmp_path / "key", lab)
    ldap = load_config(path).primary.ldap
    assert ldap is not None
    assert ldap.page_size < agents
