"""Provisioning: run planb's playbooks with ansible-runner and report the results.

The only package that touches Ansible machinery. Public interface:

- :func:`run_playbook` runs any playbook on an inventory and returns a
  :class:`PlaybookResult` (per-host :class:`HostStats`, :class:`TaskFailure` list,
  artifacts folder), streaming :class:`ProgressEvent` snapshots on the way.
- :func:`deploy` / :func:`run_deploy` run ``playbooks/site.yml`` for a site.
"""

from planb.provisioning.deploy import SITE_PLAYBOOK, check_inventory, deploy, run_deploy
from planb.provisioning.results import (
    HostStats,
    PlaybookResult,
    ProgressEvent,
    TaskFailure,
    parse_events,
)
from planb.provisioning.runner import new_run_dir, run_playbook

__all__ = [
    "SITE_PLAYBOOK",
    "HostStats",
    "PlaybookResult",
    "ProgressEvent",
    "TaskFailure",
    "check_inventory",
    "deploy",
    "new_run_dir",
    "parse_events",
    "run_deploy",
    "run_playbook",
]
