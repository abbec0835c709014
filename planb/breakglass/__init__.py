"""The break-glass command on a fallback messaging host: the switch without the controller.

In the incidents a Plan B exists for, planb's controller may be lost with the main
system. The role ``breakglass`` installs planb's own wheel on each messaging host
(``/opt/planb``, from the offline bundle and the deploying controller) with the console
script ``planb-breakglass``; an administrator reaches it over SSH with the break-glass
key from the crisis cell's safe (root's ``authorized_keys``: ``restrict,command=``).

- :mod:`planb.breakglass.paths`: where everything lives on the host.
- :mod:`planb.breakglass.lock`: the host's failover lock (who holds it, since when).
- :mod:`planb.breakglass.host`: status, activate, deactivate, the host's signing key;
  the audit log and signed journals in planb's own formats, with their own chain.
- :mod:`planb.breakglass.announce`: the site's announcement, kept on the host, posted
  through Synapse on localhost.
- :mod:`planb.breakglass.cli`: the command (``SSH_ORIGINAL_COMMAND`` under the forced
  command).
- :mod:`planb.breakglass.remote`: the controller's side: ``planb failover`` holds the
  same lock over SSH while it switches.
"""
