"""The offline bundle and PostgreSQL on the session's deployed lab.

The session lab (tests/integration/conftest.py) was deployed from the offline
bundle, twice, the second run changing nothing (test_lab_deploy.py). Here, what a
person would check: apt sees the bundle only and the host has no route out, the
synapse role logs in over 127.0.0.1, the database has C collation, and PostgreSQL
listens on loopback only.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from planb.bundle import build_bundle
from planb.bundle.build import BuildResult
from planb.config import SiteConfig
from planb.lab.lab import Lab
from tests.integration.conftest import LabSession

pytestmark = pytest.mark.lab

HOST = "fallback"


@dataclass
class Deployed:
    site: SiteConfig
    lab: Lab
    bundle: BuildResult


@pytest.fixture(scope="module")
def deployed(deployed_lab: LabSession) -> Deployed:
    return Deployed(deployed_lab.site, deployed_lab.lab, build_bundle())


def _sh(deployed: Deployed, script: str) -> str:
    # ssh hands the command to the host's shell as one string.
    result = deployed.lab.run_on(HOST, [script])
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


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
