"""planb's Synapse module (roles/synapse/files/planb_ldap_guard.py), imported by path.

The module runs inside Synapse; here Synapse's module API and the directory are
stand-ins that record what reached them, so the guard's own decisions run for real:
what is refused before any LDAP request (typed logins, reserved names, standby, the
per-address failure bucket), and which account a directory answer opens. The LDAP
exchange itself and Synapse's answers are tested on the lab
(tests/integration/test_login_guard_lab.py).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

import planb

FILES = planb.data_path("playbooks") / "roles" / "synapse" / "files"
SERVER = "planb.test"


@pytest.fixture(scope="module")
def mod() -> Iterator[ModuleType]:
    sys.path.insert(0, str(FILES))
    try:
        yield importlib.import_module("planb_ldap_guard")
    finally:
        sys.path.remove(str(FILES))


@dataclass
class Directory:
    """Stand-in for planb_guard_directory.Directory: canned entries, recorded calls."""

    entries: list[Any] = field(default_factory=list)
    password: str = "right"
    searched: list[str] = field(default_factory=list)
    bound: list[str] = field(default_factory=list)

    def search(self, ldap_filter: str) -> list[Any]:
        self.searched.append(ldap_filter)
        return list(self.entries)

    def bind_as(self, dn: str, password: str) -> bool:
        self.bound.append(dn)
        return password == self.password


@dataclass
class Api:
    """Stand-in for Synapse's ModuleApi: the users it knows, what was registered."""

    users: dict[str, Any] = field(default_factory=dict)
    server_name: str = SERVER
    callbacks: dict[str, Any] = field(default_factory=dict)

    def register_password_auth_provider_callbacks(self, **kw: Any) -> None:
        self.callbacks.update(kw)

    def register_spam_checker_callbacks(self, **kw: Any) -> None:
        self.callbacks.update(kw)

    def register_web_resource(self, path: str, resource: Any) -> None:
        self.callbacks[path] = resource

    async def defer_to_thread(self, f: Any, *args: Any) -> Any:
        return f(*args)

    async def get_userinfo_by_id(self, user_id: str) -> Any:
        return self.users.get(user_id)


def user(**kw: Any) -> SimpleNamespace:
    base = {"is_deactivated": False, "is_admin": False, "is_guest": False,
            "appservice_id": None, "user_type": None, "locked": False}
    return SimpleNamespace(**(base | kw))


@dataclass
class Guard:
    mod: ModuleType
    guard: Any
    directory: Directory
    api: Api
    mode_file: Path

    def login(self, username: str, password: str = "right") -> Any:
        return asyncio.run(self.guard.check_auth(username, "m.login.password",
                                                 {"password": password}))

    def set_mode(self, mode: str) -> None:
        self.mode_file.write_text(mode + "\n")


@pytest.fixture
def g(mod: ModuleType, tmp_path: Path) -> Guard:
    (tmp_path / "bind").write_text("secret\n")
    mode_file = tmp_path / "mode"
    mode_file.write_text("active\n")
    config = mod.PlanbGuard.parse_config({
        "uri": "ldaps://192.0.2.1:636", "base": "ou=people,dc=x", "bind_dn": "cn=synapse",
        "bind_password_file": str(tmp_path / "bind"), "planb_mode_file": str(mode_file),
        "planb_reserved_localparts": ["planb-admin", "kiosk"],
        "planb_probe_localparts": ["planb-probe-1", "planb-probe-2"],
        "planb_standby_exempt_localparts": ["planb-probe-1"],
        "planb_failed_per_address": {"per_second": 0, "burst_count": 3},
        "planb_standby_message": "pas active"})
    api = Api()
    guard = mod.PlanbGuard(config, api)
    directory = Directory()
    guard._directory = directory
    return Guard(mod, guard, directory, api, mode_file)


