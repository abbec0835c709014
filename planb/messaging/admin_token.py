"""planb-admin's access token on the controller, renewed on the host when Synapse refuses it.

The deploy (role synapse) writes the token to ``<state_dir>/synapse/admin-token``
(mode 0600). Local passwords are off in Synapse, so no token ever comes from a
password login: the role installs ``planb-synapse-admin-token-renew`` on the messaging
host, which asks planb's Synapse module, on the host's loopback and with an HMAC made
with the registration shared secret, for a login token and exchanges it for an access
token. Tokens that are not refreshed expire (``nonrefreshable_access_token_lifetime``):
when Synapse answers 401 to the stored one, :func:`renew_token` runs that command over
SSH (as the deploy and the admin tunnel reach the host) and stores the new token.
Neither token is ever logged or put in an error.
"""

from __future__ import annotations

import logging
from pathlib import Path

from planb.commands import run_command
from planb.config import SiteConfig
from planb.errors import ConfigError, PlanbError
from planb.files import write_atomic
from planb.inventory import SshTarget
from planb.schema import Secret

log = logging.getLogger(__name__)

#: Installed by the synapse role (tasks/admin.yml), with the host's URL, secret file
#: and admin localpart filled in; prints a new access token on stdout.
RENEW_COMMAND = "/usr/local/sbin/planb-synapse-admin-token-renew"


def token_file(site: SiteConfig) -> Path:
    """Where the deploy (role synapse) keeps planb-admin's access token."""
    return site.state_dir / "synapse" / "admin-token"


def read_token(site: SiteConfig) -> Secret:
    """planb-admin's access token; ConfigError (without the token) if missing or empty."""
    path = token_file(site)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError("no Synapse admin token", path=str(path),
                          hint="run 'planb deploy': the synapse role writes it") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the Synapse admin token: {exc.strerror}",
                          path=str(path)) from None
    if not token:
        raise ConfigError("the Synapse admin token file is empty", path=str(path),
                          hint="run 'planb deploy' again")
    return Secret(token)


def renew_argv(target: SshTarget) -> list[str]:
    """The ssh command that runs the renewal command on the messaging host."""
    return ["ssh", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
            *target.ssh_args(), target.destination, RENEW_COMMAND]


def renew_token(site: SiteConfig, target: SshTarget) -> Secret:
    """A new access token made on ``target`` (no password), stored 0600 and returned."""
    done = run_command(renew_argv(target), timeout=90,
                       what=f"renewing planb's Synapse admin token on {target.name}",
                       hint="run 'planb deploy' (it installs the renewal command and "
                            "checks the admin account)")
    token = done.stdout.strip()
    if not token or any(c.isspace() for c in token):
        raise PlanbError(f"renewing planb's Synapse admin token on {target.name}: the host "
                         "printed no token", hint="run 'planb deploy'")
    write_atomic(token_file(site), token + "\n", mode=0o600)
    log.info("planb's Synapse admin token was refused; renewed it on %s", target.name)
    return Secret(token)
