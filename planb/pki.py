"""The lab's certificate authority: made once on the controller, server certificates on demand.

Production sites bring their own certificates (see the ``pki`` role's defaults); the
lab gets a small CA kept in ``<state_dir>/pki/``::

    ca.crt  ca.key                 the authority (key mode 0600)
    <name>.crt  <name>.key         one server certificate per host (key mode 0600)

:func:`ensure_ca` makes the CA if it does not exist; :func:`ensure_server_cert`
issues a certificate and renews it only when it is missing, near expiry, not signed
by this CA or its names differ. Both say whether they changed anything, which the
``pki`` role turns into Ansible's ``changed``. Run as a command::

    python -m planb.pki issue --dir DIR --name fallback --dns fallback --ip 10.77.0.11

prints one JSON line: ``{"changed": bool, "cert": ..., "key": ..., "ca": ...}``.
With ``--check`` (the role passes it under ``ansible-playbook --check``) nothing is
written: ``changed`` says whether a real run would make or renew something.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from planb.errors import UsageError
from planb.files import write_atomic

log = logging.getLogger(__name__)

CA_NAME = "planb lab CA"
CA_DAYS = 3650
SERVER_DAYS = 397
#: A certificate with less than this left is renewed.
RENEW_BEFORE = dt.timedelta(days=30)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Issued:
    """Where a certificate and its key are, and whether this call (re)made them."""

    changed: bool
    cert: Path
    key: Path
    ca: Path


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 from the start (atomic replace)."""
    write_atomic(path, data, 0o600)


def _write_public(path: Path, data: bytes) -> None:
    write_atomic(path, data, 0o644)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise UsageError(f"{path}: not an EC private key made by planb",
                         hint="move the pki folder aside to make a new CA")
    return key


def ensure_ca(pki_dir: Path, *, dry_run: bool = False) -> Issued:
    """Make the CA in ``pki_dir`` unless ``ca.crt`` and ``ca.key`` already exist.

    With ``dry_run`` nothing is written; ``changed`` says whether the CA would be made.
    """
    cert_path, key_path = pki_dir / "ca.crt", pki_dir / "ca.key"
    if cert_path.exists() and key_path.exists():
        return Issued(False, cert_path, key_path, cert_path)
    if dry_run:
        return Issued(True, cert_path, key_path, cert_path)
    pki_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(pki_dir, 0o700)
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "planb")])
    now = _now()
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    log.info("created the lab CA in %s", pki_dir)
    return Issued(True, cert_path, key_path, cert_path)


def cert_names(cert: x509.Certificate) -> tuple[frozenset[str], frozenset[IPAddress]]:
    """The DNS names and IP addresses of a certificate's subjectAltName."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset(), frozenset()
    ips = [ip for ip in san.get_values_for_type(x509.IPAddress)
           if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)]
    return frozenset(san.get_values_for_type(x509.DNSName)), frozenset(ips)


def signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """True when ``cert`` was issued by ``ca`` and its signature checks out."""
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def renewal_reason(cert: x509.Certificate, ca: x509.Certificate, dns: frozenset[str],
                   ips: frozenset[IPAddress], now: dt.datetime | None = None) -> str | None:
    """Why ``cert`` must be reissued (None when it is fine as it is)."""
    now = now or _now()
    if not signed_by(cert, ca):
        return "not signed by the current CA"
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return "expires soon"
    if cert_names(cert) != (dns, ips):
        return "names changed"
    return None


def _check_names(name: str, dns: list[str], ips: list[str]) -> tuple[frozenset[str],
                                                                     frozenset[IPAddress]]:
    if not _NAME.match(name):
        raise UsageError(f"certificate name {name!r}: use letters, digits, '.', '_' and '-'")
    if not dns and not ips:
        raise UsageError(f"certificate {name!r}: give at least one DNS name or IP address")
    parsed: set[IPAddress] = set()
    for text in ips:
        try:
            parsed.add(ipaddress.ip_address(text))
        except ValueError:
            raise UsageError(f"certificate {name!r}: {text!r} is not an IP address") from None
    for host in dns:
        if not re.match(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$", host):
            raise UsageError(f"certificate {name!r}: {host!r} is not a DNS name")
    return frozenset(d.lower() for d in dns), frozenset(parsed)


def ensure_server_cert(pki_dir: Path, name: str, dns: list[str], ips: list[str],
                       *, days: int = SERVER_DAYS, dry_run: bool = False) -> Issued:
    """Issue ``<name>.crt``/``<name>.key`` for ``dns`` + ``ips`` unless a valid one exists.

    With ``dry_run`` nothing is written; ``changed`` says whether a certificate (or the
    CA) would be made or renewed.
    """
    dns_set, ip_set = _check_names(name, dns, ips)
    cert_path, key_path = pki_dir / f"{name}.crt", pki_dir / f"{name}.key"
    ca_changed = ensure_ca(pki_dir, dry_run=dry_run).changed
    if ca_changed and dry_run:
        return Issued(True, cert_path, key_path, pki_dir / "ca.crt")
    ca_cert = x509.load_pem_x509_certificate((pki_dir / "ca.crt").read_bytes())
    if cert_path.exists() and key_path.exists() and not ca_changed:
        current = x509.load_pem_x509_certificate(cert_path.read_bytes())
        reason = renewal_reason(current, ca_cert, dns_set, ip_set)
        if reason is None:
            return Issued(False, cert_path, key_path, pki_dir / "ca.crt")
        log.info("renewing the certificate %s: %s", name, reason)
    if dry_run:
        return Issued(True, cert_path, key_path, pki_dir / "ca.crt")
    ca_key = _load_key(pki_dir / "ca.key")
    key = _new_key()
    now = _now()
    common = sorted(dns_set)[0] if dns_set else str(sorted(ip_set, key=str)[0])
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in sorted(dns_set)]
    sans += [x509.IPAddress(i) for i in sorted(ip_set, key=str)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    log.info("issued the certificate %s for %s", name, ", ".join(c.value.__str__() for c in sans))
    return Issued(True, cert_path, key_path, pki_dir / "ca.crt")


def main(argv: list[str] | None = None) -> int:
    """``python -m planb.pki issue ...``: the entry point the ``pki`` role runs."""
    parser = argparse.ArgumentParser(prog="python -m planb.pki", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ca = sub.add_parser("ca", help="make the CA if missing")
    ca.add_argument("--dir", type=Path, required=True)
    ca.add_argument("--check", action="store_true", help="write nothing, say what would change")
    issue = sub.add_parser("issue", help="issue or renew a server certificate")
    issue.add_argument("--dir", type=Path, required=True)
    issue.add_argument("--name", required=True)
    issue.add_argument("--dns", action="append", default=[])
    issue.add_argument("--ip", action="append", default=[])
    issue.add_argument("--days", type=int, default=SERVER_DAYS)
    issue.add_argument("--check", action="store_true", help="write nothing, say what would change")
    args = parser.parse_args(argv)
    try:
        if args.command == "ca":
            result = ensure_ca(args.dir, dry_run=args.check)
        else:
            result = ensure_server_cert(args.dir, args.name, args.dns, args.ip, days=args.days,
                                        dry_run=args.check)
    except (UsageError, OSError, ValueError) as exc:
        print(f"planb.pki: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"changed": result.changed, "cert": str(result.cert),
                      "key": str(result.key), "ca": str(result.ca)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
