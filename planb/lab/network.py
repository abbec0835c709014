"""The lab's private bridge: this machine's side of the lab network.

The bridge carries only the lab hosts' addresses. planb never enables forwarding
or NAT for it, so lab hosts have no route beyond this machine.
"""

from __future__ import annotations

import json
import logging

from planb.errors import LabError
from planb.lab.system import run
from planb.lab.topology import Topology

log = logging.getLogger(__name__)


def link_names() -> set[str]:
    """Names of all network links on this machine."""
    out = run(["ip", "-j", "link", "show"]).stdout
    return {link["ifname"] for link in json.loads(out or "[]")}


def _addresses(name: str) -> set[str]:
    out = run(["ip", "-j", "-4", "addr", "show", "dev", name]).stdout
    return {
        f"{a['local']}/{a['prefixlen']}"
        for link in json.loads(out or "[]")
        for a in link.get("addr_info", [])
    }


def ensure_bridge(topology: Topology) -> None:
    """Create the bridge with the gateway address, or check the existing one matches."""
    wanted = f"{topology.gateway}/{topology.prefixlen}"
    if topology.bridge in link_names():
        present = _addresses(topology.bridge)
        if wanted not in present:
            raise LabError(
                f"bridge {topology.bridge} exists with addresses {sorted(present) or 'none'}, "
                f"not {wanted}",
                hint="another lab may be using it: run 'planb lab down' for that site, or "
                "set lab.bridge / lab.subnet in planb.yml",
            )
    else:
        log.info("creating bridge %s (%s)", topology.bridge, wanted)
        run(["ip", "link", "add", topology.bridge, "type", "bridge"])
        run(["ip", "addr", "add", wanted, "dev", topology.bridge])
    run(["ip", "link", "set", topology.bridge, "up"])


def delete_bridge(name: str) -> None:
    """Remove the bridge if it exists."""
    if name in link_names():
        log.info("deleting bridge %s", name)
        run(["ip", "link", "del", name])


def delete_link(name: str) -> None:
    """Remove a leftover link (a veth whose container is gone), if it exists."""
    if name in link_names():
        run(["ip", "link", "del", name], check=False)
