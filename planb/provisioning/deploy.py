"""``planb deploy``'s core: run ``playbooks/site.yml`` on the site's inventory."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from pathlib import Path

import planb
from planb.bundle.build import default_output
from planb.bundle.client import CLIENT_PATH
from planb.bundle.selfwheel import build_self_wheel
from planb.config import SiteConfig
from planb.enrol_page import ENROL_PATH, render_enrol
from planb.hostkeys import HostKeyError, TrustResult, known_hosts_path
from planb.inventory import (
    check_inventory,
    load_hosts,
    playbook_limit,
    require_trusted_hosts,
    trust_hosts,
)
from planb.provisioning.results import PlaybookResult, ProgressEvent
from planb.provisioning.runner import new_run_dir, run_playbook
from planb.schema import as_plain
from planb.welcome import render_welcome

log = logging.getLogger(__name__)

SITE_PLAYBOOK = planb.PLAYBOOKS_DIR / "site.yml"
#: The break-glass key's public part on the controller, under the state dir ('planb keys
#: breakglass' writes it; the role breakglass lets it run planb-breakglass only).
BREAKGLASS_PUBLIC_KEY = Path("keys") / "breakglass.pub"
#: Where deploy writes planb's own wheel for the hosts (planb.bundle.selfwheel).
HOST_WHEEL_DIR = Path("breakglass")


def b64(text: str) -> str:
    """``text`` as base64 (UTF-8): how site text crosses extra vars untemplated."""
    return base64.b64encode(text.encode()).decode("ascii")


def deploy_vars(site: SiteConfig) -> dict[str, object]:
    """The extra vars every planb playbook gets: site facts from planb.yml, no secrets.

    ``planb_config`` carries the planb.yml values roles need (so planb.yml stays the
    one place they are set), ``planb_state_dir`` is where roles leave controller-side
    files (the lab CA, the Synapse admin token), and ``planb_bundle_dir`` is the offline
    bundle the roles install from when ``deploy.offline`` is true. ``planb_welcome`` is
    the public welcome page nginx serves, ``planb_enrol`` the enrolment page and its
    form handler's pages (public text only).
    """
    bundle = default_output()
    enrolment = site.enrolment
    enrol = render_enrol(site, min_length=enrolment.password_min_length,
                         max_failures=enrolment.max_failures) if enrolment.enabled else None
    # The browser client comes with the offline bundle (no bundle on the hosts, no client).
    welcome = render_welcome(site, enrol_path=ENROL_PATH if enrol is not None else None,
                             client_path=CLIENT_PATH if site.deploy.offline else None)
    return {
        "planb_action": "deploy",
        "planb_site": site.site,
        "planb_state_dir": str(site.state_dir),
        "planb_bundle_dir": str(bundle) if site.deploy.offline else "",
        "planb_config": {
            "organisation": site.organisation,
            "matrix": as_plain(site.matrix),
            "fallback": as_plain(site.fallback),
            "deploy": as_plain(site.deploy),
            "primary": _primary_vars(site),
            "lab": as_plain(site.lab) if site.lab is not None else None,
            "enrolment": as_plain(enrolment),
            "backup": as_plain(site.backup),
        },
        # The public welcome page (rendered here in the site's language; its live part
        # comes from Synapse at each request: planb/welcome.py). Base64, so that no
        # site text is ever read as a Jinja2 template by Ansible.
        "planb_welcome": {"html_b64": b64(welcome.html), "css_b64": b64(welcome.css),
                          "banner_b64": b64(welcome.banner)},
        # The enrolment page (nginx) and the pages and messages of its form handler
        # (planb's Synapse module), in the site's language: planb/enrol_page.py.
        "planb_enrol": {"html_b64": b64(enrol.html), "css_b64": b64(enrol.css),
                        "pages_b64": b64(enrol.pages_json)} if enrol is not None else {},
        "planb_breakglass": breakglass_vars(site),
    }


def breakglass_vars(site: SiteConfig) -> dict[str, str]:
    """What the role breakglass installs on the messaging hosts (no secret): planb's own
    wheel (written here from the running planb), the site's values and own template for
    the announcement, the break-glass key's public part, where host public keys go."""
    wheel = build_self_wheel(site.state_dir / HOST_WHEEL_DIR)
    values = {"format": "planb-breakglass-site/1", "site": site.site,
              "organisation": site.organisation, "server_name": site.matrix.server_name,
              "public_hostname": site.matrix.public_hostname,
              "language": site.announcement_language,
              "timezone": site.timezone or site.deploy.timezone}
    # A site's own announcement (planb.messaging.announcement.site_template_path).
    template = site.state_dir / "templates" / f"announcement.{site.announcement_language}.md.j2"
    public = site.state_dir / BREAKGLASS_PUBLIC_KEY
    return {
        "wheel": str(wheel),
        "site_b64": b64(json.dumps(values, ensure_ascii=False, sort_keys=True)),
        "template_name": template.name,
        "template_b64": b64(template.read_text(encoding="utf-8")) if template.is_file()
        else "",
        "authorized_key": public.read_text(encoding="utf-8").strip() if public.is_file()
        else "",
        "host_keys_dir": str(site.state_dir / "keys" / "hosts"),
    }


