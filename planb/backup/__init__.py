"""The fallback's backups (issue 13): run one now, list, verify, export the keys, restore.

The backups themselves are borgmatic's, on the fallback hosts (the ``backup`` role):
planb only talks to those hosts over SSH, so they go on when planb's controller is
down. Nothing here reads or prints the repository passphrase.
"""

from planb.backup.core import (
    Archive,
    BackupError,
    HostRun,
    Verified,
    backup_hosts,
    export_keys,
    list_archives,
    run_now,
    verify,
)
from planb.backup.restore import Restored, restore

__all__ = ["Archive", "BackupError", "HostRun", "Restored", "Verified", "backup_hosts",
           "export_keys", "list_archives", "restore", "run_now", "verify"]
