"""The site configuration (``planb.yml``): its schema, where it is found, how it loads.

This is the one place that reads ``planb.yml``. Everything else receives a frozen
:class:`SiteConfig`. Relative paths in the file are relative to the file's folder.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from planb import state
from planb.agent_fields import check_mapping
from planb.errors import ConfigError
from planb.i18n import Translator
from planb.schema import Secret, as_plain, load_yaml_as

log = logging.getLogger(__name__)

CONFIG_ENV = "PLANB_CONFIG"
DEFAULT_CONFIG_NAME = "planb.yml"
_SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
_FINGERPRINT = re.compile(r"^SHA256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class MatrixConfig:
    """The fallback homeserver as agents see it."""

    server_name: str
    public_hostname: str
    federation: bool = False

    def __post_init__(self) -> None:
        for name in ("server_name", "public_hostname"):
            if not _HOSTNAME.match(getattr(self, name)):
                raise ValueError(f"{name} {getattr(self, name)!r} is not a valid DNS name")


#: Synapse's worker presets (issue 14): ``none`` is one process, the monolith;
#: ``activation`` adds the workers sized for activation day (docs/capacity.md).
SYNAPSE_WORKER_PRESETS = ("none", "activation")


@dataclass(frozen=True)
class SynapseConfig:
    """How the fallback homeserver runs: one process, or a named preset of workers."""

    workers: Literal["none", "activation"] = "none"


@dataclass(frozen=True)
class StandbyConfig:
    """The hot-standby fallback host (inventory group ``fallback_standby``)."""

    #: The address agents reach the fallback on, held by keepalived (VRRP) on whichever
    #: host serves, moved by ``planb failover promote``; none: no virtual address.
    service_address: str | None = None

    def __post_init__(self) -> None:
        if self.service_address is not None:
            try:
                ipaddress.IPv4Address(self.service_address)
            except ValueError:
                raise ValueError(f"service_address {self.service_address!r} is not an "
                                 "IPv4 address") from None


@dataclass(frozen=True)
class FallbackConfig:
    """The fallback directory, homeserver processes and standby host."""

    ldap_suffix: str = "dc=planb,dc=lab"
    synapse: SynapseConfig = field(default_factory=SynapseConfig)
    standby: StandbyConfig = field(default_factory=StandbyConfig)


@dataclass(frozen=True)
class LdapSourceConfig:
    """The primary directory reached over LDAP (OpenLDAP or Active Directory)."""

    url: str
    base_dn: str
    bind_dn: str
    bind_password: Secret | None = None
    bind_password_file: Path | None = None
    user_filter: str = "(objectClass=inetOrgPerson)"
    flavour: Literal["openldap", "active_directory"] = "openldap"
    ca_file: Path | None = None
    page_size: int = 500
    #: Entries matching this filter are leavers (disabled), on top of the mapped flag.
    leaver_filter: str | None = None
    #: Whether the sync copies password hashes (userPassword) to the fallback. Unset:
    #: yes for openldap, no for active_directory (which never gives them out). False:
    #: the sync never writes userPassword; agents set theirs by enrolment.
    copy_password_hashes: bool | None = None

    def __post_init__(self) -> None:
        if self.page_size <= 0:
            raise ValueError("page_size must be positive")
        if self.leaver_filter is not None:
            text = self.leaver_filter.strip()
            depth = 0
            for char in text:
                depth += {"(": 1, ")": -1}.get(char, 0)
                if depth < 0:
                    break
            if not (text.startswith("(") and text.endswith(")")) or depth != 0:
                raise ValueError(
                    f"leaver_filter {self.leaver_filter!r} is not an LDAP filter: it must be "
                    "in parentheses, balanced, like (employeeType=leaver)"
                )
        if self.copy_password_hashes and self.flavour == "active_directory":
            raise ValueError("copy_password_hashes: Active Directory never gives out "
                             "password hashes; leave it unset or false")

    @property
    def copies_password_hashes(self) -> bool:
        """copy_password_hashes, or the flavour's default when unset."""
        if self.copy_password_hashes is None:
            return self.flavour == "openldap"
        return self.copy_password_hashes


