"""Ctrl-C (SIGINT) during ``planb sync apply`` and ``planb deploy`` on the real lab.

Both run as a user runs them (the CLI in its own process, SIGINT as from a terminal)
and must exit 130. The sync interrupted midway leaves whole entries only: every entry
it wrote is complete (every attribute and the password fingerprint), and a follow-up
plan adds exactly the agents still missing and changes nothing else in the written
entries (their department groups aside: groups are written after the entries). The
module starts from a synced lab and leaves it synced (LDAP and Matrix) and in standby.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from planb.config import SiteConfig
from planb.directory.ldap_source import read_primary
from planb.directory.sync import Sync
from planb.directory.targets import entry_for
from planb.lab.fallback_reset import empty_fallback
from tests.integration import lab_state
from tests.integration.conftest import LabSession
from tests.integration.lab_state import ldap_only

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(synced_lab: LabSession) -> Iterator[LabSession]:
    yield synced_lab
    # Leave it synced: re-adopt the Matrix accounts the emptied directory orphaned.
    lab_state.ensure_synced(synced_lab)




def start(site: SiteConfig, *args: str) -> subprocess.Popen[str]:
    """``planb ARGS`` in its own process with SIGINT's default action (as in a terminal:
    a test session started in the background inherits SIGINT ignored)."""
    return subprocess.Popen(
        [sys.executable, "-m", "planb.cli.main", "--config", str(site.source), *args],
        env={**os.environ, "PLANB_CONFIG": str(site.source)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def interrupt(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out + err


def count_entries(site: SiteConfig) -> int:
    """How many agent entries the fallback holds (DNs only: quick to poll)."""
    sync = Sync(site)
    conn = sync.fallback.connect(read_only=True)
    try:
        found = conn.extend.standard.paged_search(sync.layout.people, "(objectClass=planbAgent)",
                                                  attributes=["1.1"], paged_size=1000,
                                                  generator=False)
        return len([e for e in found if e.get("type") == "searchResEntry"])
    finally:
        conn.unbind()


def test_ctrl_c_during_sync_apply_exits_130_and_leaves_whole_entries(lab: LabSession) -> None:
    site = lab.site
    agents = {a.id: a for a in read_primary(site).agents if a.enabled}
    with ldap_only(site):
        empty_fallback(lab.lab, site)
        proc = start(site, "sync", "apply", "--yes", "--ldap-only", "--workers", "1")
        deadline = time.monotonic() + 300
        written = 0
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                written = count_entries(site)
                if written >= 5:
                    break
                time.sleep(0.02)
        finally:
            code, output = interrupt(proc)
        assert code == 130, output[-2000:]
        assert "interrupted" in output, output[-2000:]
        state = Sync(site).read_fallback()
        present = len(state.entries)
        assert written <= present < len(agents), "the apply ended before it was interrupted"
        for entry in state.entries.values():
            whole = entry_for(agents[entry.id], entry.localpart, entry.dn)
            # Whole: every attribute, and the enrolment code written in the same add.
            assert dataclasses.replace(entry, groups=frozenset(),
                                       codes=whole.codes) == dataclasses.replace(
                whole, groups=frozenset()), entry.login
            assert entry.codes.has_code and entry.codes.serial >= 1, entry.login
        plan = Sync(site).plan().plan
        assert {a.agent.id for a in plan.ldap_adds} == set(agents) - set(state.entries)
        assert all({c.field for c in u.changes} <= {"groups"} and not u.password_changed
                   for u in plan.ldap_updates), plan.ldap_updates[:3]
        done = lab_state.planb_cli(lab, "sync", "apply", "--yes", "--ldap-only")
        assert done[0] == 0, done[1]
        assert Sync(site).plan().plan.is_empty()


def test_ctrl_c_during_deploy_exits_130_and_the_fallback_still_verifies(
        lab: LabSession) -> None:
    site = lab.site
    runs = site.state_dir / "runs"
    before = set(runs.glob("*")) if runs.exists() else set()
    proc = start(site, "deploy")
    try:
        # Wait until Ansible is at work on the hosts (a run folder appeared), then a bit.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if runs.exists() and set(runs.glob("*")) - before:
                break
            time.sleep(0.5)
        time.sleep(20)
        assert proc.poll() is None, "deploy ended before it could be interrupted"
    finally:
        code, output = interrupt(proc)
    assert code == 130, output[-3000:]
    assert "canceled" in output or "interrupted" in output, output[-3000:]
    lab_state.ensure_standby(lab)
    code, output = lab_state.planb_cli(lab, "verify")
    assert code == 0, output
