"""The lab states the integration modules ask for, established whatever ran before.

The session shares one lab (tests/integration/conftest.py). Modules change it: they
stop or cut off the primary, switch the fallback active, churn the primary, empty
the fallback directory. Each puts back what it changed when it passes; the helpers
here re-establish the state a module needs at its start anyway, so the modules pass
in any order (CI shuffles them) and one failure does not cascade into the next
module. ``leftovers`` is the check the session makes after 'lab down'.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from typer.testing import CliRunner

import planb
from planb.cli.main import app
from planb.config import SiteConfig
from planb.hostkeys import known_hosts_path
from planb.inventory import check_inventory
from planb.lab.network import link_names
from planb.provisioning import new_run_dir, run_playbook
from planb.provisioning.deploy import deploy_vars

if TYPE_CHECKING:
    from planb.provisioning.results import PlaybookResult
    from tests.integration.conftest import LabSession

log = logging.getLogger(__name__)


def planb_cli(session: LabSession, *args: str) -> tuple[int, str]:
    """Run ``planb --config <the session site> ARGS``; its exit code and output."""
    done = CliRunner().invoke(app, ["--config", str(session.site.source), *args])
    return done.exit_code, done.output


def on(session: LabSession, host: str, script: str, timeout: float = 120
       ) -> subprocess.CompletedProcess[str]:
    """Run a shell snippet on a lab host as root; its result (not checked)."""
    return session.lab.run_on(host, ["sh", "-c", script], timeout=timeout)


def shared_lab(kept_site: str | None, site_dir: Callable[[], Path], bridge: str, *,
               boot: Callable[[Path], LabSession], deploy: Callable[[LabSession], None],
               redeploy: Callable[[SiteConfig], PlaybookResult],
               prepare: Callable[[LabSession], None]) -> Iterator[LabSession]:
    """The body of a session fixture for a lab that several modules share (the backup
    lab, the HA lab). ``kept_site``: the planb.yml of such a lab already up, which is
    deployed again (``redeploy``), prepared and kept; else a lab is booted in
    ``site_dir()``, deployed, and torn down when the session ends ('lab down' must
    leave nothing behind)."""
    from planb.config import load_config
    from planb.lab.lab import Lab
    from tests.integration.conftest import LabSession

    if kept_site:
        kept = load_config(Path(kept_site))
        session = LabSession(site=kept, lab=Lab(kept), topology=Lab(kept).topology())
        session.first_deploy = session.second_deploy = redeploy(kept)
        assert session.first_deploy.ok, session.first_deploy.failures
        prepare(session)
        yield session
        return
    session = boot(site_dir())
    try:
        deploy(session)
        yield session
    finally:
        left = down_and_leftovers(session, bridge)
    assert not left, f"'lab down' left something behind: {left}"


def make_kept_lab(site_dir: Path, variable: str, boot: Callable[[Path], LabSession],
                  deploy: Callable[[LabSession], None]) -> None:
    """A kept lab for a developer (``python -m tests.integration.<lab> DIR``): the bundle
    built, the lab booted in ``site_dir`` and deployed; prints ``variable=<planb.yml>``."""
    from planb.bundle import build_bundle

    build_bundle()
    made = boot(site_dir)
    deploy(made)
    print(f"{variable}={made.site.source}")


def ensure_hosts_up(session: LabSession) -> None:
    """Every lab host running and reachable (a test stops or cuts off the primary)."""
    links = link_names()
    for host in session.topology.hosts:
        if host.veth in links:  # an isolated host has its veth set down
            subprocess.run(["ip", "link", "set", host.veth, "up"], check=True, timeout=30)
        session.lab.start_host(host.name)  # boots a stopped host; a running one is kept


def ensure_standby(session: LabSession) -> None:
    """The fallback in standby (state file and hosts) with the account sync not frozen."""
    code, out = planb_cli(session, "failover", "status", "--json")
    assert code == 0, out
    status = json.loads(out[out.index("{"):])
    if status["mode"] != "standby" or status["sync_frozen"]:
        log.warning("the lab was left %s (sync frozen: %s): deactivating",
                    status["mode"], status["sync_frozen"])
        code, out = planb_cli(session, "failover", "deactivate", "--reason",
                              "integration tests: back to standby", "--yes")
        assert code == 0, out
    mode = session.lab.run_on("fallback", ["cat", "/etc/planb/mode"]).stdout.strip()
    if mode != "standby":  # a test ran failover.yml itself and did not switch back
        log.warning("the fallback host was left in mode %r: switching it to standby", mode)
        playbook = planb.PLAYBOOKS_DIR / "failover.yml"
        result = run_playbook(playbook, check_inventory(session.site),
                              run_dir=new_run_dir(session.site.state_dir, playbook),
                              extravars=deploy_vars(session.site)
                              | {"planb_failover_mode": "standby"},
                              known_hosts=known_hosts_path(session.site))
        assert result.ok, result


def ensure_signing_key(session: LabSession) -> None:
    """The site's signing key, which failover, drills and reports need."""
    if not (session.site.state_dir / "keys" / "signing.key").exists():
        code, out = planb_cli(session, "keys", "init")
        assert code == 0, out