@dataclass(frozen=True)
class CsvSourceConfig:
    """A CSV export of the primary directory."""

    path: Path
    encoding: Literal["auto", "utf-8", "utf-8-sig", "cp1252"] = "auto"
    delimiter: Literal["auto", ";", ","] = "auto"


@dataclass(frozen=True)
class PrimaryConfig:
    """Where the accounts come from, and how its attributes map to an agent.

    ``mapping``: agent field -> LDAP attribute (``a|b``: b when a is absent) or CSV
    header; ``-`` unmaps a default (:mod:`planb.agent_fields`; the defaults are in
    planb.directory.mapping).
    """

    kind: Literal["ldap", "csv"] = "ldap"
    ldap: LdapSourceConfig | None = None
    csv: CsvSourceConfig | None = None
    mapping: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if getattr(self, self.kind) is None:
            raise ValueError(f"kind is {self.kind!r} but the {self.kind!r} section is missing")
        check_mapping(self.mapping, self.flavour)

    @property
    def flavour(self) -> str:
        """Which default mapping applies: ``openldap``, ``active_directory`` or ``csv``."""
        if self.kind == "csv" or self.ldap is None:
            return "csv"
        return self.ldap.flavour

    @property
    def copies_password_hashes(self) -> bool:
        """Whether the sync writes the primary's password hashes to the fallback (never
        from a CSV source, which has none)."""
        return self.kind == "ldap" and self.ldap is not None and self.ldap.copies_password_hashes