def entry(mod: ModuleType, uid: str = "edurand", localpart: str | None = "edurand",
          locked: str | None = None, agent: bool = True) -> Any:
    entry_class = importlib.import_module("planb_guard_directory").Entry
    return entry_class(dn=f"uid={uid},ou=people,dc=x", uid=uid, localpart=localpart,
                       locked_time=locked, is_agent=agent)


@pytest.mark.parametrize("username", [
    "ed\u0130rand",         # İ: Unicode case-insensitively an "i"; lower() gives "i" + U+0307
    "edur\u0131nd",         # ı (dotless i)
    "\u017fmith",           # ſ (long s), folds to "s"
    "\u212aiosk",           # K (Kelvin sign), lower() is "k": the reserved "kiosk"
    "planb-adm\u0130n",     # the reserved admin account, dressed up
    "@\u212aiosk:planb.test",
    "\uff45durand",         # full-width e
    "*", "a*", "*)(uid=*", "x\\2a", "(uid=*)", "ed\x00",
    "@edurand:elsewhere.test",
    "kiosk", "KIOSK", "@planb-admin:planb.test",
])
def test_bad_or_reserved_logins_never_reach_the_directory(
        g: Guard, username: str, caplog: pytest.LogCaptureFixture) -> None:
    g.directory.entries = [entry(g.mod)]
    with caplog.at_level(logging.WARNING, logger="planb_ldap_guard"):
        assert g.login(username) is None
    assert g.directory.searched == [] and g.directory.bound == []
    assert g.mod.REFUSED in caplog.text and "right" not in caplog.text


@pytest.mark.parametrize(("username", "expected"), [
    ("edurand", "(uid=edurand)"),
    ("EDurand", "(uid=EDurand)"),
    ("@edurand:planb.test",
     "(|(planbLocalpart=edurand)(&(uid=edurand)(!(planbLocalpart=*))))"),
])
def test_ordinary_logins_search_the_escaped_login(g: Guard, username: str,
                                                  expected: str) -> None:
    g.directory.entries = [entry(g.mod)]
    g.api.users[f"@edurand:{SERVER}"] = user()
    assert g.login(username) == (f"@edurand:{SERVER}", None)
    assert g.directory.searched == [expected]


def test_the_account_is_the_entrys_localpart_not_the_typed_login(g: Guard) -> None:
    # After renames: uid mdupont belongs to X, whose account is @xmartin.
    g.directory.entries = [entry(g.mod, uid="mdupont", localpart="xmartin")]
    g.api.users[f"@xmartin:{SERVER}"] = user()
    g.api.users[f"@mdupont:{SERVER}"] = user()
    assert g.login("mdupont") == (f"@xmartin:{SERVER}", None)


@pytest.mark.parametrize(("known", "why"), [
    (None, "no Matrix account"),
    (user(is_deactivated=True), "deactivated"),
    (user(is_admin=True), "not an agent's account"),
    (user(user_type="support"), "support account"),
])
def test_the_account_must_exist_be_active_and_an_agents(
        g: Guard, known: Any, why: str, caplog: pytest.LogCaptureFixture) -> None:
    g.directory.entries = [entry(g.mod)]
    if known is not None:
        g.api.users[f"@edurand:{SERVER}"] = known
    with caplog.at_level(logging.WARNING, logger="planb_ldap_guard"):
        assert g.login("edurand") is None
    assert why in caplog.text
    assert g.directory.bound  # the password was right: refused for the account


@pytest.mark.parametrize(("entries", "locked"), [
    ([], None), (["a", "b"], None),
    (["a"], "000001010000Z"),      # planb's leaver lock
    (["a"], "NOW"),                # ppolicy lockout, fresh
])
def test_no_single_unlocked_entry_refuses_before_any_bind(
        g: Guard, entries: list[str], locked: str | None) -> None:
    if locked == "NOW":
        from datetime import UTC, datetime
        locked = datetime.now(UTC).strftime("%Y%m%d%H%M%SZ")
    g.directory.entries = [entry(g.mod, uid=u, locked=locked) for u in entries]
    g.api.users[f"@edurand:{SERVER}"] = user()
    assert g.login("edurand") is None
    assert g.directory.searched and g.directory.bound == []


