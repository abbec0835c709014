"""``planb keys`` and ``planb report`` as users and auditors run them."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planb.cli.main import app
from planb.errors import PlanbError
from planb.reports.keys import KeyPaths, PassphraseSource, load_signer
from planb.reports.store import JournalStore

runner = CliRunner()
PASSPHRASE = "une phrase secrète assez longue"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLANB_CONFIG", raising=False)
    monkeypatch.delenv("PLANB_KEY_PASSPHRASE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site made by 'planb init' (in English: these tests read English words); returns
    its state dir."""
    result = runner.invoke(app, ["init", "site", "--language", "en"])
    assert result.exit_code == 0, result.output
    return tmp_path / "site" / ".planb"


def _drills(state: Path, count: int = 3) -> list[Path]:
    signer = load_signer(KeyPaths.for_state_dir(state), PassphraseSource())
    store = JournalStore.for_state_dir(state, signer)
    return [store.append("drill", {"scenario": "primary-outage", "status": "pass",
                                   "rto_seconds": 30 + n, "rto_objective_seconds": 60}).path
            for n in range(count)]


def test_keys_init_writes_0600_key_and_prints_fingerprint(site: Path) -> None:
    result = runner.invoke(app, ["keys", "init"])
    assert result.exit_code == 0, result.output
    private = site / "keys" / "signing.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert "fingerprint SHA256:" in result.output
    again = runner.invoke(app, ["keys", "init"])
    assert again.exit_code == 2
    assert "already exists" in again.output
    assert runner.invoke(app, ["keys", "init", "--force"]).exit_code == 0