@dataclass(frozen=True)
class ObjectivesConfig:
    """What a drill is measured against."""

    rto_seconds: int = 60
    #: Data a restore may lose: the newest backup may be at most this old (issue 13).
    rpo_seconds: int = 900
    #: From the fallback host's loss to the first passing probe on its replacement.
    restore_rto_seconds: int = 3600

    def __post_init__(self) -> None:
        for name in ("rto_seconds", "rpo_seconds", "restore_rto_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


@dataclass(frozen=True)
class BackupRetentionConfig:
    """How many archives borg keeps (borg prune's --keep-* options)."""

    keep_within: str = "1d"
    keep_hourly: int = 48
    keep_daily: int = 14
    keep_weekly: int = 8
    keep_monthly: int = 12

    def __post_init__(self) -> None:
        if not re.match(r"^[1-9][0-9]*[HdwmyS]$", self.keep_within):
            raise ValueError("keep_within must be a number and a unit (H, d, w, m, y), "
                             "e.g. 1d")
        for name in ("keep_hourly", "keep_daily", "keep_weekly", "keep_monthly"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


@dataclass(frozen=True)
class BackupConfig:
    """Backups of the fallback to the ``backup`` inventory group (borgmatic, issue 13).

    Off unless ``enabled``. The fallback hosts' systemd timers run them every
    ``standby_interval_minutes`` and, while the fallback is active, every
    ``active_interval_minutes``, with or without planb's controller.
    """

    enabled: bool = False
    standby_interval_minutes: int = 360
    active_interval_minutes: int = 15
    retention: BackupRetentionConfig = field(default_factory=BackupRetentionConfig)

    def __post_init__(self) -> None:
        for name in ("standby_interval_minutes", "active_interval_minutes"):
            if not 1 <= getattr(self, name) <= 10080:
                raise ValueError(f"{name} must be between 1 and 10080 (a week)")


@dataclass(frozen=True)
class SafetyConfig:
    """Limits that stop one sync from doing damage, by accident or from a compromised
    primary: each is a share of the agents active in the fallback, above which apply
    refuses unless --force."""

    max_deactivate_percent: float = 5.0
    #: Password hashes changed in one run (a takeover pushes its own hashes).
    max_password_change_percent: float = 10.0
    #: Agents reactivated in one run (a takeover brings leavers back).
    max_reactivate_percent: float = 5.0

    def __post_init__(self) -> None:
        for name in ("max_deactivate_percent", "max_password_change_percent",
                     "max_reactivate_percent"):
            if not 0 <= getattr(self, name) <= 100:
                raise ValueError(f"{name} must be between 0 and 100")


@dataclass(frozen=True)
class PathsConfig:
    """Where planb keeps its state and finds the inventory (relative to planb.yml)."""

    state_dir: Path = Path(".planb")
    inventory: Path | None = None


@dataclass(frozen=True)
class LabConfig:
    """The lab of systemd-nspawn hosts (used by ``planb lab``)."""

    subnet: str = "10.77.0.0/24"
    bridge: str = "planb0"
    agents: int = 9000
    split: bool = False
    #: A hot-standby fallback host (``standby``, group fallback_standby): ``lab up --ha``.
    ha: bool = False

    def __post_init__(self) -> None:
        try:
            net = ipaddress.ip_network(self.subnet)
        except ValueError as exc:
            raise ValueError(f"subnet: {exc}") from None
        if not isinstance(net, ipaddress.IPv4Network) or net.prefixlen > 28:
            raise ValueError("subnet must be an IPv4 network of at least 16 addresses")
        if not re.match(r"^[a-z][a-z0-9]{0,14}$", self.bridge):
            raise ValueError("bridge must be an interface name of at most 15 characters")


@dataclass(frozen=True)
class DeployConfig:
    """How the playbooks install software."""

    offline: bool = True
    timezone: str = "Europe/Paris"


#: Titles that put an agent in the crisis cell unless planb.yml names others.
DEFAULT_CRISIS_TITLES = (
    "Directeur général des services", "Directrice générale des services",
    "Directeur", "Directrice", "Directeur adjoint", "Directrice adjointe",
)


@dataclass(frozen=True)
class CrisisContactConfig:
    """Someone to call who is not (only) in the directory: an on-call line, a provider."""

    name: str
    phone: str
    role: str = ""


@dataclass(frozen=True)
class CrisisCellConfig:
    """Who is on the crisis contact sheet ('planb runbook render crisis-contacts').

    An enabled agent is in the cell when they belong to one of ``groups`` (directory
    group names, as in memberOf) or hold one of ``titles`` (whole title, ignoring
    case and accents). ``contacts`` are printed at the top of the sheet and in every runbook.
    """

    groups: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=lambda: list(DEFAULT_CRISIS_TITLES))
    contacts: list[CrisisContactConfig] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.groups and not self.titles:
            raise ValueError("set groups or titles (or both): the crisis cell would be empty")


@dataclass(frozen=True)
class WelcomeConfig:
    """The public welcome page at https://<public_hostname>/ (public all year).

    ``contacts``: whom agents may call for help, shown on the page and its poster. Empty
    by default: the crisis cell's own contacts are never published unless listed here.
    """

    contacts: list[CrisisContactConfig] = field(default_factory=list)


@dataclass(frozen=True)
class EnrolmentConfig:
    """One-time enrolment codes and the enrolment page (https://<public_hostname>/enrol/).

    Where the primary gives no password hashes (Active Directory) it is the agents' way
    in; where it does (OpenLDAP) it is the reset path for a forgotten password. The sync
    issues each active agent a code valid ``code_valid_days``; ``max_failures`` wrong
    codes in a row lock it until reissued.
    """

    enabled: bool = True
    code_valid_days: int = 365
    max_failures: int = 5
    password_min_length: int = 12

    def __post_init__(self) -> None:
        if not 1 <= self.code_valid_days <= 3660:
            raise ValueError("code_valid_days must be between 1 and 3660")
        if not 1 <= self.max_failures <= 100:
            raise ValueError("max_failures must be between 1 and 100")
        if not 8 <= self.password_min_length <= 128:
            raise ValueError("password_min_length must be between 8 and 128")


@dataclass(frozen=True)
class ReportsConfig:
    """The signed journals.

    ``trusted_keys``: fingerprints of the keys journals may be signed with (``SHA256:``
    and 64 lower-case hex digits, as 'planb keys export' prints). When set, 'planb report
    verify' trusts only these (and keys their rotation journals retired), never a key
    file found in the state dir; when empty it trusts the site's keys/signing.pub.
    """

    trusted_keys: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for value in self.trusted_keys:
            if not _FINGERPRINT.match(value):
                raise ValueError(f"trusted_keys: {value!r} is not a key fingerprint "
                                 "(SHA256: and 64 lower-case hex digits)")


@dataclass(frozen=True)
class SiteConfig:
    """One site: everything planb knows about it, validated."""

    site: str
    organisation: str
    matrix: MatrixConfig
    primary: PrimaryConfig
    fallback: FallbackConfig = field(default_factory=FallbackConfig)
    objectives: ObjectivesConfig = field(default_factory=ObjectivesConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    #: Present only in lab sites (written by 'planb lab up').
    lab: LabConfig | None = None
    deploy: DeployConfig = field(default_factory=DeployConfig)
    crisis_cell: CrisisCellConfig = field(default_factory=CrisisCellConfig)
    reports: ReportsConfig = field(default_factory=ReportsConfig)
    welcome: WelcomeConfig = field(default_factory=WelcomeConfig)
    enrolment: EnrolmentConfig = field(default_factory=EnrolmentConfig)
    backup: BackupConfig = field(default_factory=BackupConfig)
    #: The language of what people read outside the terminal (reports, runbooks, the
    #: contact sheet, announcements): fr or en. Unset (older sites), nothing changes:
    #: documents in English, the activation announcement in French.
    language: Literal["en", "fr"] | None = None
    #: The time zone those documents show times in (with the UTC offset); empty: UTC in
    #: English, deploy.timezone (Europe/Paris by default) in French and in announcements.
    timezone: str = ""
    #: The file this was loaded from (not a YAML key).
    source: Path = field(
        default=Path(DEFAULT_CONFIG_NAME), compare=False, metadata={"internal": True}
    )

    def __post_init__(self) -> None:
        if not _SITE_NAME.match(self.site):
            raise ValueError(f"site {self.site!r}: use lower-case letters, digits, - and _")
        if self.timezone:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"timezone {self.timezone!r} is not a known time zone "
                                 "(e.g. Europe/Paris, UTC)") from None

    @property
    def document_language(self) -> str:
        """The language of reports, runbooks and the contact sheet (unset: en)."""
        return self.language or "en"

    @property
    def announcement_language(self) -> str:
        """The language of the activation announcement (unset: fr, as it always was)."""
        return self.language or "fr"

    def translator(self, language: str | None = None) -> Translator:
        """Messages and formats in ``language`` (default: the documents' language), with
        the site's own catalogue's entries; times in the site's ``timezone`` (when unset:
        UTC in English, deploy.timezone in French)."""
        language = language or self.document_language
        zone = self.timezone or (self.deploy.timezone if language == "fr" else "UTC")
        return Translator(language, zone, self.base_dir)

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in planb.yml are taken from."""
        return self.source.parent

    @property
    def state_dir(self) -> Path:
        return (self.base_dir / self.paths.state_dir).resolve()

    @property
    def inventory_dir(self) -> Path:
        inventory = self.paths.inventory or Path("inventories") / self.site
        return (self.base_dir / inventory).resolve()


def load_config(path: Path) -> SiteConfig:
    """Read and validate ``path``; raise :class:`ConfigError` naming file, key and line."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", path=shown,
                          hint="create one with 'planb init DIR' or 'planb lab up'") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=shown) from None
    config = load_yaml_as(SiteConfig, text, shown)
    config = dataclasses.replace(config, source=path.resolve())
    log.debug("loaded site %s from %s", config.site, config.source)
    return config


def find_config_path(explicit: Path | None = None) -> Path:
    """Where the site config is: ``--config``, ``$PLANB_CONFIG``, ``./planb.yml``, current site.

    Raises :class:`ConfigError` when none of them gives a file.
    """
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    if local.exists():
        return local
    current = state.current_site()
    if current is not None:
        return current
    raise ConfigError(
        "no site configuration found",
        path=DEFAULT_CONFIG_NAME,
        hint=f"pass --config FILE, set {CONFIG_ENV}, run from a folder with planb.yml, "
        "or create one with 'planb init DIR' or 'planb lab up'",
    )


def masked(config: SiteConfig) -> dict[str, object]:
    """The effective configuration as plain data, secrets replaced by a mask."""
    plain = as_plain(config)
    assert isinstance(plain, dict)
    return plain
