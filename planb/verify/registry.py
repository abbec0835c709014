"""The list of verify checks, which hosts each applies to, selection and the run itself.

A check applies to every inventory host of its group. Checks run in parallel (each
one on one host is independent); results come back in the order of :data:`CHECKS`
then host name. A check passes by returning a message, fails by raising
:class:`~planb.verify.model.CheckFailed`, is skipped by raising
:class:`~planb.verify.model.CheckSkipped`; anything else it raises is an *error*.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from testinfra.host import Host

from planb.config import SiteConfig
from planb.engine.redaction import Redactor
from planb.errors import UsageError
from planb.inventory import BACKUP, InventoryHost, load_hosts
from planb.verify import backup_check as bc
from planb.verify import client_check as cc
from planb.verify import copy_check as cpc
from planb.verify import enrol_check as ec
from planb.verify import host_checks as hc
from planb.verify import net_checks as nc
from planb.verify import proxy_paths as pp
from planb.verify import replication_check as rc
from planb.verify import standby_check as sc
from planb.verify import welcome_check as wc
from planb.verify import workers_check as wk
from planb.verify.connections import HostConnections
from planb.verify.model import CheckFailed, CheckResult, CheckSkipped, Status, VerifyReport

log = logging.getLogger(__name__)

DIRECTORY, MESSAGING, PROXY = "fallback_directory", "fallback_messaging", "fallback_proxy"
#: The hot-standby hosts (a site without one has no standby.* check to run).
STANDBY = "fallback_standby"
#: Pseudo-group: every host of the three fallback groups.
FALLBACK = "fallback"
DEFAULT_CERT_MIN_DAYS = 30
WORKERS = 8


@dataclass
class CheckContext:
    """What checks share during one run: the site, SSH connections, probe accounts."""

    site: SiteConfig
    connections: HostConnections
    cert_min_days: int = DEFAULT_CERT_MIN_DAYS
    probe_accounts: list[tuple[str, str]] = field(default_factory=list)

    def remote(self, host: InventoryHost) -> Host:
        """The testinfra host to run commands on ``host`` over SSH."""
        return self.connections.get(host)


CheckFunc = Callable[[CheckContext, InventoryHost], str]


@dataclass(frozen=True)
class Check:
    """A named check and the inventory group whose hosts it runs on."""

    name: str
    group: str
    summary: str
    func: CheckFunc


def _check(name: str, group: str, summary: str, func: CheckFunc) -> Check:
    return Check(name, group, summary, func)


CHECKS: tuple[Check, ...] = (
    _check("package.slapd", DIRECTORY, "slapd and ldap-utils installed",
           hc.packages("slapd", "ldap-utils")),
    _check("package.postgresql", MESSAGING, "PostgreSQL installed", hc.packages("postgresql")),
    _check("package.synapse", MESSAGING, "Synapse and matrix-synapse-ldap3 in their venv",
           hc.synapse_venv),
    _check("package.nginx", PROXY, "nginx installed", hc.packages("nginx")),
    _check("package.coturn", PROXY, "coturn installed", hc.packages("coturn")),
    _check("service.slapd", DIRECTORY, "slapd active and enabled", hc.service("slapd")),
    _check("service.postgresql", MESSAGING, "PostgreSQL cluster active, enabled",
           hc.service(hc.POSTGRESQL_UNIT, "postgresql")),
    _check("service.synapse", MESSAGING, "synapse active and enabled", hc.service("synapse")),
    _check("synapse.workers", MESSAGING, "every Synapse worker of the preset active, "
           "enabled and answering /health (skipped without workers)", wk.workers_up),
    _check("synapse.redis", MESSAGING, "Redis, the workers' replication bus, answers "
           "(skipped without workers)", wk.redis_answers),
    _check("service.nginx", PROXY, "nginx active and enabled", hc.service("nginx")),
    _check("service.coturn", PROXY, "coturn active and enabled", hc.service("coturn")),
    _check("ports", FALLBACK, "listening sockets exactly as expected", hc.listening_ports),
    _check("files.tls_keys", FALLBACK, "TLS keys 0640 or stricter",
           hc.file_modes("/etc/planb/tls/*.key", what="TLS private keys",
                         groups=("root", "ssl-cert"))),
    _check("files.synapse_config", MESSAGING, "homeserver.yaml not world-readable",
           hc.file_modes("/etc/synapse/homeserver.yaml", what="Synapse's configuration",
                         groups=("root", "synapse"))),
    _check("files.synapse_keys", MESSAGING, "signing key and secrets 0640 or stricter",
           hc.file_modes("/etc/synapse/keys/*", what="Synapse's keys and secrets",
                         groups=("root", "synapse"))),
    _check("files.slapd_config", DIRECTORY, "slapd's cn=config not world-readable",
           hc.file_modes("/etc/ldap/slapd.d /etc/ldap/slapd.d/cn=config.ldif",
                         what="slapd's configuration", forbid=0o007)),
    _check("files.coturn_config", PROXY, "turnserver.conf (shared secret) 0640 or stricter",
           hc.file_modes("/etc/turnserver.conf", what="coturn's configuration")),
    _check("files.admin_token", MESSAGING, "Synapse admin token on the controller 0600",
           nc.admin_token),
    _check("tls.https", PROXY, "443: certificate valid for the public name, not near expiry",
           nc.tls_https),
    _check("tls.ldaps", DIRECTORY, "636: certificate valid for the host, not near expiry",
           nc.tls_ldaps),
    _check("ldap.anonymous", DIRECTORY, "anonymous LDAP search returns nothing",
           nc.ldap_anonymous),
    _check("matrix.client_api", PROXY, "client API answers through nginx over TLS",
           nc.client_api),
    _check("matrix.admin_api", PROXY, "admin API refused through nginx", nc.admin_api_refused),
    _check("matrix.proxy_paths", PROXY, "nginx itself refuses raw paths with dot-segments, "
           "encoded . \\ and the admin prefix; encoded Matrix IDs pass", pp.proxy_paths_refused),
    _check("matrix.registration", PROXY, "registration refused", nc.registration_refused),
    _check("matrix.ldap_injection", PROXY, "logins with * ( ) \\ never log anyone in",
           nc.ldap_injection),
    _check("matrix.standby_login", PROXY, "standby refuses logins before the directory "
           "(right and wrong password: one answer)", sc.standby_refuses_before_directory),
    _check("synapse.workers_routed", PROXY, "each worker's paths, sent through nginx, "
           "reach that worker (nginx's log of the upstream; skipped without workers)",
           wk.workers_routed),
    _check("welcome.page", PROXY, "the welcome page at / answers and states the mode the "
           "controller records", wc.welcome_page),
    _check("enrol.wrong_code", PROXY, "the enrolment page answers and refuses a wrong code "
           "(the same answer as for an unknown login)", ec.enrolment_refuses_a_wrong_code),
    _check("client.files", PROXY, "the browser client's files are the bundle's (sha256) "
           "and /app/ serves them with a self-only CSP", cc.client_files),
    _check("controller.copy", MESSAGING, "the host keeps a current copy of the "
           "controller's state, secrets encrypted (skipped while no passphrase is set)",
           cpc.controller_copy),
    _check("matrix.probe", PROXY, "two probe accounts log in via LDAP and exchange a message",
           nc.probe_exchange),
    _check("backup.fresh", FALLBACK, "last backup run passed, newest archive within the "
           "mode's interval, backup host reachable", bc.backup_fresh),
    _check("standby.replication", STANDBY, "hot standby in step: PostgreSQL streaming with "
           "its replay lag within objectives.rpo_seconds, slapd's contextCSN equal, "
           "Synapse's files copied", rc.standby_replication),
)

#: The checks that matter before and after a failover (drills' ``verify.checks`` default).
FAILOVER_CHECKS = ("service", "tls", "ldap.anonymous", "matrix.client_api")


def check_names() -> list[str]:
    return [c.name for c in CHECKS]


def select_checks(names: Iterable[str] | None = None,
                  checks: Sequence[Check] = CHECKS) -> list[Check]:
    """The checks named (``service`` selects every ``service.*``); all when ``names`` is empty.

    :class:`UsageError` naming the unknown ones and listing the known names.
    """
    wanted = [n.strip() for n in (names or ()) if n.strip()]
    if not wanted:
        return list(checks)

    def matches(check: Check, name: str) -> bool:
        return check.name == name or check.name.startswith(name + ".")

    unknown = [n for n in wanted if not any(matches(c, n) for c in checks)]
    if unknown:
        raise UsageError(f"unknown check {', '.join(unknown)}",
                         hint="known checks: " + ", ".join(c.name for c in checks))
    return [c for c in checks if any(matches(c, n) for n in wanted)]


def hosts_of(check: Check, hosts: Sequence[InventoryHost]) -> list[InventoryHost]:
    """The hosts ``check`` applies to."""
    if check.group == FALLBACK:
        # The backup host keeps the fallback's backups; it is not part of the fallback.
        return [h for h in hosts if h.is_fallback and BACKUP not in h.groups]
    return [h for h in hosts if check.group in h.groups]


def plan(checks: Sequence[Check], hosts: Sequence[InventoryHost],
         only_host: str | None = None) -> list[tuple[Check, InventoryHost]]:
    """Every (check, host) pair to run; ``only_host`` limits them to one inventory host."""
    if only_host is not None and only_host not in {h.name for h in hosts}:
        raise UsageError(f"no host {only_host!r} in the inventory",
                         hint="hosts: " + ", ".join(sorted(h.name for h in hosts)))
    return [(c, h) for c in checks for h in hosts_of(c, hosts)
            if only_host is None or h.name == only_host]


def _run_one(ctx: CheckContext, check: Check, host: InventoryHost, redact: Redactor
             ) -> CheckResult:
    start = time.monotonic()
    status: Status
    try:
        message = check.func(ctx, host)
        status = "pass"
    except CheckFailed as exc:
        status, message = "fail", str(exc)
    except CheckSkipped as exc:
        status, message = "skip", str(exc)
    except Exception as exc:  # noqa: BLE001 - any other problem is this check's error
        status, message = "error", f"{type(exc).__name__}: {exc}"
        log.debug("%s on %s", check.name, host.name, exc_info=True)
    return CheckResult(check.name, host.name, status, time.monotonic() - start,
                       redact(message, limit=1000))


def run_checks(site: SiteConfig, names: Iterable[str] | None = None, *,
               host: str | None = None, cert_min_days: int = DEFAULT_CERT_MIN_DAYS,
               probe_accounts: Sequence[tuple[str, str]] = (),
               hosts: Sequence[InventoryHost] | None = None) -> VerifyReport:
    """Run the selected checks on the site's inventory and return the report.

    ``names``: check names or prefixes (all when empty); ``host``: one inventory host;
    ``probe_accounts``: (login, password) pairs for the login and injection checks;
    ``hosts``: the inventory already read (else read now).
    """
    checks = select_checks(names)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    start = time.monotonic()
    inventory = list(hosts) if hosts is not None else load_hosts(site)
    pairs = plan(checks, inventory, host)
    redact = Redactor(p for _, p in probe_accounts)
    ctx = CheckContext(site, HostConnections(), cert_min_days, list(probe_accounts))
    try:
        with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="verify") as pool:
            results = list(pool.map(lambda pair: _run_one(ctx, pair[0], pair[1], redact), pairs))
    finally:
        ctx.connections.close()
    return VerifyReport(site.site, started_at, time.monotonic() - start, tuple(results))
