"""Synthetic agents for the lab's primary directory, written as an LDIF for ``slapadd``.

Everything is deterministic: the same seed and count give the same people, the same
departments and the same LDIF, byte for byte (so the ``lab_primary`` role reloads the
directory only when the seed or the count changed). Passwords come from a lab secret
instead (``<state_dir>/lab/agents-secret``), never from the seed:
:func:`agent_password` derives each agent's password from that secret and the login,
which is how ``planb lab password LOGIN`` knows a probe agent's password.

What the LDIF holds (suffix ``S``, default ``dc=primary,dc=lab``):

- ``ou=people,S``: one ``inetOrgPerson`` per agent, RDN ``uid=<login>``, with a fixed
  ``entryUUID`` (uuid5 of the seed and login), ``departmentNumber`` and ``ou`` = the
  department's name, ``memberOf`` its department group, ``userPassword`` ``{SSHA}``.
- Leavers (about 2 %): ``pwdAccountLockedTime: 000001010000Z`` (ppolicy's "locked for
  good"; the ppolicy overlay then refuses their bind). A sync finds them with
  ``(pwdAccountLockedTime=*)``: it is an operational attribute, ask for it by name.
- ``ou=groups,S``: one ``groupOfNames`` per department, ``cn`` = the department's name.

The first agents (as many as :data:`~planb.lab.agent_names.AWKWARD_NAMES` holds) carry
awkward names (DN and filter specials, spaces at the ends, an emoji, ...) so that
every lab run carries them through the sync; they are never leavers.

Departments: 150 (fewer when there are fewer agents), sized by a Zipf law, so a few
are huge and many are small, as in a real administration.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import re
import sys
import time
import unicodedata
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ldap3.utils.dn import escape_rdn

from planb.files import write_atomic
from planb.lab.agent_names import (
    AWKWARD_NAMES,
    DEPARTMENT_AREAS,
    DEPARTMENT_KINDS,
    GIVEN_NAMES,
    SURNAMES,
    TITLES,
)

DEFAULT_SUFFIX = "dc=primary,dc=lab"
DEFAULT_MAIL_DOMAIN = "metropole.lab"
DEFAULT_SEED = "planb-lab"
MAX_DEPARTMENTS = 150
LEAVER_SHARE = 0.02
ZIPF_EXPONENT = 1.0
#: ppolicy's value for an account locked until an administrator unlocks it.
LOCKED_FOREVER = "000001010000Z"
_UUID_NAMESPACE = uuid.UUID("6f1c8a52-6d0b-4e8e-9a53-2f0d6c1e9b10")
_SPECIAL_LETTERS = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss"})


@dataclass(frozen=True)
class Department:
    """A department and the DN-safe name of its group."""

    name: str
    code: str


@dataclass(frozen=True)
class SyntheticAgent:
    """One generated person (their password is derived, never stored here)."""

    login: str
    entry_uuid: str
    given_name: str
    surname: str
    mail: str
    department: Department
    title: str
    mobile: str
    employee_number: str
    leaver: bool

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.surname}"


def ascii_login_part(text: str) -> str:
    """``Saint-Éloi`` -> ``saint-eloi``, ``D'Angelo`` -> ``dangelo``, ``Dubœuf`` -> ``duboeuf``."""
    plain = unicodedata.normalize("NFKD", text.translate(_SPECIAL_LETTERS))
    plain = "".join(c for c in plain if not unicodedata.combining(c)).lower()
    plain = re.sub(r"[\s']+", "", plain)
    return re.sub(r"[^a-z0-9-]", "", plain).strip("-")


def department_names(count: int) -> list[str]:
    """``count`` distinct department names (at most :data:`MAX_DEPARTMENTS`)."""
    names = []
    for kind in DEPARTMENT_KINDS:
        for area in DEPARTMENT_AREAS:
            name = f"{kind} {area}".replace("de les ", "des ").replace("de le ", "du ")
            names.append(name)
    return names[:count]


def _zipf_sizes(total: int, buckets: int, rng: random.Random) -> list[int]:
    """Split ``total`` into ``buckets`` sizes >= 1 following a Zipf law (largest first)."""
    weights = [1 / (rank ** ZIPF_EXPONENT) for rank in range(1, buckets + 1)]
    spare = total - buckets
    scale = spare / sum(weights)
    sizes = [1 + int(w * scale) for w in weights]
    for index in rng.sample(range(buckets), total - sum(sizes)):
        sizes[index] += 1
    return sizes


