"""The offline bundle and PostgreSQL on a lab host of their own (bridge planb8).

Builds (or reuses: the bundle is cached machine-wide) the bundle, deploys the
``bundle`` and ``postgresql`` roles on the lab's fallback host, which has no route
out, twice: the second run must change nothing. Then checks what a person would:
apt sees the bundle only, the synapse role logs in over 127.0.0.1, the database
has C collation, and PostgreSQL listens on loopback only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from planb.bundle import build_bundle
from planb.bundle.build import BuildResult
from planb.config import LabConfig, SiteConfig, load_config
from planb.lab.lab import Lab
from planb.lab.site import write_lab_site
from planb.lab.topology import build_topology
from planb.provisioning import PlaybookResult, new_run_dir, run_playbook

pytestmark = pytest.mark.lab

BRIDGE = "planb8"
SUBNET = "10.77.8.0/24"
HOST = "fallback"
PLAYBOOK = """\
- name: Bundle
  hosts: all
  gather_facts: false
  roles: [{role: bundle}]
- name: PostgreSQL
  hosts: fallback_messaging
  gather_facts: false
  roles: [{role: postgresql}]
"""


@dataclass
class Deployed:
    site: SiteConfig
    lab: Lab
    bundle: BuildResult
    first: PlaybookResult
    second: PlaybookResult


def _deploy(site: SiteConfig, playbook: Path, bundle: Path) -> PlaybookResult:
    return run_playbook(
        playbook, site.inventory_dir, run_dir=new_run_dir(site.state_dir, playbook),
        limit=HOST, extravars={"planb_action": "deploy", "planb_site": site.site,
                               "planb_bundle_dir": str(bundle)})


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    site_dir = tmp_path_factory.mktemp("bundle-lab")
    lab_config = LabConfig(subnet=SUBNET, bridge=BRIDGE, agents=10)
    key = site_dir / ".planb" / "lab" / "id_ed25519"
    site = load_config(write_lab_site(site_dir, build_topology(SUBNET, BRIDGE), key, lab_config))
    bundle = build_bundle()
    playbook = site_dir / "bundle-postgresql.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    lab = Lab(site)
    try:
        lab.up()
        started = time.monotonic()
        first = _deploy(site, playbook, bundle.path)
        cold = time.monotonic() - started
        second = _deploy(site, playbook, bundle.path)
        print(f"\nbundle {bundle.manifest.bundle_id}: {bundle.archive_size / 2**20:.1f} MiB; "
              f"deploy bundle+postgresql: cold {cold:.1f} s, again {second.duration_s:.1f} s")
        yield Deployed(site, lab, bundle, first, second)
    finally:
        lab.down()


def _sh(deployed: Deployed, script: str) -> str:
    # ssh hands the command to the host's shell as one string.
    result = deployed.lab.run_on(HOST, [script])
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_deploy_succeeds_then_changes_nothing(deployed: Deployed) -> None:
    assert deployed.first.ok, deployed.first.failures
    assert deployed.first.hosts[HOST].changed > 0
    assert deployed.second.ok, deployed.second.failures
    assert {h: s.changed for h, s in deployed.second.hosts.items()} == {HOST: 0}


def test_apt_uses_only_the_bundle(deployed: Deployed) -> None:
    bundle_id = deployed.bundle.manifest.bundle_id
    sources = _sh(deployed, "apt-get indextargets --format '$(REPO_URI)' | sort -u")
    assert sources.splitlines() == [f"file:/var/cache/planb/bundle/{bundle_id}/debs/"]
    assert _sh(deployed, "ip route show default") == ""  # installed with no route out


def test_synapse_role_connects_over_loopback_to_a_c_collation_database(
        deployed: Deployed) -> None:
    vault = (deployed.site.inventory_dir / "group_vars/all/vault.yml").read_text()
    password = next(line.split(":", 1)[1].strip() for line in vault.splitlines()
                    if line.startswith("vault_postgresql_synapse_password:"))
    query = ("SELECT current_user, datcollate, datctype, pg_encoding_to_char(encoding) "
             "FROM pg_database WHERE datname = current_database()")
    out = _sh(deployed, f"cd /tmp && PGPASSWORD='{password}' psql -X -w -h 127.0.0.1 "
                        f"-U synapse -d synapse -tAc \"{query}\"")
    assert out == "synapse|C|C|UTF8"
    wrong = deployed.lab.run_on(HOST, ["cd /tmp && PGPASSWORD=not-the-password "
                                       "psql -X -w -h 127.0.0.1 -U synapse -d synapse -c ''"])
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr


def test_postgresql_listens_on_loopback_only_and_starts_at_boot(deployed: Deployed) -> None:
    listening = _sh(deployed, "ss -Hltn 'sport = :5432' | awk '{print $4}' | sort")
    assert listening.splitlines() == ["127.0.0.1:5432", "[::1]:5432"]
    assert _sh(deployed, "systemctl is-enabled postgresql@15-main") == "enabled"
