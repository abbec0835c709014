"""The lab's synthetic agents and their LDIF, as slapadd and the sync will read them."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import stat
import statistics
from collections import Counter
from pathlib import Path

import pytest
from ldap3.utils.dn import parse_dn

from planb.lab import agents as lab_agents
from planb.lab.agents import agent_password, generate, ldif_entries, write_ldif

SECRET = b"unit-test-secret"
SUFFIX = "dc=primary,dc=lab"


@pytest.fixture(scope="module")
def nine_thousand() -> list[lab_agents.SyntheticAgent]:
    return generate(9000, "unit")


def parse_ldif(text: str) -> list[dict[str, list[str]]]:
    """A strict little RFC 2849 reader: unfolds lines, decodes ``::`` base64 values."""
    entries = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        entry: dict[str, list[str]] = {}
        for line in block.split("\n"):
            assert line.isascii(), f"non-ASCII line in LDIF: {line!r}"
            name, sep, rest = line.partition(":")
            assert sep, f"not an attribute line: {line!r}"
            if rest.startswith(":"):
                value = base64.b64decode(rest[1:].strip(), validate=True).decode("utf-8")
            else:
                assert rest.startswith(" ") or rest == "", line
                value = rest[1:]
            entry.setdefault(name, []).append(value)
        assert list(entry)[0] == "dn" and len(entry["dn"]) == 1
        entries.append(entry)
    return entries


def check_ssha(hashed: str, password: str) -> bool:
    raw = base64.b64decode(hashed.removeprefix("{SSHA}"))
    digest, salt = raw[:20], raw[20:]
    return hashlib.sha1(password.encode() + salt).digest() == digest


def test_counts_and_unique_identifiers(nine_thousand: list[lab_agents.SyntheticAgent]) -> None:
    assert len(nine_thousand) == 9000
    for field in ("login", "mail", "employee_number", "entry_uuid", "mobile"):
        values = [getattr(a, field) for a in nine_thousand]
        assert len(set(values)) == 9000, field


def test_homonyms_get_numbered_logins(nine_thousand: list[lab_agents.SyntheticAgent]) -> None:
    logins = {a.login for a in nine_thousand}
    numbered = [login for login in logins if login[-1].isdigit()]
    assert numbered, "9,000 agents from these name lists must include homonyms"
    for login in numbered:
        assert login.rstrip("0123456789") in logins
    assert all(login.isascii() and login == login.lower() for login in logins)


def test_names_keep_their_accents(nine_thousand: list[lab_agents.SyntheticAgent]) -> None:
    names = [a.display_name for a in nine_thousand]
    accented = [n for n in names if not n.isascii()]
    assert len(accented) > 0.3 * len(names)
    assert any("'" in a.surname for a in nine_thousand)
    assert lab_agents.ascii_login_part("Saint-Éloi") == "saint-eloi"
    assert lab_agents.ascii_login_part("D'Angelo") == "dangelo"
    assert lab_agents.ascii_login_part("Dubœuf") == "duboeuf"
    assert lab_agents.ascii_login_part("Le Gall") == "legall"


def test_about_two_percent_leavers(nine_thousand: list[lab_agents.SyntheticAgent]) -> None:
    share = sum(a.leaver for a in nine_thousand) / len(nine_thousand)
    assert 0.015 <= share <= 0.025


def test_150_departments_of_very_unequal_sizes(
        nine_thousand: list[lab_agents.SyntheticAgent]) -> None:
    sizes = Counter(a.department for a in nine_thousand)
    assert len(sizes) == 150
    assert min(sizes.values()) >= 1
    largest, median = max(sizes.values()), statistics.median(sizes.values())
    assert largest > 0.1 * len(nine_thousand)
    assert largest > 10 * median
    assert len({d.name for d in sizes}) == 150
    assert any(not d.name.isascii() for d in sizes)


def test_same_seed_same_agents_other_seed_others() -> None:
    assert generate(300, "a") == generate(300, "a")
    assert [a.login for a in generate(300, "a")] != [a.login for a in generate(300, "b")]
    with pytest.raises(ValueError, match="at least 1"):
        generate(0)
    assert len({a.department for a in generate(5)}) == 1


def test_ldif_is_valid_and_consistent(nine_thousand: list[lab_agents.SyntheticAgent]) -> None:
    sample = nine_thousand[:600]
    entries = parse_ldif("".join(ldif_entries(sample, SECRET, SUFFIX)))
    by_dn = {e["dn"][0]: e for e in entries}
    assert len(by_dn) == len(entries)
    people = [e for e in entries if e["objectClass"] == ["inetOrgPerson"]]
    groups = [e for e in entries if e["objectClass"] == ["groupOfNames"]]
    assert len(people) == 600
    assert len(groups) == len({a.department for a in sample})
    assert len(entries) == 3 + len(people) + len(groups)
    for dn in by_dn:
        assert [rdn for rdn in parse_dn(dn)][-2:] == [("dc", "primary", ","), ("dc", "lab", "")]
        parent = dn.split(",", 1)[1] if dn != SUFFIX else None
        assert parent is None or parent in by_dn, f"{dn}: parent missing"
    members = {m for g in groups for m in g["member"]}
    for person in people:
        dn = person["dn"][0]
        assert dn in members
        assert all(by_dn[g]["objectClass"] == ["groupOfNames"] and dn in by_dn[g]["member"]
                   for g in person["memberOf"])
        assert person["departmentNumber"] == person["ou"]
    agent = sample[0]
    person = by_dn[f"uid={agent.login},ou=people,{SUFFIX}"]
    assert person["cn"] == [agent.display_name]
    assert check_ssha(person["userPassword"][0], agent_password(SECRET, agent.login))
    leavers = [p for p in people if "pwdAccountLockedTime" in p]
    assert len(leavers) == sum(a.leaver for a in sample)
    assert all(p["pwdAccountLockedTime"] == [lab_agents.LOCKED_FOREVER] for p in leavers)


def test_ldif_escapes_special_characters_in_group_dns() -> None:
    dept = lab_agents.Department("Service de l'Eau, de la Voirie + <Test>", "D001")
    assert lab_agents.group_dn(dept, SUFFIX).startswith(
        r"cn=Service de l'Eau\, de la Voirie \+ \<Test\>,ou=groups,")
    assert lab_agents.ldif_line("cn", " leading space").startswith("cn:: ")
    assert lab_agents.ldif_line("cn", ":colon").startswith("cn:: ")
    assert lab_agents.ldif_line("cn", "Zoé") == "cn:: " + base64.b64encode(
        "Zoé".encode()).decode()
    assert lab_agents.ldif_line("cn", "plain text") == "cn: plain text"


def test_write_ldif_only_when_content_changes(tmp_path: Path) -> None:
    out = tmp_path / "agents.ldif"
    agents = generate(200, "w")
    changed, digest = write_ldif(out, agents, SECRET)
    assert changed and stat.S_IMODE(out.stat().st_mode) == 0o600
    mtime = out.stat().st_mtime_ns
    assert write_ldif(out, agents, SECRET) == (False, digest)
    assert out.stat().st_mtime_ns == mtime
    assert write_ldif(out, generate(201, "w"), SECRET)[0]


def test_passwords_derive_from_the_lab_secret(tmp_path: Path) -> None:
    secret_file = tmp_path / "lab" / "agents-secret"
    secret = lab_agents.ensure_secret(secret_file)
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert lab_agents.ensure_secret(secret_file) == secret
    assert agent_password(secret, "marie.martin") == agent_password(secret, "marie.martin")
    assert agent_password(secret, "marie.martin") != agent_password(secret, "marie.martin2")
    assert agent_password(b"other", "marie.martin") != agent_password(secret, "marie.martin")
    reader = tmp_path / "reader"
    assert lab_agents.write_account_password(reader, secret, "planb-reader")
    assert not lab_agents.write_account_password(reader, secret, "planb-reader")
    assert stat.S_IMODE(reader.stat().st_mode) == 0o600


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "secret"
    argv = ["ldif", "--count", "120", "--seed", "cli", "--secret-file", str(secret),
            "--out", str(tmp_path / "a.ldif")]
    assert lab_agents.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] and out["agents"] == 120 and out["departments"] == 12
    assert lab_agents.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False
    assert lab_agents.main(["password", "--secret-file", str(secret), "x.y"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == agent_password(secret.read_bytes().strip(), "x.y")
    assert lab_agents.main(["ldif", "--count", "0", "--secret-file", str(secret),
                            "--out", str(tmp_path / "b.ldif")]) == 2


def test_check_writes_nothing_and_says_what_a_real_run_would_do(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--check`` (what the lab_primary role runs under ``planb deploy --check``) only reads."""
    secret = tmp_path / "secret"
    ldif = ["ldif", "--count", "30", "--seed", "cli", "--secret-file", str(secret),
            "--out", str(tmp_path / "a.ldif")]
    account = ["account-password", "--secret-file", str(secret), "--name", "admin",
               "--out", str(tmp_path / "admin")]
    for argv in (ldif, account):
        assert lab_agents.main([*argv, "--check"]) == 0
        assert json.loads(capsys.readouterr().out)["changed"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    for argv in (ldif, account):
        assert lab_agents.main([*argv, "--write"]) == 0
        assert lab_agents.main([*argv, "--check"]) == 0
        assert json.loads(capsys.readouterr().out.splitlines()[-1])["changed"] is False
    (tmp_path / "admin").write_text("edited by hand\n", encoding="ascii")
    assert lab_agents.main([*account, "--check"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is True
    assert (tmp_path / "admin").read_text(encoding="ascii") == "edited by hand\n"


def test_planb_lab_password_prints_the_derived_password(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from planb.cli.main import app
    from planb.config import LabConfig
    from planb.lab.site import write_lab_site
    from planb.lab.topology import build_topology

    lab = LabConfig(subnet="10.77.9.0/24", bridge="planb9")
    config = write_lab_site(tmp_path, build_topology(lab.subnet, lab.bridge),
                            tmp_path / "key", lab)
    runner = CliRunner()
    missing = runner.invoke(app, ["-c", str(config), "lab", "password", "marie.martin"])
    assert missing.exit_code == 2 and "planb deploy" in missing.output
    secret = lab_agents.ensure_secret(tmp_path / ".planb" / "lab" / "agents-secret")
    result = runner.invoke(app, ["-c", str(config), "lab", "password", "marie.martin"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == agent_password(secret, "marie.martin")


@pytest.mark.parametrize("count", [8, 300, 9000])
def test_every_lab_starts_with_the_awkward_names_and_writes_them_intact(count: int) -> None:
    """The first agents carry the awkward names (none a leaver); the LDIF gives them back
    byte for byte, spaces at the ends included; each has a plain login."""
    from planb.lab.agent_names import AWKWARD_NAMES

    agents = generate(count, "unit")
    first = agents[:len(AWKWARD_NAMES)]
    assert [(a.given_name, a.surname) for a in first] == list(AWKWARD_NAMES)
    assert not any(a.leaver for a in first)
    assert len({a.login for a in agents}) == count
    assert all(re.fullmatch(r"[a-z0-9-]+\.[a-z0-9-]+[0-9]*", a.login) for a in first)
    text = "".join(given + surname for given, surname in AWKWARD_NAMES)
    for needed in [*',+"\\<>;=', "'", "é", "🚀"]:
        assert needed in text, needed
    assert any(g.startswith("#") for g, _ in AWKWARD_NAMES)
    assert any(g.startswith(" ") for g, _ in AWKWARD_NAMES)
    assert any(s.endswith(" ") for _, s in AWKWARD_NAMES)
    people = {e["dn"][0]: e for e in parse_ldif("".join(ldif_entries(first, SECRET, SUFFIX)))}
    for agent in first:
        person = people[f"uid={agent.login},ou=people,{SUFFIX}"]
        assert person["givenName"] == [agent.given_name]
        assert person["sn"] == [agent.surname]
        assert person["displayName"] == person["cn"] == [agent.display_name]