def test_an_old_ppolicy_lock_is_left_to_slapd(mod: ModuleType) -> None:
    assert mod.lock_refuses("20200101000000Z", 900) is None
    assert "leaver" in (mod.lock_refuses("000001010000Z", 900) or "")
    assert mod.lock_refuses("garbage", 900) is not None
    assert mod.lock_refuses(None, 900) is None


def test_wrong_password_and_entries_without_localpart_are_refused(g: Guard) -> None:
    g.api.users[f"@edurand:{SERVER}"] = user()
    g.directory.entries = [entry(g.mod)]
    assert g.login("edurand", "wrong") is None
    assert g.login("edurand", "") is None
    g.directory.entries = [entry(g.mod, localpart=None)]
    assert g.login("edurand") is None
    assert g.directory.bound == [entry(g.mod).dn]  # only the first, wrong, password


def test_probe_entries_open_their_uid_only_when_listed(g: Guard) -> None:
    g.api.users[f"@planb-probe-2:{SERVER}"] = user(user_type="support")
    g.api.users[f"@other:{SERVER}"] = user()
    g.directory.entries = [entry(g.mod, uid="planb-probe-2", localpart=None, agent=False)]
    assert g.login("planb-probe-2") == (f"@planb-probe-2:{SERVER}", None)
    g.directory.entries = [entry(g.mod, uid="other", localpart=None, agent=False)]
    assert g.login("other") is None


def test_standby_refuses_before_the_directory_except_exempt_probes(
        g: Guard, caplog: pytest.LogCaptureFixture) -> None:
    g.set_mode("standby")
    g.directory.entries = [entry(g.mod)]
    g.api.users[f"@edurand:{SERVER}"] = user()
    with caplog.at_level(logging.WARNING, logger="planb_ldap_guard"):
        assert g.login("edurand") is None and g.login("edurand", "wrong") is None
        # Exact spelling only: another spelling of a probe is an ordinary login.
        assert g.login("PLANB-PROBE-1") is None
    assert g.directory.searched == []
    assert caplog.text.count("standby") == 3
    g.directory.entries = [entry(g.mod, uid="planb-probe-1", localpart=None, agent=False)]
    g.api.users[f"@planb-probe-1:{SERVER}"] = user(user_type="support")
    assert g.login("planb-probe-1") == (f"@planb-probe-1:{SERVER}", None)


def test_the_mode_file_is_read_at_each_login(g: Guard) -> None:
    g.directory.entries = [entry(g.mod)]
    g.api.users[f"@edurand:{SERVER}"] = user()
    assert g.login("edurand") is not None
    g.set_mode("standby")
    assert g.login("edurand") is None
    g.set_mode("active")
    assert g.login("edurand") is not None
    g.mode_file.unlink()  # no file: standby
    assert g.login("edurand") is None
    g.set_mode("Active")
    assert g.login("edurand") is None


def test_failed_logins_empty_the_address_bucket_then_nothing_reaches_the_directory(
        g: Guard) -> None:
    g.directory.entries = [entry(g.mod)]
    g.api.users[f"@edurand:{SERVER}"] = user()
    for _ in range(3):  # burst_count 3, no refill
        assert g.login("edurand", "wrong") is None
    asked = len(g.directory.searched)
    assert g.login("edurand") is None  # the right password, refused like a wrong one
    assert len(g.directory.searched) == asked


def test_the_bucket_refills_with_time(mod: ModuleType) -> None:
    now = [0.0]
    buckets = mod.FailureBuckets(0.5, 2, clock=lambda: now[0])
    buckets.failed("a")
    buckets.failed("a")
    assert not buckets.allows("a") and buckets.allows("b")
    now[0] = 2.0
    assert buckets.allows("a")


