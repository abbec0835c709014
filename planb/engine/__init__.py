"""The engine drills and failover both run on (below both; imports neither).

- :mod:`planb.engine.actions`: the action registry, action context and results, probe
  results, and :func:`~planb.engine.actions.attempt` (one call, errors as records).
- :mod:`planb.engine.records`: the one step record type journals store.
- :mod:`planb.engine.redaction`: the redactor every journal, report and audit text
  goes through.
"""