def _primary_vars(site: SiteConfig) -> dict[str, object]:
    """Where the primary's files are, as absolute paths (never the password itself)."""
    ldap = site.primary.ldap
    if ldap is None:
        return {"kind": site.primary.kind}
    def absolute(path: Path | None) -> str | None:
        return str((site.base_dir / path).resolve()) if path is not None else None
    return {
        "kind": site.primary.kind,
        "url": ldap.url,
        "base_dn": ldap.base_dn,
        "bind_dn": ldap.bind_dn,
        "bind_password_file": absolute(ldap.bind_password_file),
        "ca_file": absolute(ldap.ca_file),
    }


def run_deploy(
    site: SiteConfig,
    *,
    limit: str | None = None,
    tags: tuple[str, ...] = (),
    check: bool = False,
    verbose: bool = False,
    on_event: Callable[[ProgressEvent], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    playbook: Path = SITE_PLAYBOOK,
) -> PlaybookResult:
    """Run ``playbook`` (default ``site.yml``) for ``site`` and return the result, failed or not.

    Extra vars: ``planb_action=deploy`` and ``planb_site=<site>`` (no secrets: those
    come from the inventory's vault). Raises :class:`ConfigError` for a missing
    inventory, :class:`~planb.hostkeys.HostKeyError` when a host has no SSH key recorded
    (:func:`trust_new_hosts` first) and :class:`Interrupted` (exit 130) if the run was
    canceled.
    """
    inventory = check_inventory(site)
    require_trusted_hosts(site, load_hosts(site))
    run_dir = new_run_dir(site.state_dir, playbook)
    result = run_playbook(
        playbook, inventory, run_dir=run_dir, limit=playbook_limit(site, limit), tags=tags,
        check=check,
        extravars=deploy_vars(site), known_hosts=known_hosts_path(site),
        verbose=verbose, on_event=on_event, cancel=cancel,
    )
    if result.status == "canceled":
        result.raise_for_status()
    return result


def trust_new_hosts(site: SiteConfig) -> list[TrustResult]:
    """Record the SSH keys of the hosts that have none recorded yet (first contact);
    :class:`HostKeyError` if one of them does not answer. Keys already recorded are
    never replaced here."""
    results = trust_hosts(site, new_only=True)
    silent = [r.target.name for r in results if r.outcome == "unreachable"]
    if silent:
        raise HostKeyError(f"could not read the SSH host key of {', '.join(silent)} "
                           "(ssh-keyscan got no answer)",
                           hint="check that the hosts are up and reachable on their SSH port")
    return results


def deploy(
    site: SiteConfig,
    *,
    limit: str | None = None,
    tags: tuple[str, ...] = (),
    check: bool = False,
    verbose: bool = False,
    on_event: Callable[[ProgressEvent], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    playbook: Path = SITE_PLAYBOOK,
) -> PlaybookResult:
    """Like :func:`run_deploy`, but raise :class:`PlaybookFailed` (exit 3) unless the run is ok.

    The exception's message names each failed host and task; its hint names the
    artifacts folder.
    """
    result = run_deploy(site, limit=limit, tags=tags, check=check, verbose=verbose,
                        on_event=on_event, cancel=cancel, playbook=playbook)
    result.raise_for_status()
    return result
