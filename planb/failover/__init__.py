"""Failover: switch the fallback from standby to active during an incident, and back.

- :mod:`planb.failover.machine`: the state machine and its steps as data.

Below it: :mod:`planb.mode` (the state file, the sync freeze flag, the audit log),
:mod:`planb.actions.failover_steps` (freeze, switch, instructions) and
:mod:`planb.messaging.announcement` (the activation announcement, Jinja2, French).
"""
