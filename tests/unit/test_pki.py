"""The lab CA: certificates a TLS client accepts, 0600 keys, renewal only when needed."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from planb import pki
from planb.errors import UsageError


def _handshake(pki_dir: Path, name: str, server_hostname: str) -> None:
    """A real TLS handshake in memory: server with the cert, client trusting only the CA."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki_dir / f"{name}.crt", pki_dir / f"{name}.key")
    client_ctx = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=server_hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for side, obj in (("client", client), ("server", server)):
            if not done[side]:
                try:
                    obj.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError("handshake did not finish")


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_issued_certificate_is_trusted_for_its_dns_name_and_ip(tmp_path: Path) -> None:
    issued = pki.ensure_server_cert(tmp_path, "fallback", ["fallback", "matrix.planb.lab"],
                                    ["10.77.9.11"])
    assert issued.changed
    _handshake(tmp_path, "fallback", "matrix.planb.lab")
    _handshake(tmp_path, "fallback", "10.77.9.11")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tmp_path, "fallback", "other.planb.lab")
    dns, ips = pki.cert_names(_load(issued.cert))
    assert dns == {"fallback", "matrix.planb.lab"}
    assert ips == {ipaddress.ip_address("10.77.9.11")}


def test_keys_are_private_and_the_chain_validates(tmp_path: Path) -> None:
    issued = pki.ensure_server_cert(tmp_path, "primary", ["primary"], ["10.77.9.10"])
    for key in (issued.key, tmp_path / "ca.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
    assert pki.signed_by(_load(issued.cert), _load(issued.ca))
    other = pki.ensure_ca(tmp_path / "other")
    assert not pki.signed_by(_load(issued.cert), _load(other.cert))


def test_second_call_changes_nothing(tmp_path: Path) -> None:
    first = pki.ensure_server_cert(tmp_path, "fallback", ["fallback"], ["10.77.9.11"])
    before = first.cert.read_bytes(), first.key.read_bytes()
    again = pki.ensure_server_cert(tmp_path, "fallback", ["fallback"], ["10.77.9.11"])
    assert not again.changed
    assert (again.cert.read_bytes(), again.key.read_bytes()) == before
    assert not pki.ensure_ca(tmp_path).changed


def test_changed_names_renew_the_certificate(tmp_path: Path) -> None:
    pki.ensure_server_cert(tmp_path, "fallback", ["fallback"], ["10.77.9.11"])
    renewed = pki.ensure_server_cert(tmp_path, "fallback", ["fallback"], ["10.77.9.12"])
    assert renewed.changed
    assert pki.cert_names(_load(renewed.cert))[1] == {ipaddress.ip_address("10.77.9.12")}
    _handshake(tmp_path, "fallback", "10.77.9.12")


def test_near_expiry_or_foreign_certificate_is_renewed(tmp_path: Path) -> None:
    issued = pki.ensure_server_cert(tmp_path, "fallback", ["fallback"], [], days=397)
    cert, ca = _load(issued.cert), _load(issued.ca)
    names = (frozenset({"fallback"}), frozenset())
    assert pki.renewal_reason(cert, ca, *names) is None
    later = cert.not_valid_after_utc - dt.timedelta(days=10)
    assert pki.renewal_reason(cert, ca, *names, now=later) == "expires soon"
    # A certificate left from another CA (the CA folder was replaced) is reissued.
    short = pki.ensure_server_cert(tmp_path / "b", "fallback", ["fallback"], [], days=10)
    (tmp_path / "fallback.crt").write_bytes(short.cert.read_bytes())
    assert pki.ensure_server_cert(tmp_path, "fallback", ["fallback"], []).changed
    assert pki.signed_by(_load(tmp_path / "fallback.crt"), ca)


def test_bad_names_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not an IP address"):
        pki.ensure_server_cert(tmp_path, "fallback", ["fallback"], ["10.77.9.300"])
    with pytest.raises(UsageError, match="at least one"):
        pki.ensure_server_cert(tmp_path, "fallback", [], [])
    with pytest.raises(UsageError, match="certificate name"):
        pki.ensure_server_cert(tmp_path, "../etc/x", ["a"], [])
    assert not tmp_path.joinpath("ca.key").exists()


def test_command_line_prints_changed_as_json(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["issue", "--dir", str(tmp_path), "--name", "fallback", "--dns", "fallback",
            "--ip", "10.77.9.11"]
    assert pki.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is True
    assert pki.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] is False and out["cert"] == str(tmp_path / "fallback.crt")
    assert pki.main(["issue", "--dir", str(tmp_path), "--name", "x"]) == 2
    assert "at least one" in capsys.readouterr().err


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


def test_check_writes_nothing_and_says_what_a_real_run_would_do(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--check`` (what the pki role runs under ``planb deploy --check``) only reads."""
    argv = ["issue", "--dir", str(tmp_path / "pki"), "--name", "fallback", "--dns", "fallback",
            "--ip", "10.77.9.11"]
    assert pki.main(["ca", "--dir", str(tmp_path / "pki"), "--check"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is True
    assert pki.main([*argv, "--check"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is True
    assert not (tmp_path / "pki").exists()
    assert pki.main(argv) == 0
    capsys.readouterr()
    before = _tree(tmp_path)
    assert pki.main([*argv, "--check"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False
    # New names: a real run would renew; the check says so and leaves the files alone.
    renamed = pki.ensure_server_cert(tmp_path / "pki", "fallback", ["fallback"], ["10.77.9.12"],
                                     dry_run=True)
    assert renamed.changed
    assert _tree(tmp_path) == before
