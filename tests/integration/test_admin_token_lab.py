"""planb renews its Synapse admin token on the host when Synapse refuses the stored one.

Local passwords are off, so no token comes from a password login; tokens that are not
refreshed expire. The stored token is revoked here (logged out, as an expiry leaves
it: Synapse answers 401), then the sync's admin API client must renew it over SSH
with the host's command and go on, storing the new token 0600 on the controller.
"""

from __future__ import annotations

import stat

import pytest

from planb.messaging.admin_api import AdminApi, MatrixApiError, quote
from planb.messaging.admin_token import read_token, token_file
from planb.messaging.sync_target import target_for
from planb.messaging.tunnel import admin_tunnel
from tests.integration.conftest import LabSession

pytestmark = pytest.mark.lab


def test_a_refused_admin_token_is_renewed_on_the_host(standby_lab: LabSession) -> None:
    site = standby_lab.site
    target = target_for(site)
    assert target is not None
    old = read_token(site)
    me = f"/_synapse/admin/v2/users/{quote(target.admin_id)}"
    with admin_tunnel(target.ssh) as url:
        api = AdminApi(url, old, site.matrix.server_name)
        try:
            api.request("POST", "/_matrix/client/v3/logout", {}, what="revoke the token")
            with pytest.raises(MatrixApiError) as refused:
                api.request("GET", me, what="use the revoked token")
        finally:
            api.close()
    assert refused.value.status == 401

    with target.api() as renewed:
        assert renewed.request("GET", me, what="read the admin account")["admin"] is True

    new = read_token(site)
    assert new != old
    assert stat.S_IMODE(token_file(site).stat().st_mode) == 0o600
    assert old not in token_file(site).read_text(encoding="utf-8")
