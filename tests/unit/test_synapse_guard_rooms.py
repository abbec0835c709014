"""planb's Synapse module: department room joins (roles/synapse/files/planb_guard_rooms.py).

Synapse's module API and the directory are stand-ins (as in test_synapse_guard.py);
the guard's decisions run for real. The same promises on the real Synapse and slapd
are in tests/integration/test_department_rooms_lab.py.
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from tests.unit.test_synapse_guard import SERVER, Api, Guard, g, mod, request_as  # noqa: F401

ADMIN = f"@planb-admin:{SERVER}"
AGENT = f"@edurand:{SERVER}"
MARKER = "org.planb.department"


@dataclass
class RoomsApi(Api):
    """Api with room state: room ID -> {(type, state_key): event}."""

    state: dict[str, dict[tuple[str, str], Any]] = field(default_factory=dict)

    async def get_room_state(self, room_id: str, types: Any = None) -> dict[Any, Any]:
        wanted = set(types or [])
        return {k: v for k, v in self.state.get(room_id, {}).items()
                if not wanted or k in wanted}


def marker(department: Any, sender: str = ADMIN) -> Any:
    return SimpleNamespace(sender=sender, content={"department": department})


def entry(departments: tuple[str, ...] = ("Finances",), localpart: str = "edurand",
          locked: str | None = None, agent: bool = True) -> Any:
    entry_class = importlib.import_module("planb_guard_directory").Entry
    return entry_class(dn=f"uid={localpart},ou=people,dc=x", uid=localpart,
                       localpart=localpart, locked_time=locked, is_agent=agent,
                       departments=departments)


@pytest.fixture
def rg(g: Guard, mod: ModuleType) -> Guard:  # noqa: F811 - pytest fixtures
    api = RoomsApi(state={"!dept": {(MARKER, ""): marker("Finances")},
                          "!own": {},
                          "!forged": {(MARKER, ""): marker("Finances", sender=AGENT)}})
    rooms = importlib.import_module("planb_guard_rooms")
    g.guard._rooms = rooms.DepartmentRooms(api, lambda: g.guard._directory, ADMIN)
    g.api = api
    return g


def join(guard: Guard, room: str, user: str = AGENT, invited: bool = False) -> Any:
    return asyncio.run(guard.guard.user_may_join_room(user, room, invited))


def test_a_member_of_the_department_joins_by_the_directorys_word(
        rg: Guard, monkeypatch: pytest.MonkeyPatch) -> None:
    request_as(monkeypatch, rg.mod, AGENT)
    rg.directory.entries = [entry(("Finances",))]
    assert join(rg, "!dept") == "NOT_SPAM"
    assert rg.directory.searched == ["(planbLocalpart=edurand)"]
    assert rg.directory.bound == []  # a search, never a bind


@pytest.mark.parametrize("found", [
    [],                                       # no entry: a stranger, a service account
    [{"departments": ("Ressources humaines",)}],  # another department
    [{"departments": ("finances",)}],         # case differs: another department
    [{"locked": "000001010000Z"}],            # a leaver
    [{"agent": False}],                       # not a planbAgent entry
    [{"localpart": "eve"}],                   # another account's entry
    [{}, {}],                                 # ambiguous
])
def test_anyone_the_directory_does_not_put_in_the_department_is_refused(
        rg: Guard, monkeypatch: pytest.MonkeyPatch, found: list[dict[str, Any]]) -> None:
    request_as(monkeypatch, rg.mod, AGENT)
    rg.directory.entries = [entry(**spec) for spec in found]
    assert join(rg, "!dept") == ("M_FORBIDDEN", {"error": rg.mod.DEPARTMENT_ONLY})


def test_the_sync_and_invited_users_pass_other_rooms_are_synapses_business(
        rg: Guard, monkeypatch: pytest.MonkeyPatch) -> None:
    rg.directory.entries = []  # the directory knows no one
    request_as(monkeypatch, rg.mod, ADMIN)  # the admin API's force-join
    assert join(rg, "!dept") == "NOT_SPAM"
    request_as(monkeypatch, rg.mod, AGENT)
    assert join(rg, "!dept", invited=True) == "NOT_SPAM"
    assert join(rg, "!own") == "NOT_SPAM"
    assert join(rg, "!forged") == "NOT_SPAM"  # an agent's own "marker" restricts nothing
    assert rg.directory.searched == []


def test_a_hostile_localpart_never_widens_the_filter_nor_a_remote_user_passes(
        rg: Guard, monkeypatch: pytest.MonkeyPatch) -> None:
    request_as(monkeypatch, rg.mod, AGENT)
    rg.directory.entries = [entry(("Finances",))]
    join(rg, "!dept", user=f"@*)(uid=*:{SERVER}")
    assert rg.directory.searched == [r"(planbLocalpart=\2a\29\28uid=\2a)"]
    rg.directory.searched.clear()
    assert join(rg, "!dept", user="@edurand:elsewhere") != "NOT_SPAM"
    assert rg.directory.searched == []


def test_the_directory_down_refuses_and_standby_still_comes_first(
        rg: Guard, monkeypatch: pytest.MonkeyPatch) -> None:
    unavailable = importlib.import_module("planb_guard_directory").DirectoryUnavailable

    def down(ldap_filter: str) -> list[Any]:
        raise unavailable("no directory server answered")

    request_as(monkeypatch, rg.mod, AGENT)
    rg.directory.search = down  # type: ignore[method-assign]
    assert join(rg, "!dept") != "NOT_SPAM"
    rg.set_mode("standby")
    assert join(rg, "!dept") == ("M_FORBIDDEN", {"error": "pas active"})
