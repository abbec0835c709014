"""``planb lab churn``: change the lab's primary directory the way a month of HR does.

Hires, leavers, renames (a new surname and display name), department moves and
reactivations, each on distinct agents, written over LDAPS as the primary's admin
(``cn=admin,dc=primary,dc=lab``, password in ``<state_dir>/lab/primary-admin-password``).
What changed is recorded in ``<state_dir>/lab/churn-<timestamp>.json`` so a test can
compare it with ``planb sync plan``. Lab only: it refuses a site without ``lab:``.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, SUBTREE, Connection

from planb.config import SiteConfig
from planb.directory.identifiers import child_dn, filter_equals
from planb.directory.ldap_conn import LdapEndpoint, read_secret_file
from planb.errors import PlanbError, UsageError
from planb.lab.agent_names import AWKWARD_NAMES, GIVEN_NAMES, SURNAMES, TITLES
from planb.lab.agents import (
    DEFAULT_MAIL_DOMAIN,
    DEFAULT_SUFFIX,
    LOCKED_FOREVER,
    agent_password,
    ascii_login_part,
    ssha,
)

KINDS = ("hires", "leavers", "renames", "moves", "reactivations")
_ATTRS = ["uid", "entryUUID", "departmentNumber", "displayName", "givenName", "sn",
          "pwdAccountLockedTime"]


@dataclass
class ChurnRecord:
    """What one churn changed; ids are the primary's entryUUIDs."""

    at: str
    percent: float
    hires: list[dict[str, str]] = field(default_factory=list)
    leavers: list[dict[str, str]] = field(default_factory=list)
    renames: list[dict[str, str]] = field(default_factory=list)
    moves: list[dict[str, str]] = field(default_factory=list)
    reactivations: list[dict[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {kind: len(getattr(self, kind)) for kind in KINDS}


@dataclass(frozen=True)
class _Person:
    dn: str
    id: str
    login: str
    given_name: str
    surname: str
    display_name: str
    department: str
    locked: bool


_AWKWARD = {(given.strip(), surname.strip()) for given, surname in AWKWARD_NAMES}


def _awkward(person: _Person) -> bool:
    """Whether ``person`` is one of the lab's awkward names (never churned)."""
    return (person.given_name.strip(), person.surname.strip()) in _AWKWARD


def _one(attrs: dict[str, Any], name: str) -> str:
    value = attrs.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    return "" if value is None else str(value)


def split_counts(total: int) -> dict[str, int]:
    """``total`` changes spread over the five kinds as evenly as possible (pure)."""
    base, extra = divmod(max(0, total), len(KINDS))
    return {kind: base + (1 if i < extra else 0) for i, kind in enumerate(KINDS)}


def _check(conn: Connection, what: str) -> None:
    if conn.result.get("result") != 0:
        raise PlanbError(f"lab churn: {what} failed: {conn.result.get('description')} "
                         f"{conn.result.get('message') or ''}".rstrip())


class Churn:
    """Churn against the lab primary of ``site``."""

    def __init__(self, site: SiteConfig, *, seed: int | None = None) -> None:
        if site.lab is None or site.primary.ldap is None:
            raise UsageError("lab churn works on a lab site only (planb.yml has no lab: "
                             "section or no primary.ldap)")
        self.site, self.suffix = site, DEFAULT_SUFFIX
        self.rng = random.Random(seed)
        lab_dir = site.state_dir / "lab"
        ldap = site.primary.ldap
        self.endpoint = LdapEndpoint(
            ldap.url, f"cn=admin,{self.suffix}",
            read_secret_file(lab_dir / "primary-admin-password", "the lab primary's admin"),
            site.base_dir / ldap.ca_file if ldap.ca_file else None, label="the lab primary")
        self.secret = read_secret_file(lab_dir / "agents-secret", "the lab agents' secret")
        self.records_dir = lab_dir

    def _people(self, conn: Connection) -> list[_Person]:
        entries = conn.extend.standard.paged_search(
            f"ou=people,{self.suffix}", "(objectClass=inetOrgPerson)", SUBTREE,
            attributes=_ATTRS, paged_size=1000, generator=False)
        return [_Person(e["dn"], _one(e["attributes"], "entryUUID"),
                        _one(e["attributes"], "uid"), _one(e["attributes"], "givenName"),
                        _one(e["attributes"], "sn"), _one(e["attributes"], "displayName"),
                        _one(e["attributes"], "departmentNumber"),
                        bool(_one(e["attributes"], "pwdAccountLockedTime")))
                for e in entries if e.get("type") == "searchResEntry"]

    def _previous_leavers(self) -> set[str]:
        ids: set[str] = set()
        for path in self.records_dir.glob("churn-*.json"):
            try:
                ids.update(x["id"] for x in json.loads(path.read_text("utf-8"))["leavers"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return ids

    def run(self, percent: float) -> tuple[ChurnRecord, Path]:
        """Apply ``percent`` % churn; return the record and where it was written."""
        if not 0 < percent <= 50:
            raise UsageError(f"--percent must be above 0 and at most 50 (got {percent:g})")
        conn = self.endpoint.connect()
        try:
            people = self._people(conn)
            departments = sorted({p.department for p in people if p.department})
            counts = split_counts(max(len(KINDS), round(len(people) * percent / 100)))
            record = ChurnRecord(datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"), percent)
            # The awkward names stay as seeded: the name tests read them back exactly.
            active = [p for p in people if not p.locked and not _awkward(p)]
            self.rng.shuffle(active)
            picked = iter(active)
            for _ in range(counts["leavers"]):
                record.leavers.append(self._leave(conn, next(picked)))
            for _ in range(counts["renames"]):
                record.renames.append(self._rename(conn, next(picked)))
            for _ in range(counts["moves"]):
                record.moves.append(self._move(conn, next(picked), departments))
            previous = self._previous_leavers()
            locked = sorted((p for p in people if p.locked),
                            key=lambda p: (p.id not in previous, self.rng.random()))
            for person in locked[:counts["reactivations"]]:
                record.reactivations.append(self._reactivate(conn, person))
            logins = {p.login for p in people}
            for _ in range(counts["hires"]):
                record.hires.append(self._hire(conn, logins, departments))
        finally:
            conn.unbind()
        path = self.records_dir / f"churn-{record.at}.json"
        path.write_text(json.dumps(asdict(record), ensure_ascii=False, indent=1) + "\n",
                        encoding="utf-8")
        return record, path

    def _group_dn(self, department: str) -> str:
        return child_dn("cn", department, f"ou=groups,{self.suffix}")

    def _leave(self, conn: Connection, person: _Person) -> dict[str, str]:
        conn.modify(person.dn, {"pwdAccountLockedTime": [(MODIFY_REPLACE, [LOCKED_FOREVER])]})
        _check(conn, f"locking {person.login}")
        return {"id": person.id, "login": person.login}

    def _reactivate(self, conn: Connection, person: _Person) -> dict[str, str]:
        conn.modify(person.dn, {"pwdAccountLockedTime": [(MODIFY_DELETE, [])]})
        _check(conn, f"unlocking {person.login}")
        return {"id": person.id, "login": person.login}

    def _rename(self, conn: Connection, person: _Person) -> dict[str, str]:
        surname = self.rng.choice([s for s in SURNAMES if s != person.surname])
        new = f"{person.given_name} {surname}"
        conn.modify(person.dn, {"sn": [(MODIFY_REPLACE, [surname])],
                                "cn": [(MODIFY_REPLACE, [new])],
                                "displayName": [(MODIFY_REPLACE, [new])]})
        _check(conn, f"renaming {person.login}")
        return {"id": person.id, "login": person.login, "old": person.display_name, "new": new}

    def _move(self, conn: Connection, person: _Person, departments: list[str]
              ) -> dict[str, str]:
        new = self.rng.choice([d for d in departments if d != person.department])
        conn.modify(person.dn, {"departmentNumber": [(MODIFY_REPLACE, [new])],
                                "ou": [(MODIFY_REPLACE, [new])]})
        _check(conn, f"moving {person.login}")
        if person.department:
            conn.modify(self._group_dn(person.department),
                        {"member": [(MODIFY_DELETE, [person.dn])]})
            _check(conn, f"removing {person.login} from {person.department}")
        conn.modify(self._group_dn(new), {"member": [(MODIFY_ADD, [person.dn])]})
        _check(conn, f"adding {person.login} to {new}")
        return {"id": person.id, "login": person.login, "old": person.department, "new": new}

    def _hire(self, conn: Connection, logins: set[str], departments: list[str]
              ) -> dict[str, str]:
        given, surname = self.rng.choice(GIVEN_NAMES), self.rng.choice(SURNAMES)
        base = f"{ascii_login_part(given)}.{ascii_login_part(surname)}"
        login, n = base, 1
        while login in logins:
            n += 1
            login = f"{base}{n}"
        logins.add(login)
        department = self.rng.choice(departments)
        dn = child_dn("uid", login, f"ou=people,{self.suffix}")
        name = f"{given} {surname}"
        password = ssha(agent_password(self.secret.encode(), login), self.rng.randbytes(8))
        conn.add(dn, ["inetOrgPerson"], {
            "uid": login, "cn": name, "sn": surname, "givenName": given, "displayName": name,
            "mail": f"{login}@{DEFAULT_MAIL_DOMAIN}", "title": self.rng.choice(TITLES),
            "departmentNumber": department, "ou": department,
            "employeeNumber": str(self.rng.randrange(1_000_000, 9_999_999)),
            "userPassword": password})
        _check(conn, f"hiring {login}")
        conn.modify(self._group_dn(department), {"member": [(MODIFY_ADD, [dn])]})
        _check(conn, f"adding {login} to {department}")
        conn.search(dn, filter_equals("uid", login), attributes=["entryUUID"], size_limit=1)
        _check(conn, f"reading {login}'s entryUUID")
        return {"id": _one(conn.response[0]["attributes"], "entryUUID"), "login": login,
                "department": department}
