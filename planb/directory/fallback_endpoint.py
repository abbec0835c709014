"""How the sync reaches the fallback LDAP: the directory host from the site's inventory.

The address is the first host of ``fallback_directory`` as Ansible resolves it (so an
``ansible_host`` set in ``host_vars/`` or ``group_vars/`` is honoured, exactly as the
playbooks see it), and the sync account's password is ``vault_ldap_sync_password``
from the vault (:func:`planb.inventory.vault_value`), never logged.
"""

from __future__ import annotations

from planb.config import SiteConfig
from planb.directory.ldap_conn import LdapEndpoint
from planb.inventory import FALLBACK_DIRECTORY, InventoryHost, first_host, vault_value

SYNC_PASSWORD_KEY = "vault_ldap_sync_password"


def fallback_endpoint(site: SiteConfig, hosts: list[InventoryHost] | None = None
                      ) -> LdapEndpoint:
    """How the sync binds to the fallback LDAP: ldaps to the directory host, as
    ``cn=planb-sync,ou=services,<suffix>``, trusting the site's CA
    (``<state_dir>/pki/ca.crt``, made by the pki role)."""
    host = first_host(site, FALLBACK_DIRECTORY, hosts)
    return LdapEndpoint(
        url=f"ldaps://{host.address}",
        bind_dn=f"cn=planb-sync,ou=services,{site.fallback.ldap_suffix}",
        password=vault_value(site.inventory_dir, SYNC_PASSWORD_KEY),
        ca_file=site.state_dir / "pki" / "ca.crt",
        label="the fallback directory",
    )
