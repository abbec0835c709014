"""Snapshots of the source: what --from-snapshot syncs from while failover is active."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from planb.directory.model import Agent, Rejection, SourceResult
from planb.directory.snapshot import read_snapshot, write_snapshot
from planb.errors import UsageError
from planb.schema import Secret

AGENTS = (
    Agent(id="u-1", login="élodie.martin", given_name="Élodie", surname="Martin",
          display_name="Élodie Martin", mail="elodie@x.lab", department="Finances",
          groups=frozenset({"Finances", "Élus"}), password_hash=Secret("{SSHA}c2VjcmV0")),
    Agent(id="u-2", login="jean", enabled=False),
)


def test_round_trip_keeps_agents_and_rejections_but_never_hashes(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    rejection = Rejection("src", "invalid mail", entry="uid=x", id="u-3", login="x")
    write_snapshot(SourceResult("ldaps://primary", AGENTS, (rejection,)), path)
    assert "c2VjcmV0" not in path.read_text(encoding="utf-8")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = read_snapshot(path)
    assert [a.public() | {"password": False} for a in loaded.agents] == \
        [a.public() | {"password": False} for a in AGENTS]
    assert all(a.password_hash is None for a in loaded.agents)
    assert loaded.rejections == (rejection,)
    assert "ldaps://primary" in loaded.source


@pytest.mark.parametrize(("content", "message"), [
    ("{", "not valid JSON"),
    ('{"schema": "other"}', "not a planb sync snapshot"),
    ('{"schema": "planb/sync-snapshot", "schema_version": 9}', "version 9"),
    ('{"schema": "planb/sync-snapshot", "schema_version": 1, "source": "s", '
     '"agents": [{"id": "1"}]}', "agents[0]: login missing"),
    ('{"schema": "planb/sync-snapshot", "schema_version": 1, "source": "s", '
     '"agents": [{"id": "1", "login": "a", "shoe": "42"}]}', "unknown key 'shoe'"),
    ('{"schema": "planb/sync-snapshot", "schema_version": 1, "source": "s", '
     '"agents": [{"id": "1", "login": "a"}, {"id": "1", "login": "b"}]}', "appears twice"),
])
def test_damaged_snapshots_are_refused_with_the_reason(tmp_path: Path, content: str,
                                                       message: str) -> None:
    path = tmp_path / "snap.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError, match="snap.json") as info:
        read_snapshot(path)
    assert message in info.value.message


def test_missing_snapshot_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        read_snapshot(tmp_path / "none.json")
    assert "--snapshot-out" in (info.value.hint or "")


def test_snapshot_json_is_readable(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    write_snapshot(SourceResult("src", AGENTS), path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["agents"][0]["login"] == "élodie.martin"
    assert data["agents"][0]["groups"] == ["Finances", "Élus"]
