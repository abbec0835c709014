"""Check: each fallback host's backups are on time (issue 13): the last run of the
backup service passed, the newest archive is no older than the interval of the mode the
controller records (plus a margin), and the backup host answers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from planb.backup.fresh import PROBE, assess, backup_host_name
from planb.inventory import BACKUP, InventoryHost, load_hosts
from planb.mode import StateFile
from planb.verify.model import CheckFailed, CheckSkipped

if TYPE_CHECKING:
    from planb.verify.registry import CheckContext


def backup_fresh(ctx: CheckContext, host: InventoryHost) -> str:
    """The host's newest archive, its age and the limit; CheckFailed saying what is
    wrong (late, last run failed, backup host unreachable, no archive yet)."""
    site = ctx.site
    if not site.backup.enabled:
        raise CheckSkipped("backups are off (backup.enabled is false in planb.yml)")
    hosts = load_hosts(site)
    if not any(BACKUP in h.groups for h in hosts):
        raise CheckFailed(f"backup.enabled but no host in the inventory group {BACKUP}")
    answer = ctx.remote(host).run(PROBE)
    found = assess(host.name, answer.stdout, site=site,
                   state=StateFile(site.state_dir).load(), backup_host=backup_host_name(hosts))
    if not found.ok:
        raise CheckFailed(found.detail)
    return found.detail
