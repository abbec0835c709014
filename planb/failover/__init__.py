"""Failover: switch the fallback from standby to active during an incident, and back.

- :mod:`planb.failover.state`: the state file, the sync freeze flag, the audit log.
- :mod:`planb.failover.machine`: the state machine and its steps as data.
- :mod:`planb.failover.actions`: the steps' actions (freeze, switch, instructions).
- :mod:`planb.failover.announcement`: the activation announcement (Jinja2, French).
"""
