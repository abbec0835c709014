"""Account sync: read the primary directory into agents, plan, apply to the fallback.

Modules: ``model`` (the normalised :class:`~planb.directory.model.Agent`),
``mapping`` (source attributes -> agent fields, LDAP entry conversion),
``csv_source`` (CSV exports), ``identifiers`` (DN/filter escaping, Matrix
localparts), ``targets`` (snapshots of the fallback LDAP and Matrix),
``plan`` (the pure sync plan), ``plan_json`` (its JSON form), ``safety``.
"""
