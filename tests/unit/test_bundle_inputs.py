"""What goes into the bundle: the repo's lists, checked with file:line errors."""

from __future__ import annotations

import pytest

from planb.bundle import debs, wheels
from planb.bundle.inputs import (
    DEBS_FILE,
    REQUIREMENTS_FILE,
    Inputs,
    parse_debs,
    parse_requirements,
    read_inputs,
)
from planb.errors import ConfigError, PlanbError


def test_repo_lists_are_valid_and_pin_synapse() -> None:
    inputs = read_inputs(DEBS_FILE, REQUIREMENTS_FILE)
    assert "postgresql" in inputs.debs
    assert "redis-server" in inputs.debs  # Synapse workers' replication bus
    assert any(line.startswith("matrix-synapse[postgres,redis]==") for line in
               inputs.requirements.splitlines())
    assert any(line.startswith("matrix-synapse-ldap3==") for line in
               inputs.requirements.splitlines())


def test_deb_list_ignores_comments_and_duplicates() -> None:
    text = "# heading\nslapd\n\npostgresql  # for synapse\nslapd\n"
    assert parse_debs(text) == ("postgresql", "slapd")


def test_bad_deb_name_is_reported_with_its_line() -> None:
    with pytest.raises(ConfigError, match=r"debs.txt:3: 'Nginx Extras' is not a Debian"):
        parse_debs("slapd\n\nNginx Extras\n", path="debs.txt")
    with pytest.raises(ConfigError, match="no package listed"):
        parse_debs("# nothing\n", path="debs.txt")


def test_requirements_must_pin_each_project() -> None:
    assert parse_requirements("# c\na==1\nb[x]==2  # why\n") == "a==1\nb[x]==2\n"
    with pytest.raises(ConfigError, match=r"req.in:2: 'b>=2' must pin"):
        parse_requirements("a==1\nb>=2\n", path="req.in")
    with pytest.raises(ConfigError, match=r"req.in:1: '--index-url x==1' must pin"):
        parse_requirements("--index-url x==1\n", path="req.in")


def test_fingerprint_changes_with_any_input() -> None:
    base = Inputs(debs=("a",), requirements="x==1\n", context=(("image", "i1"),))
    assert base.fingerprint() == Inputs(("a",), "x==1\n", (("image", "i1"),)).fingerprint()
    others = [Inputs(("a", "b"), "x==1\n", (("image", "i1"),)),
              Inputs(("a",), "x==2\n", (("image", "i1"),)),
              Inputs(("a",), "x==1\n", (("image", "i2"),)),
              Inputs(("a",), "x==1\n", (("image", "i1"),), client="c2")]
    assert len({base.fingerprint(), *(o.fingerprint() for o in others)}) == 5


def test_wheel_names_are_parsed_and_normalised() -> None:
    wheel = wheels.parse_wheel_name("Matrix_Synapse-1.163.2-cp310-abi3-manylinux_2_28_x86_64.whl")
    assert (wheel.name, wheel.version) == ("matrix-synapse", "1.163.2")
    built = wheels.parse_wheel_name("psycopg2-2.9.13-cp311-cp311-linux_x86_64.whl")
    assert (built.name, built.version) == ("psycopg2", "2.9.13")
    with pytest.raises(PlanbError, match="not a wheel file name"):
        wheels.parse_wheel_name("psycopg2-2.9.13.tar.gz")


def test_requirements_pin_every_wheel_with_its_hash() -> None:
    found = [wheels.parse_wheel_name("b_c-2.0-py3-none-any.whl"),
             wheels.parse_wheel_name("a-1.0-py3-none-any.whl")]
    text = wheels.requirements_text(found, {"b_c-2.0-py3-none-any.whl": "1" * 64,
                                            "a-1.0-py3-none-any.whl": "2" * 64})
    pins = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert pins == [f"a==1.0 --hash=sha256:{'2' * 64}", f"b-c==2.0 --hash=sha256:{'1' * 64}"]
    twice = [found[1], wheels.parse_wheel_name("A-1.1-py3-none-any.whl")]
    with pytest.raises(PlanbError, match="two wheels of the same project: a"):
        wheels.requirements_text(twice, {w.file: "0" * 64 for w in twice})


def test_pip_runs_without_this_machines_pip_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_CONSTRAINT", "/etc/xdg/pip/constraints.txt")
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")
    env = wheels.pip_env()
    assert not {k for k in env if k.startswith("PIP_") and k != "PIP_CONFIG_FILE"}
    assert env["PIP_CONFIG_FILE"] == "/dev/null"


def test_apt_inst_lines_give_the_downloaded_file_names() -> None:
    new = debs.parse_inst_line("Inst libllvm14 (1:14.0.6-12 Debian:12.11/stable [amd64])")
    upgrade = debs.parse_inst_line(
        "Inst perl-base [5.36.0-7+deb12u2] (5.36.0-7+deb12u4 Debian-Security:12/stable-security"
        " [amd64]) []")
    assert new == ("libllvm14", "1:14.0.6-12", "amd64")
    assert upgrade == ("perl-base", "5.36.0-7+deb12u4", "amd64")
    assert debs.deb_file_name(*new) == "libllvm14_1%3a14.0.6-12_amd64.deb"
    assert debs.parse_inst_line("Conf libllvm14 (1:14.0.6-12 Debian:12.11/stable [amd64])") is None


def test_sources_cover_bookworm_updates_and_security() -> None:
    text = debs.sources_text("http://m/debian", "http://m/debian-security")
    assert "Suites: bookworm bookworm-updates\n" in text
    assert "URIs: http://m/debian-security\nSuites: bookworm-security\n" in text
