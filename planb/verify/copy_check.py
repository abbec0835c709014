"""Check: the fallback messaging host keeps a current copy of the controller's state.

Without a passphrase set (``planb controller passphrase``) the copy holds the public
part only: the check is skipped and says so. Once one is set, the site relies on the
copy to rebuild its controller, so the host must keep one that carries the encrypted
secrets and is the controller's state now (same digests as ``planb controller status``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from planb.statecopy.archive import MANIFEST, digests
from planb.statecopy.crypto import load_copy_key
from planb.statecopy.push import REMOTE_COPY
from planb.statecopy.remote import compare
from planb.verify.model import CheckFailed, CheckSkipped

if TYPE_CHECKING:
    from planb.inventory import InventoryHost
    from planb.verify.registry import CheckContext


def controller_copy(ctx: CheckContext, host: InventoryHost) -> str:
    """Pass when the host's copy is the state now, with its secrets encrypted."""
    passphrase_set = load_copy_key(ctx.site.state_dir) is not None
    cmd = ctx.remote(host).run(f"test -f {REMOTE_COPY} || exit 3; "
                               f"tar -xOf {REMOTE_COPY} {MANIFEST}")
    if cmd.rc not in (0, 3):
        raise RuntimeError(f"cannot read {REMOTE_COPY}: {cmd.stderr.strip()[-200:]}")
    manifest = json.loads(cmd.stdout) if cmd.rc == 0 else None
    status = compare(host.name, manifest, digests(ctx.site), passphrase_set)
    if not passphrase_set:
        raise CheckSkipped("no passphrase set ('planb controller passphrase'): the copy "
                           "of the controller's state holds the public part only, a new "
                           "controller could not get the site's secrets back"
                           + ("" if status.present else "; and this host keeps no copy"))
    if not status.current or not status.encrypted:
        raise CheckFailed(f"{REMOTE_COPY}: {status.detail}")
    return f"{REMOTE_COPY} made {status.created_at}: {status.detail}, secrets encrypted"
