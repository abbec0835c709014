"""The HA lab: primary, fallback and a hot standby, shared by every issue-14 lab module.

The session lab has no standby host, so the modules of issue 14 (replication, workers,
promotion, the fallback-host-down drill) share this lab, booted once per test session
on $PLANB_TEST_HA_BRIDGE / $PLANB_TEST_HA_SUBNET (default planb7, 10.77.7.0/24, CI's):
primary .10 (lab_primary), fallback .11 (fallback_directory, fallback_messaging,
fallback_proxy), standby .12 (fallback_standby); ``fallback.standby.service_address``
is .30 of the subnet; Synapse runs the workers of ``fallback.synapse.workers:
activation`` (with Redis). Deployed, the standby's replication in step, the signing key
made and 60 agents synced. Torn down when the session ends ('lab down' must leave
nothing behind). Each module leaves it as it found it, except a ``runs_last`` one.

With $PLANB_TEST_HA_SITE (the planb.yml of such a lab, up and deployed), that lab is
used and kept (deployed once more, not torn down). ``python -m tests.integration.ha_lab
DIR`` makes one and prints the variable to set.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from planb.config import LabConfig, load_config
from planb.lab.lab import Lab
from planb.lab.site import write_lab_site
from planb.lab.topology import build_topology
from planb.provisioning.deploy import run_deploy
from tests.integration import lab_state
from tests.integration.conftest import LabSession

BRIDGE = os.environ.get("PLANB_TEST_HA_BRIDGE", "planb7")
SUBNET = os.environ.get("PLANB_TEST_HA_SUBNET", "10.77.7.0/24")
KEPT_SITE = os.environ.get("PLANB_TEST_HA_SITE")
#: Agents on the HA lab: enough for a sample of probes, few enough for CI's time.
AGENTS = 60
HOSTS = ["primary", "fallback", "standby"]


def service_address(subnet: str = SUBNET) -> str:
    """The lab's ``fallback.standby.service_address``: .30 of its subnet."""
    return str(ipaddress.ip_network(subnet)[30])


def boot(site_dir: Path) -> LabSession:
    """Write an HA lab site in ``site_dir`` and boot its hosts (see :func:`deploy`)."""
    lab_config = LabConfig(subnet=SUBNET, bridge=BRIDGE, agents=AGENTS, ha=True)
    key = site_dir / ".planb" / "lab" / "id_ed25519"
    path = write_lab_site(site_dir, build_topology(SUBNET, BRIDGE, ha=True), key, lab_config)
    # Synapse's workers (issue 14): the HA lab runs the activation preset.
    text = path.read_text(encoding="utf-8")
    assert "    workers: none\n" in text
    path.write_text(text.replace("    workers: none\n", "    workers: activation\n", 1),
                    encoding="utf-8")
    site = load_config(path)
    assert site.lab is not None and site.lab.ha
    assert site.fallback.standby.service_address == service_address()
    assert site.fallback.synapse.workers == "activation"
    lab = Lab(site)
    session = LabSession(site=site, lab=lab, topology=lab.up())
    assert [h.name for h in session.topology.hosts] == HOSTS
    return session


def deploy(session: LabSession) -> None:
    """Deploy the whole site twice (the second run must change nothing), then prepare."""
    site = session.site
    session.first_deploy = run_deploy(site)
    assert session.first_deploy.ok, session.first_deploy.failures
    session.second_deploy = run_deploy(site)
    prepare(session)


def prepare(session: LabSession) -> None:
    """The signing key made and the agents synced (the standby replicates them)."""
    lab_state.ensure_hosts_up(session)
    lab_state.ensure_signing_key(session)
    lab_state.ensure_standby(session)
    lab_state.ensure_synced(session)


@pytest.fixture(scope="session")
def ha_lab(tmp_path_factory: pytest.TempPathFactory, offline_bundle: Path
           ) -> Iterator[LabSession]:
    """The HA lab, booted once for the session (or the kept one, see the module)."""
    yield from lab_state.shared_lab(
        KEPT_SITE, lambda: tmp_path_factory.mktemp("halab"), BRIDGE, boot=boot,
        deploy=deploy, redeploy=run_deploy, prepare=prepare)


if __name__ == "__main__":  # a kept HA lab for a developer: then PLANB_TEST_HA_SITE
    lab_state.make_kept_lab(Path(sys.argv[1]), "PLANB_TEST_HA_SITE", boot, deploy)
