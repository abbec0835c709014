"""The actions drill steps and failover steps name, on the engine's registry.

Each module registers a family: :mod:`~planb.actions.failover_steps` (sync freeze,
instructions, ``fallback.switch``), :mod:`~planb.actions.stack` (``verify.checks``,
``probes.run``), :mod:`~planb.actions.announce` (``messaging.announce``) and
:mod:`~planb.actions.lab` (faults on lab hosts). They sit above the service packages
(verify, messaging, directory, provisioning, lab) and below drills and failover, which
both use them and never import each other.
"""
