"""The Synapse login guard (roles/synapse/files/planb_ldap_guard.py), imported by path.

The guard runs inside Synapse, next to matrix-synapse-ldap3, neither of which is in
planb's own environment; the lab tests it in a real Synapse. Here only its base
class is a stand-in (it records each login that would reach the directory), so the
guard's own decisions run for real: which logins it lets through to LDAP at all.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
import types
from typing import Any

import pytest

import planb

GUARD = planb.data_path("playbooks") / "roles" / "synapse" / "files" / "planb_ldap_guard.py"


class Directory:
    """Stand-in for matrix-synapse-ldap3's module: records what would reach LDAP."""

    asked: list[str] = []

    def __init__(self, config: Any, api: Any) -> None:
        self.ldap_uris = ["ldap://127.0.0.1:389"]
        self.ldap_tls = None

    @staticmethod
    def parse_config(config: dict[str, Any]) -> dict[str, Any]:
        return config

    async def check_auth(self, username: str, login_type: str,
                         login_dict: dict[str, Any]) -> str | None:
        Directory.asked.append(username)
        return f"@{username.lower()}:planb.test"


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch) -> Any:
    stand_in = types.ModuleType("ldap_auth_provider")
    stand_in.LdapAuthProviderModule = Directory  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ldap_auth_provider", stand_in)
    spec = importlib.util.spec_from_file_location("planb_ldap_guard", GUARD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    Directory.asked = []
    config = module.PlanbLdapAuthProvider.parse_config(
        {"uri": "ldap://127.0.0.1", "planb_reserved_localparts": ["planb-admin", "kiosk"]})
    return module, module.PlanbLdapAuthProvider(config, api=None)


def login(provider: Any, username: str) -> str | None:
    result: str | None = asyncio.run(
        provider.check_auth(username, "m.login.password", {"password": "x"}))
    return result


@pytest.mark.parametrize("username", [
    "ed\u0130rand",         # İ: Unicode case-insensitively an "i"; lower() gives "i" + U+0307
    "edur\u0131nd",         # ı (dotless i)
    "\u017fmith",           # ſ (long s), folds to "s"
    "\u212aiosk",           # K (Kelvin sign), lower() is "k": the reserved "kiosk"
    "planb-adm\u0130n",     # the reserved admin account, dressed up
    "@\u212aiosk:planb.test",
    "\uff45durand",         # full-width e
])
def test_a_login_with_letters_that_fold_to_ascii_never_reaches_the_directory(
        guard: Any, username: str, caplog: pytest.LogCaptureFixture) -> None:
    module, provider = guard
    with caplog.at_level(logging.WARNING, logger="planb_ldap_guard"):
        assert login(provider, username) is None
    assert Directory.asked == []
    assert module.REFUSED in caplog.text


@pytest.mark.parametrize("username", ["edurand", "EDurand", "jean.dupont-2", "@edurand:planb.test"])
def test_ordinary_ascii_logins_reach_the_directory(guard: Any, username: str) -> None:
    _, provider = guard
    assert login(provider, username) is not None
    assert Directory.asked == [username]


@pytest.mark.parametrize("username", ["kiosk", "KIOSK", "@planb-admin:planb.test"])
def test_reserved_localparts_never_reach_the_directory(guard: Any, username: str) -> None:
    _, provider = guard
    assert login(provider, username) is None
    assert Directory.asked == []