def test_keys_init_with_passphrase_never_prints_it(site: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    result = runner.invoke(app, ["keys", "init", "--passphrase-file", str(secret)])
    assert result.exit_code == 0, result.output
    assert "encrypted" in result.output and PASSPHRASE not in result.output
    assert b"ENCRYPTED" in (site / "keys" / "signing.key").read_bytes()
    # Signing needs it: wrong passphrase is a clear error without the secret.
    monkeypatch.setenv("PLANB_KEY_PASSPHRASE", "wrong")
    with pytest.raises(PlanbError, match="wrong passphrase") as caught:
        _drills(site, 1)
    assert PASSPHRASE not in str(caught.value)
    monkeypatch.setenv("PLANB_KEY_PASSPHRASE", PASSPHRASE)
    assert len(_drills(site, 1)) == 1


def test_keys_init_json_is_the_result_alone(site: Path) -> None:
    result = runner.invoke(app, ["keys", "init", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["fingerprint"].startswith("SHA256:") and data["encrypted"] is False
    assert data["private_key"] == str(site.resolve() / "keys" / "signing.key")
    exported = json.loads(runner.invoke(app, ["keys", "export", "--json"]).stdout)
    assert exported["fingerprint"] == data["fingerprint"]


def test_keys_init_with_both_passphrase_options_is_usage_error(site: Path) -> None:
    result = runner.invoke(app, ["keys", "init", "--passphrase-file", "f",
                                 "--passphrase-env", "V"])
    assert result.exit_code == 2
    assert "not both" in result.output


def test_keys_export_pem_file_and_json(site: Path, tmp_path: Path) -> None:
    init = runner.invoke(app, ["keys", "init"])
    fingerprint = init.output.split("fingerprint ")[1].split()[0]
    exported = runner.invoke(app, ["keys", "export", "-o", str(tmp_path / "site.pub")])
    assert exported.exit_code == 0, exported.output
    assert fingerprint in exported.output
    assert (tmp_path / "site.pub").read_bytes() == (site / "keys" / "signing.pub").read_bytes()
    as_json = runner.invoke(app, ["keys", "export", "--json"])
    data = json.loads(as_json.stdout)
    assert data["fingerprint"] == fingerprint
    assert data["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")


def test_keys_export_without_key_says_how_to_make_one(site: Path) -> None:
    result = runner.invoke(app, ["keys", "export"])
    assert result.exit_code == 1
    assert "planb keys init" in result.output


def test_report_verify_ok_then_fails_naming_the_altered_journal(site: Path) -> None:
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    paths = _drills(site)
    ok = runner.invoke(app, ["report", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "OK: 3 journals" in ok.output
    data = bytearray(paths[1].read_bytes())
    data[data.index(b"primary")] ^= 0x20
    paths[1].write_bytes(bytes(data))
    bad = runner.invoke(app, ["report", "verify"])
    assert bad.exit_code == 1
    assert f"{paths[1].name}: altered" in bad.output
    as_json = runner.invoke(app, ["report", "verify", "--json"])
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["failure"]["file"] == paths[1].name


def test_report_verify_on_a_copy_with_only_the_public_key(site: Path, tmp_path: Path) -> None:
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    _drills(site)
    auditor = tmp_path / "auditor"
    shutil.copytree(site / "journals", auditor / "journals")
    shutil.copy(site / "keys" / "signing.pub", auditor / "site.pub")
    shutil.rmtree(tmp_path / "site")  # no planb.yml anywhere any more
    shutil.rmtree(tmp_path / "home")
    result = runner.invoke(app, ["report", "verify", str(auditor / "journals"),
                                 "--public-key", str(auditor / "site.pub")])
    assert result.exit_code == 0, result.output
    assert "OK: 3 journals" in result.output
    # Without the key on such a machine, verification cannot silently pass.
    no_key = runner.invoke(app, ["report", "verify", str(auditor / "journals")])
    assert no_key.exit_code == 2
    assert "no site configuration" in no_key.output


def test_report_verify_empty_folder_fails(site: Path) -> None:
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    (site / "journals").mkdir()
    result = runner.invoke(app, ["report", "verify"])
    assert result.exit_code == 1
    assert "no journals" in result.output


def test_report_list_and_show(site: Path) -> None:
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    paths = _drills(site)
    listed = runner.invoke(app, ["report", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [row["file"] for row in rows] == [p.name for p in paths]
    assert rows[0]["scenario"] == "primary-outage" and rows[0]["status"] == "pass"
    assert rows[2]["rto"] == "32 s / 60 s" and rows[2]["signature"] == "valid"
    table = runner.invoke(app, ["report", "list"])
    assert table.exit_code == 0
    assert "primary-outage" in table.output and "valid" in table.output
    paths[0].with_suffix(".sig").unlink()
    assert json.loads(runner.invoke(app, ["report", "list", "--json"]).stdout)[0][
        "signature"] == "unsigned"
    shown = runner.invoke(app, ["report", "show", "2"])
    assert shown.exit_code == 0, shown.output
    assert paths[1].name in shown.output and "31 s / 60 s" in shown.output
    whole = json.loads(runner.invoke(app, ["report", "show", "2", "--json"]).stdout)
    assert whole["journal"]["seq"] == 2 and whole["journal"]["payload"]["rto_seconds"] == 31
    assert whole["verification"]["signature"] == "valid"
    unknown = runner.invoke(app, ["report", "show", "9"])
    assert unknown.exit_code == 2 and "no journal matches '9'" in unknown.output


def test_report_show_fails_on_an_altered_journal_with_and_without_json(site: Path) -> None:
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    paths = _drills(site)
    data = bytearray(paths[1].read_bytes())
    data[data.index(b"primary")] ^= 0x20
    paths[1].write_bytes(bytes(data))
    shown = runner.invoke(app, ["report", "show", "2"])
    assert shown.exit_code == 1
    assert "altered" in shown.stdout and f"{paths[1].name}: altered" in shown.stderr
    as_json = runner.invoke(app, ["report", "show", "2", "--json"])
    assert as_json.exit_code == 1
    verification = json.loads(as_json.stdout)["verification"]
    assert verification["checked"] and verification["signature"] == "altered"
    assert verification["problem"]["reason"] == "altered"
    # The journals around it still verify on their own.
    assert runner.invoke(app, ["report", "show", "1", "--json"]).exit_code == 0


def test_report_show_json_without_a_key_says_not_checked(site: Path) -> None:
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    _drills(site, 1)
    (site / "keys" / "signing.pub").unlink()
    result = runner.invoke(app, ["report", "show", "1", "--json"])
    assert result.exit_code == 0, result.output
    verification = json.loads(result.stdout)["verification"]
    assert not verification["checked"] and verification["signature"] == "not checked"


def test_report_commands_take_the_folder_as_dir_or_d(site: Path, tmp_path: Path) -> None:
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    _drills(site)
    moved = shutil.move(site / "journals", tmp_path / "copy")
    key = ["--public-key", str(site / "keys" / "signing.pub")]
    for command in (["verify"], ["list", "--json"], ["show", "2", "--json"],
                    ["export", "2", "-f", "md"], ["trend"]):
        for flag in ("--dir", "-d"):
            result = runner.invoke(app, ["report", *command, flag, str(moved), *key])
            assert result.exit_code == 0, (command, flag, result.output)
    # The folder as an argument, as 'report verify' took it before --dir, still works.
    assert runner.invoke(app, ["report", "verify", str(moved), *key]).exit_code == 0
    both = runner.invoke(app, ["report", "verify", str(moved), "--dir", str(tmp_path), *key])
    assert both.exit_code == 2 and "once" in both.output


def test_report_list_without_journals_or_key(site: Path) -> None:
    result = runner.invoke(app, ["report", "list"])
    assert result.exit_code == 0
    assert "no journals" in result.output


# -- export, trend, annotate ----------------------------------------------------------


def _real_drills(state: Path) -> list[Path]:
    """Three drill journals as DrillJournal writes them (pass, deviated, failed)."""
    from tests.unit.test_drills_scenario import make_site
    from tests.unit.test_reports_render_model import write_drills

    site = make_site(state.parent)
    assert site.state_dir == state
    return [j.path for j in write_drills(site)]


def test_report_export_html_md_json_junit(site: Path, tmp_path: Path) -> None:
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    paths = _real_drills(site)
    out = tmp_path / "drill.html"
    html = runner.invoke(app, ["report", "export", "2", "-o", str(out)])
    assert html.exit_code == 0, html.output
    page = out.read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>") and '<html lang="en">' in page
    assert "DEVIATED" in page and "✔</span> VALID" in page
    md = runner.invoke(app, ["report", "export", paths[0].name, "--format", "md"])
    assert md.exit_code == 0 and md.stdout.startswith("# Drill report: primary-outage")
    data = json.loads(runner.invoke(app, ["report", "export", "3", "-f", "json"]).stdout)
    assert data["journal"]["seq"] == 3 and data["report"]["status"]["word"] == "FAILED"
    junit = runner.invoke(app, ["report", "export", "3", "-f", "junit"])
    assert junit.exit_code == 0 and "<testsuites" in junit.stdout
    bad = runner.invoke(app, ["report", "export", "3", "-f", "pdf"])
    assert bad.exit_code == 2


def test_report_export_without_key_says_not_checked(site: Path, tmp_path: Path) -> None:
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    _real_drills(site)
    (site / "keys" / "signing.pub").unlink()
    md = runner.invoke(app, ["report", "export", "1", "-f", "md"])
    assert md.exit_code == 0, md.output
    assert "? NOT CHECKED" in md.stdout


def test_report_export_unknown_id_is_usage_error(site: Path) -> None:
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    _real_drills(site)
    result = runner.invoke(app, ["report", "export", "feedbeef"])
    assert result.exit_code == 2
    assert "no journal matches 'feedbeef'" in result.output


@pytest.mark.parametrize("count", [0, 1, 3])
def test_report_trend(site: Path, tmp_path: Path, count: int) -> None:
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    paths = _real_drills(site)
    for path in paths[count:]:
        path.unlink()
        path.with_suffix(".sig").unlink()
    out = tmp_path / "trend.html"
    result = runner.invoke(app, ["report", "trend", "-o", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text("utf-8")
    assert f"{count} drill{'' if count == 1 else 's'}. Pass rate" in page
    assert page.count("<svg") == (2 if count else 0)


def test_report_annotate_then_show_export_list_verify(site: Path) -> None:
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    paths = _real_drills(site)
    result = runner.invoke(app, ["report", "annotate", "2", "--observation", "Synapse slow",
                                 "--observation", "DNS fine", "--action", "Pre-warm caches",
                                 "--author", "Agnès"])
    assert result.exit_code == 0, result.output
    assert "addendum 000004-addendum-" in result.output
    assert runner.invoke(app, ["report", "verify"]).exit_code == 0
    rows = json.loads(runner.invoke(app, ["report", "list", "--json"]).stdout)
    assert [r["kind"] for r in rows] == ["drill", "drill", "drill", "addendum"]
    assert rows[3]["signature"] == "valid"
    shown = runner.invoke(app, ["report", "show", paths[1].name])
    assert shown.exit_code == 0
    assert "observation: Synapse slow" in shown.output and "action: Pre-warm caches" in shown.output
    md = runner.invoke(app, ["report", "export", "2", "-f", "md"]).stdout
    assert "- Synapse slow (Agnès," in md and "- Pre-warm caches (Agnès," in md
    assert "**annotated the report**: Agnès" in md
    other = runner.invoke(app, ["report", "export", "1", "-f", "md"]).stdout
    assert "Synapse slow" not in other


def test_report_annotate_refusals(site: Path) -> None:
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    _real_drills(site)
    unknown = runner.invoke(app, ["report", "annotate", "deadbeef", "--observation", "x"])
    assert unknown.exit_code == 2 and "no journal matches 'deadbeef'" in unknown.output
    nothing = runner.invoke(app, ["report", "annotate", "1"])
    assert nothing.exit_code == 2 and "at least one" in nothing.output
    assert len(list((site / "journals").glob("0*.json"))) == 3


def test_report_annotate_json_names_the_signed_addendum(site: Path) -> None:
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    paths = _real_drills(site)
    result = runner.invoke(app, ["report", "annotate", "1", "--action", "Re-test", "--json"])
    assert result.exit_code == 0, result.output
    added = json.loads(result.stdout)
    assert added["addendum"].startswith("000004-addendum-") and added["target"] == paths[0].name
    assert added["key_fingerprint"].startswith("SHA256:") and len(added["sha256"]) == 64
