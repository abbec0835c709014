"""Who drills probe with: seeded samples, pseudonyms, the probe-account rule, probe rings."""

from __future__ import annotations

from pathlib import Path

import pytest

from planb.actions import sampling
from planb.actions.stack import ProbeArgs, rings
from planb.errors import PlanbError
from tests.unit.test_drills_scenario import make_site

LOGINS = [f"agent{n:04d}" for n in range(500)]


def test_a_run_id_gives_the_same_seed_and_sample_every_round() -> None:
    seed = sampling.seed_for("drill-1")
    assert seed == sampling.seed_for("drill-1") != sampling.seed_for("drill-2")
    assert sampling.seed_for("drill-1", explicit=7) == 7
    first = sampling.draw(LOGINS, 20, seed)
    assert first == sampling.draw(list(reversed(LOGINS)), 20, seed)  # order does not matter
    assert len(set(first)) == 20 and set(first) <= set(LOGINS)
    assert first != sampling.draw(LOGINS, 20, seed + 1)
    assert sorted(sampling.draw(LOGINS[:5], 20, seed)) == LOGINS[:5]


def test_pseudonyms_are_stable_per_site_and_hide_the_login(tmp_path: Path) -> None:
    key = sampling.pseudonym_key(tmp_path)
    assert sampling.pseudonym_key(tmp_path) == key
    assert (tmp_path / "drills" / "pseudonym-key").stat().st_mode & 0o777 == 0o600
    alias = sampling.pseudonym(key, "jean.dupont")
    assert alias == sampling.pseudonym(key, "jean.dupont") != sampling.pseudonym(key, "jdupont")
    assert alias.startswith("agent-") and "dupont" not in alias
    other_site = sampling.pseudonym_key(tmp_path / "other")
    assert sampling.pseudonym(other_site, "jean.dupont") != alias


def write_probe_accounts(state_dir: Path, text: str, mode: int = 0o600) -> None:
    path = state_dir / "verify" / "probe-accounts"
    path.parent.mkdir(parents=True)
    path.write_text(text, "utf-8")
    path.chmod(mode)


def test_a_production_site_probes_with_the_deployed_probe_accounts(tmp_path: Path) -> None:
    site = make_site(tmp_path, lab=False)
    with pytest.raises(PlanbError, match="no probe accounts"):
        sampling.choose(site, 20, 1)
    write_probe_accounts(site.state_dir, "# made by deploy\nplanb-probe-1 s3cret-pw-1\n"
                                         "planb-probe-2 s3cret-pw-2\n")
    sample = sampling.choose(site, 20, 1)
    assert sample.source == "probe-accounts" and "not a lab site" in sample.why
    assert [a.login for a in sample.accounts] == ["planb-probe-1", "planb-probe-2"]
    assert "s3cret" not in repr(sample)


def test_a_lab_without_agents_in_matrix_or_ldap_falls_back_to_probe_accounts(
        tmp_path: Path) -> None:
    site = make_site(tmp_path)
    write_probe_accounts(site.state_dir, "p1 password-one\np2 password-two\n")
    no_secret = sampling.choose(site, 20, 1)
    assert no_secret.source == "probe-accounts"
    (site.state_dir / "lab").mkdir()
    (site.state_dir / "lab" / "agents-secret").write_bytes(b"lab-secret")
    forced = sampling.choose(site, 5, 3, source="lab-agents",
                             population={login: f"uid={login},ou=people,dc=x" for login in
                                         LOGINS})
    assert forced.source == "lab-agents" and forced.seed == 3 and forced.population == 500
    assert [a.login for a in forced.accounts] == sampling.draw(LOGINS, 5, 3)
    assert all(a.dn == f"uid={a.login},ou=people,dc=x" for a in forced.accounts)
    with pytest.raises(PlanbError, match="0 active agent"):
        sampling.choose(site, 5, 3, source="lab-agents", population={})


def test_probe_rings_stay_small_and_never_leave_anyone_alone() -> None:
    accounts = tuple(sampling.Account(f"a{n}", "pw") for n in range(45))
    assert [len(g) for g in rings(accounts[:20])] == [20]  # the default sample: one room
    groups = rings(accounts)
    assert [len(g) for g in groups] == [15, 15, 15]
    assert sorted(a.login for g in groups for a in g) == sorted(a.login for a in accounts)
    assert [len(g) for g in rings(accounts[:20], size=8)] == [7, 7, 6]
    assert [len(g) for g in rings(accounts[:9], size=8)] == [5, 4]
    assert [len(g) for g in rings(accounts[:3], size=2)] == [3]  # never a ring of one
    with pytest.raises(ValueError, match="at least 2"):
        ProbeArgs(sample=1)


def test_active_agents_include_a_temporary_lockout_but_not_leavers() -> None:
    """ppolicy's lockout after failed binds (the lockout's time) heals by itself: the
    agent is still active; planb's 000001010000Z marks a leaver."""
    entries = [
        ("uid=a,ou=people,dc=x", {"uid": ["a"]}),
        ("uid=b,ou=people,dc=x", {"uid": ["b"], "pwdAccountLockedTime": ["20261130021500Z"]}),
        ("uid=c,ou=people,dc=x", {"uid": ["c"], "pwdAccountLockedTime": ["000001010000Z"]}),
        ("uid=d,ou=people,dc=x", {"uid": "d", "pwdaccountlockedtime": "000001010000Z"}),
        ("uid=e,ou=people,dc=x", {"uid": []}),
    ]
    assert sampling.active_logins(entries) == {"a": "uid=a,ou=people,dc=x",
                                               "b": "uid=b,ou=people,dc=x"}
    # ldap3 may hand a lock time over as a datetime, or as bytes.
    from datetime import UTC, datetime
    typed = [("uid=f,ou=people,dc=x", {"uid": [b"f"], "pwdAccountLockedTime": [
                 datetime(2026, 11, 30, 2, 15, tzinfo=UTC)]}),
             ("uid=g,ou=people,dc=x", {"uid": ["g"], "pwdAccountLockedTime": [b"000001010000Z"]})]
    assert sampling.active_logins(typed) == {"f": "uid=f,ou=people,dc=x"}