@pytest.mark.parametrize("address", ["edurand@x.fr*", "*@x.fr", "e)(uid=*@x.fr",
                                     "\u0130@x.fr", "edurand"])
def test_email_logins_with_filter_syntax_never_reach_the_directory(
        g: Guard, address: str) -> None:
    assert asyncio.run(g.guard.check_3pid_auth("email", address, "right")) is None
    assert g.directory.searched == []


def test_an_email_login_finds_the_entry_by_mail(g: Guard) -> None:
    g.directory.entries = [entry(g.mod)]
    g.api.users[f"@edurand:{SERVER}"] = user()
    assert asyncio.run(g.guard.check_3pid_auth("email", "e.durand@x.fr", "right")) == (
        f"@edurand:{SERVER}", None)
    assert g.directory.searched == ["(mail=e.durand@x.fr)"]


def request_as(monkeypatch: pytest.MonkeyPatch, mod: ModuleType, entity: str | None) -> None:
    context = SimpleNamespace(request=None if entity is None else
                              SimpleNamespace(authenticated_entity=entity, ip_address="1.2.3.4"))
    monkeypatch.setattr(mod, "current_context", lambda: context)


def test_standby_refuses_agents_actions_but_not_planbs_admin(
        g: Guard, monkeypatch: pytest.MonkeyPatch) -> None:
    agent, admin = f"@edurand:{SERVER}", f"@planb-admin:{SERVER}"
    event = SimpleNamespace(sender=agent)
    g.set_mode("standby")
    request_as(monkeypatch, g.mod, agent)
    for answer in (g.guard.check_event_for_spam(event),
                   g.guard.user_may_create_room(agent, {}),
                   g.guard.user_may_invite(agent, admin, "!r"),
                   g.guard.user_may_join_room(agent, "!r", True)):
        assert asyncio.run(answer) == ("M_FORBIDDEN", {"error": "pas active"})
    request_as(monkeypatch, g.mod, admin)  # the admin API force-joining the agent
    assert asyncio.run(g.guard.user_may_join_room(agent, "!r", True)) == "NOT_SPAM"
    assert asyncio.run(g.guard.check_event_for_spam(event)) == "NOT_SPAM"
    request_as(monkeypatch, g.mod, None)  # Synapse's own background work
    assert asyncio.run(g.guard.check_event_for_spam(event)) == "NOT_SPAM"
    g.set_mode("active")
    request_as(monkeypatch, g.mod, agent)
    assert asyncio.run(g.guard.user_may_create_room(agent, {})) == "NOT_SPAM"


def test_the_module_registers_password_logins_and_standby_checks(g: Guard) -> None:
    checkers = g.api.callbacks["auth_checkers"]
    assert list(checkers) == [("m.login.password", ("password",))]
    assert {"check_event_for_spam", "user_may_create_room", "user_may_invite",
            "user_may_join_room", "check_3pid_auth"} <= set(g.api.callbacks)


def test_a_directory_error_refuses_the_login_and_says_so(
        g: Guard, caplog: pytest.LogCaptureFixture) -> None:
    def broken(ldap_filter: str) -> list[Any]:
        raise TypeError("required argument is not an integer")

    g.directory.search = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="planb_ldap_guard"):
        assert g.login("edurand") is None
    assert g.mod.REFUSED in caplog.text and "TypeError" in caplog.text


def test_ldap_connections_get_whole_second_timeouts(mod: ModuleType) -> None:
    """ldap3 packs receive_timeout into SO_RCVTIMEO, which takes whole seconds only."""
    directory_module = importlib.import_module("planb_guard_directory")
    config = directory_module.DirectoryConfig(
        uris=["ldaps://192.0.2.1:636"], base="ou=people,dc=x", bind_dn="cn=synapse",
        bind_password="x", ca_file=None, connect_timeout=2.5)
    directory = directory_module.Directory(config)
    conn = directory._connection(directory._servers[0], "cn=synapse", "x")
    assert conn.receive_timeout == 3 and isinstance(conn.receive_timeout, int)
