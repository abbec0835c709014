"""The controller's state copied off the controller, and rebuilt from that copy (issue 16).

- :mod:`~planb.statecopy.content`: which files the copy holds, which are secret;
- :mod:`~planb.statecopy.crypto`: the copy key (Fernet) wrapped by the crisis cell's
  passphrase (scrypt), set with ``planb controller passphrase``;
- :mod:`~planb.statecopy.archive`: the copy as one tar (public files plain, secrets
  encrypted, an integrity record only the copy key can write);
- :mod:`~planb.statecopy.push`: to every fallback messaging host and backup host, after
  every CLI command that changed the state;
- :mod:`~planb.statecopy.restore`: ``planb controller restore`` on a fresh machine;
- :mod:`~planb.statecopy.hostjournals`: the break-glass journals and audit lines of the
  fallback hosts, fetched and verified with each host's key.

Library entry points: :func:`planb.statecopy.restore.restore`,
:func:`planb.statecopy.push.push`.
"""
