"""Matrix side of planb: Synapse's admin API, reached through an SSH tunnel.

- :mod:`planb.messaging.tunnel`: an SSH forward to the admin API, which listens
  only on the messaging host's loopback, from a Unix socket in a private directory.
- :mod:`planb.messaging.admin_api`: a small, thread-safe admin API client (retries
  with backoff on 429 and 5xx, errors naming the user).
- :mod:`planb.messaging.rooms`: department rooms and the announcement room, found
  again by alias, created once.
- :mod:`planb.messaging.apply`: applies the Matrix sections of a sync plan.
- :mod:`planb.messaging.sync_target`: the sync's Matrix target (``target_for``).
- :mod:`planb.messaging.announce`: one announcement to every active agent.
"""
