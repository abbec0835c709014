"""Empty the lab fallback directory of agents and groups, offline, as a fresh install has it.

For the sync's lab tests and ``bench/sync.py``, which measure a full sync from empty:
slapd is stopped, the database is dumped with slapcat, rebuilt with slapadd -q from
everything but the agents (``planbAgent`` entries under ``ou=people``) and the
groups, and started again. What the sync does not manage (the deploy's probe
accounts, the service accounts) stays. Never meant for a production directory.
"""

from __future__ import annotations

from planb.commands import run_command
from planb.config import SiteConfig
from planb.lab.lab import Lab

_SCRIPT = r'''
import base64, os, subprocess, time
suffix = SUFFIX.lower()
subprocess.run(["systemctl", "stop", "slapd"], check=True)
dump = subprocess.run(["slapcat", "-n1", "-o", "ldif-wrap=no"], check=True,
                      capture_output=True, text=True).stdout
keep = []
for block in dump.split("\n\n"):
    block = block.strip()
    if not block:
        continue
    first = block.split("\n", 1)[0]
    dn = (base64.b64decode(first[4:].strip()).decode() if first.startswith("dn::")
          else first[3:].strip()).lower()
    # Agents and groups go; what the sync does not manage (the probe accounts) stays.
    agent = dn.endswith(",ou=people," + suffix) and "objectClass: planbAgent" in block
    if agent or dn.endswith(",ou=groups," + suffix):
        continue
    keep.append(block)
with open("/root/planb-base.ldif", "w") as handle:
    handle.write("\n\n".join(keep) + "\n")
for name in ("data.mdb", "lock.mdb"):
    if os.path.exists("/var/lib/ldap/" + name):
        os.remove("/var/lib/ldap/" + name)
subprocess.run(["slapadd", "-q", "-n1", "-l", "/root/planb-base.ldif"], check=True)
subprocess.run(["chown", "-R", "openldap:openldap", "/var/lib/ldap"], check=True)
subprocess.run(["systemctl", "start", "slapd"], check=True)
for _ in range(50):
    if subprocess.run(["ldapwhoami", "-Q", "-Y", "EXTERNAL", "-H", "ldapi:///"],
                      capture_output=True).returncode == 0:
        break
    time.sleep(0.2)
'''


def empty_fallback(lab: Lab, site: SiteConfig, *, timeout: float = 300) -> None:
    """Drop every agent and group from the lab's fallback directory (PlanbError if not)."""
    script = f"SUFFIX = {site.fallback.ldap_suffix!r}\n{_SCRIPT}"
    run_command(lab.ssh_argv("fallback", ["python3 -"]), input_text=script, timeout=timeout,
                what="emptying the lab fallback directory")
