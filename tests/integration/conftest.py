"""The lab the integration tests share: real Debian 12 hosts booted with systemd-nspawn.

One lab per test session, on its own bridge and subnet (never the user's planb0),
brought up once and deployed once. Each module asks for the state it needs:
``lab_session`` (hosts up), ``deployed_lab`` (site.yml ran twice), ``standby_lab``
(deployed, hosts up, fallback in standby, sync not frozen, signing key made) or
``synced_lab`` (that, with every agent synced to LDAP and Matrix). The module-scoped
ones re-establish their state whatever ran before (tests/integration/lab_state.py), so
the modules pass in any order; CI runs them shuffled (pytest-randomly). When the
session ends, ``lab down`` runs and must leave nothing behind, else the run fails.

Where the lab cannot run (not root, no systemd-nspawn), lab tests are skipped; in CI
(``$CI`` set) each of them fails instead, naming why.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from planb.config import LabConfig, SiteConfig, load_config
from planb.lab.lab import Lab
from planb.lab.site import write_lab_site
from planb.lab.topology import Topology, build_topology
from planb.provisioning.deploy import run_deploy
from planb.provisioning.results import PlaybookResult
from tests.conftest import in_ci
from tests.integration import lab_state

#: The session lab's network; set PLANB_TEST_BRIDGE / PLANB_TEST_SUBNET to run two
#: test sessions side by side (the bridge's last character names its machines).
TEST_BRIDGE = os.environ.get("PLANB_TEST_BRIDGE", "planb9")
TEST_SUBNET = os.environ.get("PLANB_TEST_SUBNET", "10.77.9.0/24")
#: For a developer iterating on one lab module: a folder where the session's lab site is
#: made once and the lab left up at the end (deployed once per run, not twice). Not in CI.
KEEP_SITE = None if os.environ.get("CI") else os.environ.get("PLANB_TEST_KEEP_SITE")


@functools.cache
def _lab_impossible() -> str | None:
    """Why the lab cannot run on this machine, or None when it can."""
    if os.geteuid() != 0:
        return "lab tests need root"
    for command in ("systemd-nspawn", "debootstrap"):
        if shutil.which(command) is None:
            return f"lab tests need {command} (run scripts/setup.sh)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip lab tests where they cannot run, except in CI (see pytest_runtest_setup)."""
    reason = _lab_impossible()
    if reason is None or in_ci():
        return
    for item in items:
        if "lab" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """In CI, a lab test that cannot run fails (a skip would leave CI green unchecked)."""
    if "lab" in item.keywords and in_ci() and (reason := _lab_impossible()):
        pytest.fail(f"lab test cannot run in CI: {reason}", pytrace=False)


@dataclass
class LabSession:
    """The session's lab: its site, topology and the two deploy results."""

    site: SiteConfig
    lab: Lab
    topology: Topology
    first_deploy: PlaybookResult | None = None
    second_deploy: PlaybookResult | None = None


@pytest.fixture(scope="session")
def lab_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabSession]:
    """A lab up for the whole session; at its end 'lab down' must leave nothing behind."""
    site_dir = Path(KEEP_SITE) if KEEP_SITE else tmp_path_factory.mktemp("labsite")
    lab_config = LabConfig(subnet=TEST_SUBNET, bridge=TEST_BRIDGE, agents=300)
    topology = build_topology(TEST_SUBNET, TEST_BRIDGE)
    key = site_dir / ".planb" / "lab" / "id_ed25519"
    config_path = site_dir / "planb.yml"
    if not (KEEP_SITE and config_path.exists()):
        config_path = write_lab_site(site_dir, topology, key, lab_config)
    site = load_config(config_path)
    lab = Lab(site)
    session = LabSession(site=site, lab=lab, topology=lab.up())
    if KEEP_SITE:
        yield session
        return
    try:
        yield session
    finally:
        left = lab_state.down_and_leftovers(session, TEST_BRIDGE)
    assert not left, f"'lab down' left something behind: {left}"


@pytest.fixture(scope="session")
def offline_bundle() -> Path:
    """The offline bundle the roles install from, built once (a no-op when current)."""
    from planb.bundle import build_bundle

    return build_bundle().path


@pytest.fixture(scope="session")
def deployed_lab(lab_session: LabSession, offline_bundle: Path) -> LabSession:
    """The session's lab after 'planb deploy' ran twice (the second must change nothing)."""
    if lab_session.first_deploy is None:
        lab_session.first_deploy = run_deploy(lab_session.site)
        lab_session.second_deploy = (lab_session.first_deploy if KEEP_SITE
                                     else run_deploy(lab_session.site))
    return lab_session


@pytest.fixture(scope="module")
def standby_lab(deployed_lab: LabSession) -> LabSession:
    """The deployed lab with its hosts up and reachable, the fallback in standby, the
    account sync not frozen and the site's signing key made."""
    lab_state.ensure_hosts_up(deployed_lab)
    lab_state.ensure_signing_key(deployed_lab)
    lab_state.ensure_standby(deployed_lab)
    return deployed_lab


@pytest.fixture(scope="module")
def synced_lab(standby_lab: LabSession) -> LabSession:
    """The standby lab with every agent of the primary synced to LDAP and Matrix."""
    lab_state.ensure_synced(standby_lab)
    return standby_lab


def lab_site_dir(session: LabSession) -> Path:
    return session.site.base_dir


# The backup lab (a second lab, with a backup host) is a session fixture too, shared by
# the modules of issue 13; imported last, as it builds on LabSession above.
from tests.integration.backup_lab import backup_lab  # noqa: E402, F401

# The HA lab (primary, fallback and a hot standby), shared by the modules of issue 14.
from tests.integration.ha_lab import ha_lab  # noqa: E402, F401