def ensure_synced(session: LabSession) -> None:
    """Every agent of the primary synced to the fallback LDAP and to Matrix.

    ``--adopt``: a module that rebuilt the fallback directory without Matrix
    (test_sync_ldap.py) leaves Matrix accounts no fallback entry holds; adopting
    them is the operator's way back after a rebuild.
    """
    code, out = planb_cli(session, "sync", "apply", "--yes", "--adopt")
    assert code == 0, out
    assert "applied and confirmed" in out or "nothing to" in out, out
    assert "Matrix target not configured" not in out, out


def churned(site: SiteConfig) -> dict[str, int]:
    """What 'planb lab churn' did to the seeded primary so far in the session.

    The sync modules churn the primary: a test that counts the primary's agents adds
    the hires, whichever module ran first.
    """
    total = {"hires": 0, "leavers": 0, "reactivations": 0}
    for path in (site.state_dir / "lab").glob("churn-*.json"):
        record = json.loads(path.read_text(encoding="utf-8"))
        for kind in total:
            total[kind] += len(record[kind])
    return total


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


def down_and_leftovers(session: LabSession, bridge: str) -> list[str]:
    """Run 'lab down'; what it left behind: processes, links, mounts, host folders."""
    site_dir = session.site.base_dir
    problems = []
    if not _live_nspawn_for(site_dir):
        problems.append("no lab host was running before 'lab down' (nothing to check)")
    session.lab.down()
    if pids := _live_nspawn_for(site_dir):
        problems.append(f"systemd-nspawn still running: pids {pids}")
    links = link_names()
    if bridge in links:
        problems.append(f"bridge {bridge} still there")
    if veths := sorted(n for n in links if n.startswith(f"vb-p{bridge[-1]}-")):
        problems.append(f"veths still there: {veths}")
    if str(site_dir) in Path("/proc/self/mounts").read_text():
        problems.append(f"mounts under {site_dir} still there")
    if (session.site.state_dir / "lab" / "hosts").exists():
        problems.append("host folders still there")
    if session.lab.status():
        problems.append("'lab status' still lists hosts")
    return problems


@contextmanager
def ldap_only(site: SiteConfig) -> Iterator[None]:
    """Run the sync without its Matrix target (its admin token set aside meanwhile).

    The LDAP tests empty the fallback LDAP, which a real site never does: with Matrix
    accounts left from earlier tests, the planner would rightly refuse to hand them
    to entries it no longer knows (collisions). test_sync_matrix.py covers Matrix.
    """
    token = site.state_dir / "synapse" / "admin-token"
    aside = token.with_name("admin-token.aside")
    token.rename(aside)
    try:
        yield
    finally:
        aside.rename(token)
