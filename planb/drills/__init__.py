"""Drills: scenarios as data, run with a clock, journaled and signed.

- :mod:`planb.drills.actions`: the action registry every step names.
- :mod:`planb.drills.scenario`: strict loading of scenario YAML files.
- :mod:`planb.drills.runner`: steady state, fault, activate, verify, restore, steady after.
- :mod:`planb.drills.records`: step records, RTO and the journal payload.
- :mod:`planb.drills.lab_actions`: lab network and service faults (real, over SSH).
- :mod:`planb.drills.catalog`: the default registry for a site.
"""
