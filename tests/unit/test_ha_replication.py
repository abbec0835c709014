"""planb.ha.replication: a standby's state from the probes' answers (pure)."""

from __future__ import annotations

import json

from planb.ha.replication import FILES_MAX_AGE_SECONDS, assess, slot_name

NOW = 1_800_000_000
CSN = "20261130120000.000000Z#000000#001#000000"


def standby(pg: str = "t|streaming|0|0|f", csn: str = CSN, files: object = None,
            now: int = NOW) -> str:
    status = {"at": NOW - 10, "ok": True, "seconds": 1, "error": ""} if files is None else files
    return (f"pg={pg}\ncsn={csn}\nfiles={json.dumps(status) if status else ''}\n"
            f"now={now}\n")


def primary(rows: tuple[str, ...] = ("planb_standby|streaming|0|0",), csn: str = CSN) -> str:
    return "".join(f"rep={r}\n" for r in rows) + f"csn={csn}\nnow={NOW}\n"


def test_in_step_standby_has_no_problem() -> None:
    found = assess("standby", standby(), primary())
    assert found.streaming and found.postgres == "streaming"
    assert (found.replay_lag_seconds, found.replay_lag_bytes) == (0.0, 0)
    assert found.ldap_in_step is True and found.files_age_seconds == 10
    assert found.problems(900) == []
    assert "lag 0.0 s / 0 bytes" in found.summary()


def test_paused_replay_is_lag_named_beyond_the_limit() -> None:
    found = assess("standby", standby(pg="t|streaming|16384|42.5|t"), primary(
        rows=("planb_standby|streaming|40.2|20000",)))
    assert found.postgres == "replay paused"
    assert found.replay_lag_seconds == 42.5 and found.replay_lag_bytes == 20000
    assert found.problems(900) == []
    assert found.problems(30) == ["replay lag 42.5 s > 30 s"]


def test_a_promoted_or_disconnected_standby_is_not_streaming() -> None:
    assert assess("standby", standby(pg="f||0|0|f"), primary()).problems(900) == [
        "PostgreSQL not a standby (promoted?)"]
    assert assess("standby", standby(pg="t||0|0|f"), primary()).problems(900) == [
        "PostgreSQL not streaming (no WAL receiver)"]


def test_ldap_out_of_step_and_files_late_or_failed_are_named() -> None:
    other = "20261130120500.000000Z#000000#002#000000"
    found = assess("standby", standby(csn=other), primary())
    assert found.ldap_in_step is False and "not in step" in found.problems(900)[0]
    late = assess("standby", standby(now=NOW + FILES_MAX_AGE_SECONDS + 60), primary())
    assert any("late" in p for p in late.problems(900))
    failed = assess("standby", standby(files={"at": NOW, "ok": False, "seconds": 1,
                                              "error": "Permission denied"}), primary())
    assert failed.problems(900) == ["files last copy failed: Permission denied"]
    never = assess("standby", standby(files=""), primary())
    assert never.problems(900) == ["files never copied"]


def test_the_fallback_unreadable_leaves_the_standby_figures() -> None:
    found = assess("standby", standby(pg="t|streaming|0|0|f"), None, "cannot read fallback")
    assert found.streaming and found.ldap_in_step is None
    assert "cannot read fallback" in found.ldap and found.problems(900) == []


def test_slot_names_are_sql_identifiers() -> None:
    assert slot_name("Standby-2.lab") == "planb_standby_2_lab"


def test_a_synapse_or_worker_left_running_on_the_standby_is_named() -> None:
    text = standby() + "running=synapse-worker@persister1.service synapse.service \n"
    found = assess("standby", text, primary())
    assert found.running == ("synapse-worker@persister1.service", "synapse.service")
    [problem] = found.problems(900)
    assert problem.startswith("runs synapse-worker@persister1.service, synapse.service")
    assert "planb deploy --limit standby" in problem
    assert found.as_dict()["running"] == list(found.running)
    # Nothing running (an empty line) is in step; a forged name never reaches the text.
    assert assess("standby", standby() + "running= \n", primary()).problems(900) == []
    odd = assess("standby", standby() + "running=$(reboot).service x\n", primary())
    assert odd.running == ()
