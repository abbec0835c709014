"""Drills: scenarios as data, run with a clock, journaled and signed.

- :mod:`planb.drills.scenario`: strict loading of scenario YAML files.
- :mod:`planb.drills.runner`: steady state, fault, activate, verify, restore, steady after.
- :mod:`planb.drills.records`: verify rounds, RTO, findings and the journal payload.
- :mod:`planb.drills.collectors`: versions and footprint of the fallback at the end.

The actions steps name live below, in :mod:`planb.actions` (on the engine of
:mod:`planb.engine`); :mod:`planb.cli.wiring` builds a site's registry. Drills never
import :mod:`planb.failover`: a drill's ``failover.activate`` is wired in by the CLI.
"""
