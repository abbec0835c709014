"""Writing a new site: a commented ``planb.yml`` and its ``inventories/<site>/``.

Used by ``planb init`` (placeholders for a production site) and ``planb lab up``
(the lab's own hosts and generated secrets). Nothing is written if any target file
exists and ``force`` is not set, so an existing site is never half-overwritten.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from planb.errors import UsageError
from planb.files import write_atomic

log = logging.getLogger(__name__)

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("planb", "data/site"),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,
)

PLACEHOLDER = "CHANGE-ME"
SECRET_NAMES = (
    "ldap_admin_password",
    "ldap_sync_password",
    "ldap_synapse_password",
    "ldap_enrol_password",
    "postgresql_synapse_password",
    "synapse_admin_password",
    "turn_shared_secret",
    "probe_password",
    "backup_passphrase",
    "postgresql_replication_password",
    "ldap_replication_password",
)


@dataclass(frozen=True)
class InventoryHost:
    """A host in the inventory and the address Ansible reaches it on."""

    name: str
    address: str


@dataclass(frozen=True)
class SiteSpec:
    """What to write for a new site."""

    site: str
    organisation: str
    server_name: str
    public_hostname: str
    ldap_suffix: str = "dc=planb,dc=lab"
    primary_url: str = "ldaps://ldap.example.org"
    primary_base_dn: str = "ou=people,dc=example,dc=org"
    primary_bind_dn: str = "cn=planb-reader,dc=example,dc=org"
    primary_password_file: str = "secrets/primary-bind-password"
    primary_ca_file: str | None = None
    #: Entries per page of the primary search; None: the default (500).
    primary_page_size: int | None = None
    timezone: str = "Europe/Paris"
    #: The language of the documents people read; a new site is French unless told
    #: otherwise (planb serves French administrations; nothing else says which).
    language: str = "fr"
    hosts: tuple[InventoryHost, ...] = (InventoryHost("fallback1", "192.0.2.10"),)
    #: Inventory group -> host names.
    groups: dict[str, tuple[str, ...]] = field(default_factory=lambda: {
        "fallback_directory": ("fallback1",),
        "fallback_messaging": ("fallback1",),
        "fallback_proxy": ("fallback1",),
    })
    ssh_key: str | None = None
    generate_secrets: bool = False
    lab: dict[str, object] = field(default_factory=dict)
    #: fallback.standby.service_address (a site with a hot standby), else None.
    standby_service_address: str | None = None


def _render(name: str, **context: object) -> str:
    return _TEMPLATES.get_template(name).render(**context)


def site_files(spec: SiteSpec, site_dir: Path) -> dict[Path, str]:
    """The files of a site (path -> content), without writing them."""
    inventory = site_dir / "inventories" / spec.site
    if spec.generate_secrets:
        vault = {name: secrets.token_urlsafe(24) for name in SECRET_NAMES}
    else:
        vault = {name: PLACEHOLDER for name in SECRET_NAMES}
    context: dict[str, object] = {
        **{k: getattr(spec, k) for k in spec.__dataclass_fields__},
        "lab": bool(spec.lab),
        **{f"lab_{k}": v for k, v in spec.lab.items()},
        **vault,
    }
    return {
        site_dir / "planb.yml": _render("planb.yml.j2", **context),
        inventory / "hosts.yml": _render("hosts.yml.j2", **context),
        inventory / "group_vars" / "all" / "main.yml": _render("group_vars_main.yml.j2", **context),
        inventory / "group_vars" / "all" / "vault.yml": _render("vault.yml.j2", **context),
    }


def _add_missing_secrets(vault: Path) -> None:
    """Give a kept (lab) vault the secrets a newer planb needs, leaving the others as they are."""
    text = vault.read_text(encoding="utf-8")
    present = {line.split(":", 1)[0].strip() for line in text.splitlines() if ":" in line}
    missing = [name for name in SECRET_NAMES if f"vault_{name}" not in present]
    if not missing:
        return
    if not text.endswith("\n"):
        text += "\n"
    text += "".join(f"vault_{name}: {secrets.token_urlsafe(24)}\n" for name in missing)
    write_atomic(vault, text, 0o600)
    log.info("added %s to %s", ", ".join(f"vault_{n}" for n in missing), vault)


def write_site(spec: SiteSpec, site_dir: Path, *, force: bool = False,
               keep: tuple[str, ...] = ()) -> list[Path]:
    """Write the site's files; refuse (writing nothing) if one exists and not ``force``.

    Files whose name is in ``keep`` are left as they are when they already exist
    (the lab keeps its generated vault across ``lab up`` runs).
    """
    files = site_files(spec, site_dir)
    existing = [p for p in files if p.exists() and p.name not in keep]
    if existing and not force:
        shown = ", ".join(str(p) for p in existing)
        raise UsageError(f"refusing to overwrite existing files: {shown}",
                         hint="pass --force to replace them")
    written: list[Path] = []
    for path, content in files.items():
        if path.exists() and path.name in keep:
            if path.name == "vault.yml" and spec.generate_secrets:
                _add_missing_secrets(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, content, 0o600 if path.name == "vault.yml" else 0o644)
        written.append(path)
        log.info("wrote %s", path)
    return written