def generate(count: int, seed: str = DEFAULT_SEED,
             mail_domain: str = DEFAULT_MAIL_DOMAIN) -> list[SyntheticAgent]:
    """``count`` agents, the same for the same ``seed``; logins and mails are unique."""
    if count < 1:
        raise ValueError(f"the number of agents must be at least 1 (got {count})")
    rng = random.Random(f"planb-agents:{seed}")
    n_departments = min(MAX_DEPARTMENTS, max(1, count // 10))
    names = department_names(n_departments)
    rng.shuffle(names)
    departments = [Department(name, f"D{index + 1:03d}") for index, name in enumerate(names)]
    slots = [d for d, size in zip(departments, _zipf_sizes(count, n_departments, rng),
                                  strict=True) for _ in range(size)]
    rng.shuffle(slots)
    # The awkward names (the first agents) are never leavers: they must reach Synapse.
    awkward = min(count, len(AWKWARD_NAMES))
    leavers = set(rng.sample(range(awkward, count), min(count - awkward,
                                                         round(count * LEAVER_SHARE))))
    employee_numbers = rng.sample(range(100000, 1000000), count)
    mobiles = rng.sample(range(10_000_000, 100_000_000), count)
    taken: dict[str, int] = {}
    agents = []
    for index in range(count):
        given, surname = rng.choice(GIVEN_NAMES), rng.choice(SURNAMES)
        if index < awkward:
            given, surname = AWKWARD_NAMES[index]
        base = f"{ascii_login_part(given)}.{ascii_login_part(surname)}"
        taken[base] = taken.get(base, 0) + 1
        # Homonyms get 2, 3, ...: unique, since a base (from names) never ends in a digit.
        login = base if taken[base] == 1 else f"{base}{taken[base]}"
        mobile = f"{mobiles[index]:08d}"
        agents.append(SyntheticAgent(
            login=login,
            entry_uuid=str(uuid.uuid5(_UUID_NAMESPACE, f"{seed}:{login}")),
            given_name=given, surname=surname, mail=f"{login}@{mail_domain}",
            department=slots[index], title=rng.choice(TITLES),
            mobile=f"+33 {rng.choice('67')} {' '.join(mobile[i:i + 2] for i in range(0, 8, 2))}",
            employee_number=str(employee_numbers[index]), leaver=index in leavers,
        ))
    return agents


# --- passwords ------------------------------------------------------------------------

def ensure_secret(path: Path) -> bytes:
    """The lab secret agents' passwords derive from; made (mode 0600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n")
    return path.read_bytes().strip()


def agent_password(secret: bytes, login: str) -> str:
    """The password of ``login``: 20 URL-safe characters from HMAC-SHA256(secret, login)."""
    digest = hmac.new(secret, f"password:{login}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:20]


def write_account_password(path: Path, secret: bytes, name: str, *,
                           dry_run: bool = False) -> bool:
    """Write the derived password of service account ``name`` to ``path`` (0600) if different.

    Returns whether it (with ``dry_run``: a real run) changed the file.
    """
    password = agent_password(secret, f"account:{name}") + "\n"
    if path.exists() and path.read_text(encoding="ascii") == password:
        return False
    if dry_run:
        return True
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, password, 0o600)
    return True


def ssha(password: str, salt: bytes) -> str:
    """An OpenLDAP ``{SSHA}`` hash of ``password`` with ``salt``."""
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _salt(secret: bytes, login: str) -> bytes:
    return hmac.new(secret, f"salt:{login}".encode(), hashlib.sha256).digest()[:8]


# --- LDIF -----------------------------------------------------------------------------

#: RFC 2849 SAFE-STRING: ASCII without NUL, LF, CR; no leading space, ':' or '<'.
_SAFE = re.compile(r"^[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f]"
                   r"[\x01-\x09\x0b\x0c\x0e-\x7f]*$")


def ldif_line(name: str, value: str) -> str:
    """``name: value``, or ``name:: base64`` when RFC 2849 requires it (non-ASCII, ...)."""
    if value == "" or (_SAFE.match(value) and not value.endswith(" ")):
        return f"{name}: {value}" if value else f"{name}:"
    return f"{name}:: {base64.b64encode(value.encode()).decode()}"


def _entry(dn: str, attributes: Iterable[tuple[str, str]]) -> str:
    lines = [ldif_line("dn", dn)] + [ldif_line(n, v) for n, v in attributes]
    return "\n".join(lines) + "\n\n"


def group_dn(department: Department, suffix: str) -> str:
    return f"cn={escape_rdn(department.name)},ou=groups,{suffix}"


def ldif_entries(agents: list[SyntheticAgent], secret: bytes,
                 suffix: str = DEFAULT_SUFFIX) -> Iterator[str]:
    """The LDIF of the suffix, ``ou=people``, ``ou=groups``, agents and groups."""
    first = suffix.split(",")[0]
    top_attr, top_value = first.split("=", 1)
    yield _entry(suffix, [("objectClass", "top"), ("objectClass", "dcObject"),
                          ("objectClass", "organization"), (top_attr, top_value),
                          ("o", f"{top_value} (planb lab primary)")])
    for ou in ("people", "groups"):
        yield _entry(f"ou={ou},{suffix}", [("objectClass", "organizationalUnit"), ("ou", ou)])
    members: dict[Department, list[str]] = {}
    for agent in agents:
        dn = f"uid={escape_rdn(agent.login)},ou=people,{suffix}"
        members.setdefault(agent.department, []).append(dn)
        attrs = [("objectClass", "inetOrgPerson"), ("uid", agent.login),
                 ("cn", agent.display_name), ("sn", agent.surname),
                 ("givenName", agent.given_name), ("displayName", agent.display_name),
                 ("mail", agent.mail), ("title", agent.title), ("mobile", agent.mobile),
                 ("employeeNumber", agent.employee_number),
                 ("departmentNumber", agent.department.name), ("ou", agent.department.name),
                 ("userPassword", ssha(agent_password(secret, agent.login),
                                       _salt(secret, agent.login))),
                 ("entryUUID", agent.entry_uuid),
                 ("memberOf", group_dn(agent.department, suffix))]
        if agent.leaver:
            attrs.append(("pwdAccountLockedTime", LOCKED_FOREVER))
        yield _entry(dn, attrs)
    for department in sorted(members, key=lambda d: d.code):
        attrs = [("objectClass", "groupOfNames"), ("cn", department.name),
                 ("description", department.code)]
        attrs += [("member", dn) for dn in members[department]]
        yield _entry(group_dn(department, suffix), attrs)


def write_ldif(path: Path, agents: list[SyntheticAgent], secret: bytes,
               suffix: str = DEFAULT_SUFFIX, *, dry_run: bool = False) -> tuple[bool, str]:
    """Write the LDIF to ``path`` unless it is already identical: (changed, sha256).

    With ``dry_run`` nothing is written; ``changed`` says whether a real run would write.
    """
    text = "".join(ldif_entries(agents, secret, suffix)).encode("utf-8")
    digest = hashlib.sha256(text).hexdigest()
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == digest:
        return False, digest
    if dry_run:
        return True, digest
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text, 0o600)
    return True, digest


def _add_check(parser: argparse.ArgumentParser) -> None:
    """``--check`` (write nothing, say what would change) or ``--write`` (the default)."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="write nothing, say what would change")
    mode.add_argument("--write", dest="check", action="store_false",
                      help="write the file when it differs (the default)")


def main(argv: list[str] | None = None) -> int:
    """``python -m planb.lab.agents``: what the ``lab_primary`` role runs on the controller."""
    parser = argparse.ArgumentParser(prog="python -m planb.lab.agents",
                                     description="Synthetic agents for the lab's primary.")
    sub = parser.add_subparsers(dest="command", required=True)
    ldif = sub.add_parser("ldif", help="write the agents' LDIF (only if it changed)")
    ldif.add_argument("--count", type=int, required=True)
    ldif.add_argument("--seed", default=DEFAULT_SEED)
    ldif.add_argument("--suffix", default=DEFAULT_SUFFIX)
    ldif.add_argument("--mail-domain", default=DEFAULT_MAIL_DOMAIN)
    ldif.add_argument("--secret-file", type=Path, required=True)
    ldif.add_argument("--out", type=Path, required=True)
    _add_check(ldif)
    password = sub.add_parser("password", help="print an agent's password")
    password.add_argument("--secret-file", type=Path, required=True)
    password.add_argument("login")
    account = sub.add_parser("account-password",
                             help="write a lab service account's password to a file (0600)")
    account.add_argument("--secret-file", type=Path, required=True)
    account.add_argument("--name", required=True)
    account.add_argument("--out", type=Path, required=True)
    _add_check(account)
    args = parser.parse_args(argv)
    try:
        if getattr(args, "check", False) and not args.secret_file.exists():
            # A dry run makes no secret, so everything derived from it would change.
            print(json.dumps({"changed": True, "secret_missing": str(args.secret_file)}))
            return 0
        secret = ensure_secret(args.secret_file)
        if args.command == "password":
            print(agent_password(secret, args.login))
            return 0
        if args.command == "account-password":
            changed = write_account_password(args.out, secret, args.name, dry_run=args.check)
            print(json.dumps({"changed": changed, "file": str(args.out)}))
            return 0
        start = time.monotonic()
        agents = generate(args.count, args.seed, args.mail_domain)
        changed, digest = write_ldif(args.out, agents, secret, args.suffix, dry_run=args.check)
    except (OSError, ValueError) as exc:
        print(f"planb.lab.agents: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"changed": changed, "sha256": digest, "ldif": str(args.out),
                      "agents": len(agents), "leavers": sum(a.leaver for a in agents),
                      "departments": len({a.department for a in agents}),
                      "seconds": round(time.monotonic() - start, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
