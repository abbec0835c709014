"""A host's break-glass journals in the controller's state: merged append-only, verified
with the host's own key only, and part of what 'planb report verify' checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from planb.cli.main import app
from planb.mode import AuditEntry, AuditLog
from planb.reports.keys import Signer, public_pem
from planb.reports.store import JournalStore
from planb.statecopy.hostjournals import host_journals_root, host_key_path, merge, verify_hosts
from tests.unit.statecopy_env import isolate_cli

runner = CliRunner()
HOST = "fallback1"


def _nothing(*_: object, **__: object) -> bool:
    return True


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_cli(tmp_path, monkeypatch)


def _host_files(tmp: Path, signer: Signer, count: int = 2) -> dict[str, bytes]:
    """What the fetch brings from a host: journals, head, audit log and its head."""
    folder = tmp / "remote"
    store = JournalStore(folder / "journals", signer, anchor=_nothing)
    audit = AuditLog(folder, signer, anchor=_nothing, path=folder / "audit.log")
    for n in range(count):
        store.append("breakglass", {"event": "activate", "n": n})
        audit.append(AuditEntry(at="2026-11-30T09:00:00.000Z", who="cellule", why="panne",
                                event="activate", result="ok"))
    files = {p.name: p.read_bytes() for p in (folder / "journals").iterdir()
             if not p.name.startswith(".")}
    files["failover/audit.log"] = (folder / "audit.log").read_bytes()
    files["failover/audit-head.json"] = (folder / "audit-head.json").read_bytes()
    return files


@pytest.fixture
def state(tmp_path: Path) -> Path:
    assert runner.invoke(app, ["init", "site", "--language", "en"]).exit_code == 0
    assert runner.invoke(app, ["-c", "site/planb.yml", "keys", "init"]).exit_code == 0
    return tmp_path / "site" / ".planb"


def _trust(state: Path, signer: Signer) -> None:
    path = host_key_path(state, HOST)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(public_pem(signer.public_key))


def test_merge_keeps_what_was_fetched_first(tmp_path: Path, state: Path) -> None:
    signer = Signer(Ed25519PrivateKey.generate())
    files = _host_files(tmp_path, signer)
    folder = host_journals_root(state) / HOST
    new, conflicts = merge(folder, files)
    assert len(new) == 2 and not conflicts
    assert merge(folder, files) == ([], [])
    first = sorted(n for n in files if n.startswith("000001-") and n.endswith(".json"))[0]
    kept = (folder / first).read_bytes()
    rewritten = dict(files, **{first: kept.replace(b'"n":0', b'"n":9')})
    new, conflicts = merge(folder, rewritten)
    assert not new and len(conflicts) == 1 and first in conflicts[0]
    assert (folder / first).read_bytes() == kept
    assert list((folder / "conflicts").rglob(first))


def test_host_chains_verify_with_the_host_key_only(tmp_path: Path, state: Path) -> None:
    signer = Signer(Ed25519PrivateKey.generate())
    folder = host_journals_root(state) / HOST
    merge(folder, _host_files(tmp_path, signer))
    [missing] = verify_hosts(state)
    assert not missing.ok and "no public key" in (missing.failure or "")
    _trust(state, signer)
    [chain] = verify_hosts(state)
    assert chain.ok, chain.failure
    assert chain.result is not None and len(chain.result.journals) == 2
    assert chain.audit is not None and chain.audit.entries == 2
    _trust(state, Signer(Ed25519PrivateKey.generate()))
    [other] = verify_hosts(state)
    assert not other.ok and "not a trusted key" in (other.failure or "")
    # The journals themselves, not only the audit log's head, are refused.
    assert other.result is not None and other.result.failure is not None
    assert str(other.result.failure.reason) == "unknown key"


def test_report_verify_checks_the_host_chains(tmp_path: Path, state: Path) -> None:
    signer = Signer(Ed25519PrivateKey.generate())
    folder = host_journals_root(state) / HOST
    merge(folder, _host_files(tmp_path, signer))
    _trust(state, signer)
    site_signer_store = ["-c", "site/planb.yml"]
    assert runner.invoke(app, [*site_signer_store, "report", "annotate", "1",
                               "--observation", "x"]).exit_code == 2  # no journal yet
    from planb.reports.keys import KeyPaths, PassphraseSource, load_signer

    JournalStore.for_state_dir(state, load_signer(KeyPaths.for_state_dir(state),
                                                  PassphraseSource()),
                               anchor=_nothing).append("drill", {"status": "pass"})
    ok = runner.invoke(app, [*site_signer_store, "report", "verify"])
    assert ok.exit_code == 0, ok.output
    out = " ".join(ok.output.split())
    assert f"host {HOST}: 2 break-glass journal(s) and 2 audit line(s)" in out
    assert "ignored hosts" not in out
    journal = sorted(folder.glob("000002-*.json"))[0]
    journal.write_bytes(journal.read_bytes().replace(b'"n":1', b'"n":7'))
    bad = runner.invoke(app, [*site_signer_store, "report", "verify"])
    assert bad.exit_code == 1
    assert f"host {HOST}'s break-glass record FAILED" in " ".join(bad.output.split())
    assert "altered" in bad.output
    journal.unlink()
    journal.with_suffix(".sig").unlink()
    gone = runner.invoke(app, [*site_signer_store, "report", "verify"])
    assert gone.exit_code == 1 and "missing" in gone.output


def test_host_chains_alone_verify_before_the_controller_signed_anything(
        tmp_path: Path, state: Path) -> None:
    """A site whose first record is a break-glass activation (the controller-lost drill
    on a freshly deployed site): the hosts' chains are the record, and they verify."""
    signer = Signer(Ed25519PrivateKey.generate())
    folder = host_journals_root(state) / HOST
    merge(folder, _host_files(tmp_path, signer))
    _trust(state, signer)
    (state / "journals").mkdir(exist_ok=True)
    ok = runner.invoke(app, ["-c", "site/planb.yml", "report", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "no controller journal yet" in ok.output and "2 host-signed" in ok.output
    as_json = runner.invoke(app, ["-c", "site/planb.yml", "report", "verify", "--json"])
    assert as_json.exit_code == 0, as_json.output
    journal = sorted(folder.glob("000002-*.json"))[0]
    journal.write_bytes(journal.read_bytes().replace(b'"n":1', b'"n":7'))
    bad = runner.invoke(app, ["-c", "site/planb.yml", "report", "verify"])
    assert bad.exit_code == 1 and "FAILED" in bad.output
    for path in folder.iterdir():
        if path.is_file():
            path.unlink()
    empty = runner.invoke(app, ["-c", "site/planb.yml", "report", "verify"])
    assert empty.exit_code == 1 and "no journals to verify" in empty.output
