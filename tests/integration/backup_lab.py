"""The backup lab: a lab with a ``backup`` host, shared by every module that needs one.

The session lab has no backup host, so the modules of issue 13 (test_backup_lab.py,
test_fallback_lost_lab.py) share this second lab, booted once per test session on
$PLANB_TEST_BACKUP_BRIDGE / $PLANB_TEST_BACKUP_SUBNET with ``backup.enabled`` in its
planb.yml: deployed, its backup role run again (which must change nothing), synced,
and given a local upload and a remote-cache file. Torn down when the session ends
('lab down' must leave nothing behind). Each module leaves it as it found it.

With $PLANB_TEST_BACKUP_SITE (the planb.yml of such a lab, up and deployed), that lab
is used and kept: its backup role deployed once more (which must change nothing), not
torn down. ``boot`` makes one (``python -m tests.integration.backup_lab DIR``).
"""

from __future__ import annotations

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
from tests.integration.lab_state import on

BRIDGE = os.environ.get("PLANB_TEST_BACKUP_BRIDGE", "planb8")
SUBNET = os.environ.get("PLANB_TEST_BACKUP_SUBNET", "10.77.8.0/24")
KEPT_SITE = os.environ.get("PLANB_TEST_BACKUP_SITE")
#: Agents on the backup lab: enough for a sample of probes, few enough for CI's time.
AGENTS = 60
MEDIA = "var/lib/synapse/media_store"
#: backup_catch_up_minutes on this lab (the backup role's default is 2).
CATCH_UP_MINUTES = 1


def boot(site_dir: Path) -> LabSession:
    """Write a backup lab site in ``site_dir`` and boot its hosts (see :func:`deploy`)."""
    lab_config = LabConfig(subnet=SUBNET, bridge=BRIDGE, agents=AGENTS)
    key = site_dir / ".planb" / "lab" / "id_ed25519"
    path = write_lab_site(site_dir, build_topology(SUBNET, BRIDGE, backup=True), key,
                          lab_config)
    text = path.read_text(encoding="utf-8")
    assert "backup:\n  enabled: false\n" in text
    path.write_text(text.replace("backup:\n  enabled: false\n", "backup:\n  enabled: true\n"),
                    encoding="utf-8")
    site = load_config(path)
    # The catch-up timer fires 1 min after boot here, not the role's 2: the catch-up test
    # waits for it (a role variable, as a site would set it in its inventory).
    (site.inventory_dir / "group_vars" / "all" / "tests.yml").write_text(
        "---\n# planb's tests: the backup lab's catch-up after 1 min of uptime.\n"
        f"backup_catch_up_minutes: {CATCH_UP_MINUTES}\n", encoding="utf-8")
    lab = Lab(site)
    session = LabSession(site=site, lab=lab, topology=lab.up())
    assert [h.name for h in session.topology.hosts] == ["primary", "fallback", "backup"]
    return session


def deploy(session: LabSession) -> None:
    """Deploy the whole site once, then the backup role again; make the signing key and
    sync the agents."""
    site = session.site
    session.first_deploy = run_deploy(site)
    assert session.first_deploy.ok, session.first_deploy.failures
    # Only the backup role: the whole site's second deploy is the session lab's test,
    # and other work in the same tree may change other roles between the two runs.
    session.second_deploy = run_deploy(site, tags=("backup",))
    prepare(session)


def prepare(session: LabSession) -> None:
    """Signing key, agents synced, and the media the backup tests look for."""
    lab_state.ensure_signing_key(session)
    lab_state.ensure_synced(session)
    media(session)


def media(session: LabSession) -> None:
    """A local upload and a file in the remote cache: a backup keeps the first only."""
    token = (session.site.state_dir / "synapse" / "admin-token").read_text().strip()
    upload = on(session, "fallback", (
        "python3 -c 'import sys, urllib.request as u; r = u.Request("
        "\"http://127.0.0.1:8008/_matrix/media/v3/upload?filename=probe.txt\", "
        "data=b\"planb backup probe\", headers={\"Authorization\": \"Bearer \" + sys.argv[1],"
        " \"Content-Type\": \"text/plain\"}); print(u.urlopen(r).read().decode())' "
        f"{token}"))
    assert upload.returncode == 0, upload.stderr
    on(session, "fallback", f"mkdir -p /{MEDIA}/remote_content/x && "
                            f"echo cache > /{MEDIA}/remote_content/x/cached")


@pytest.fixture(scope="session")
def backup_lab(tmp_path_factory: pytest.TempPathFactory, offline_bundle: Path
               ) -> Iterator[LabSession]:
    """The backup lab, booted once for the session (or the kept one, see the module)."""
    yield from lab_state.shared_lab(
        KEPT_SITE, lambda: tmp_path_factory.mktemp("backuplab"), BRIDGE, boot=boot,
        deploy=deploy, redeploy=lambda site: run_deploy(site, tags=("backup",)),
        prepare=prepare)


if __name__ == "__main__":  # a kept backup lab for a developer: then PLANB_TEST_BACKUP_SITE
    lab_state.make_kept_lab(Path(sys.argv[1]), "PLANB_TEST_BACKUP_SITE", boot, deploy)
