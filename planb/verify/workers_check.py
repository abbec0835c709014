"""Checks: Synapse's workers and their Redis (planb.yml ``fallback.synapse.workers``).

The synapse role writes a manifest on the messaging host (:data:`MANIFEST`: the preset,
the address the workers listen on, Redis, and each worker's port, routes and probe
path). Three checks read it:

- ``synapse.workers`` (messaging hosts): each worker's unit ``synapse-worker@<name>``
  is active and enabled and answers ``/health`` on its port;
- ``synapse.workers_routed`` (proxy hosts): for each routed worker, a request to its
  probe path through nginx (from the proxy's loopback, with a random
  ``X-Planb-Probe`` header) is logged by nginx with the upstream that answered
  (:data:`PROBE_LOG`), and that upstream is this worker's port; nothing about the
  upstream is ever sent back to clients;
- ``synapse.redis`` (messaging hosts): Redis answers ``PING``; the failure names Redis.

All three are skipped when the site runs no workers (``none``).
"""

from __future__ import annotations

import json
import secrets
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from planb.inventory import FALLBACK_MESSAGING, load_hosts
from planb.verify.model import CheckFailed, CheckSkipped

if TYPE_CHECKING:
    from planb.inventory import InventoryHost
    from planb.verify.registry import CheckContext

#: Written by the synapse role (synapse_workers_manifest).
MANIFEST = "/etc/synapse/workers.json"
#: Written by nginx for the probe requests only (nginx role: nginx_workers_log).
PROBE_LOG = "/var/log/nginx/planb-workers.log"
PROBE_HEADER = "X-Planb-Probe"
#: Sends one GET through nginx on the host's loopback (SNI and Host: the public name)
#: with the probe header; prints the status. argv: public name, path, probe tag.
_PROBE_SCRIPT = """
import http.client, socket, ssl, sys
name, path, tag = sys.argv[1:4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
conn = http.client.HTTPSConnection(name, 443, timeout=10, context=ctx)
conn.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 443), 10),
                            server_hostname=name)
conn.request("GET", path, headers={"X-Planb-Probe": tag})
print(conn.getresponse().status)
"""


@dataclass(frozen=True)
class Worker:
    """One worker of the manifest."""

    name: str
    port: int
    routes: tuple[str, ...]
    probe: str | None


@dataclass(frozen=True)
class Manifest:
    """The synapse role's manifest of the workers."""

    preset: str
    address: str
    redis_host: str
    redis_port: int
    workers: tuple[Worker, ...]


def parse_manifest(text: str) -> Manifest:
    """The manifest's JSON; :class:`CheckFailed` when it is not one."""
    try:
        data: dict[str, Any] = json.loads(text)
        workers = tuple(
            Worker(name, int(w["port"]), tuple(w.get("routes", ())), w.get("probe"))
            for name, w in sorted(data["workers"].items()))
        return Manifest(str(data["preset"]), str(data["address"]), str(data["redis"]["host"]),
                        int(data["redis"]["port"]), workers)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckFailed(f"{MANIFEST} is not the synapse role's manifest: {exc}") from exc


def _preset(ctx: CheckContext) -> str:
    preset = ctx.site.fallback.synapse.workers
    if preset == "none":
        raise CheckSkipped("no Synapse workers (fallback.synapse.workers is none)")
    return preset


def read_manifest(ctx: CheckContext, host: InventoryHost) -> Manifest:
    """The manifest on ``host``; CheckFailed when it is missing or not the site's preset."""
    preset = _preset(ctx)
    out = ctx.remote(host).run(f"cat {MANIFEST}")
    if out.rc != 0:
        raise CheckFailed(f"fallback.synapse.workers is {preset} but {host.name} has no "
                          f"{MANIFEST}: deploy the site")
    manifest = parse_manifest(out.stdout)
    if manifest.preset != preset:
        raise CheckFailed(f"{host.name} runs the workers of preset {manifest.preset}, "
                          f"planb.yml says {preset}: deploy the site")
    if not manifest.workers:
        raise CheckFailed(f"{MANIFEST} on {host.name} lists no worker")
    return manifest


def workers_up(ctx: CheckContext, host: InventoryHost) -> str:
    """Every worker's unit active and enabled, answering /health on its port."""
    manifest = read_manifest(ctx, host)
    remote = ctx.remote(host)
    problems = []
    for worker in manifest.workers:
        unit = f"synapse-worker@{worker.name}"
        state = remote.run(f"systemctl is-active {shlex.quote(unit)}").stdout.strip()
        enabled = remote.run(f"systemctl is-enabled {shlex.quote(unit)}").stdout.strip()
        url = f"http://{manifest.address}:{worker.port}/health"
        health = remote.run(
            "python3 -c " + shlex.quote(
                "import sys, urllib.request\n"
                "try:\n print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())\n"
                "except Exception as e:\n print(type(e).__name__, e)")
            + " " + shlex.quote(url)).stdout.strip()
        if state != "active":
            problems.append(f"{unit} is {state or 'unknown'}")
        elif enabled != "enabled":
            problems.append(f"{unit} is {enabled or 'not found'} at boot")
        elif health != "OK":
            problems.append(f"{unit} does not answer {url}: {health[:120]}")
    if problems:
        raise CheckFailed("; ".join(problems))
    return (f"preset {manifest.preset}: {len(manifest.workers)} workers active, enabled, "
            f"healthy (" + ", ".join(w.name for w in manifest.workers) + ")")


def _messaging_host(ctx: CheckContext, proxy: InventoryHost) -> InventoryHost:
    if FALLBACK_MESSAGING in proxy.groups:
        return proxy
    messaging = [h for h in load_hosts(ctx.site) if FALLBACK_MESSAGING in h.groups]
    if not messaging:
        raise CheckFailed(f"no host in the inventory group {FALLBACK_MESSAGING}")
    return messaging[0]


def upstream_of(log: str, tag: str) -> tuple[str, str] | None:
    """(upstream address, status) nginx logged for the probe ``tag``, or None."""
    for line in log.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1] == tag:
            return fields[2], fields[3]
    return None


def workers_routed(ctx: CheckContext, host: InventoryHost) -> str:
    """Each routed worker's probe path, sent through nginx, reached that worker."""
    manifest = read_manifest(ctx, _messaging_host(ctx, host))
    remote = ctx.remote(host)
    name = ctx.site.matrix.public_hostname
    sent: list[tuple[Worker, str, str, str]] = []
    for worker in manifest.workers:
        if worker.probe is None:
            continue
        tag = f"planb-verify-{secrets.token_hex(8)}"
        out = remote.run("python3 -c " + " ".join(shlex.quote(a) for a in (
            _PROBE_SCRIPT, name, worker.probe, tag)))
        if out.rc != 0:
            last = (out.stderr.strip().splitlines() or [f"exit {out.rc}"])[-1]
            raise CheckFailed(f"GET {worker.probe} through nginx failed: {last}")
        sent.append((worker, worker.probe, tag, out.stdout.strip()))
    if not sent:
        raise CheckFailed("no worker of the manifest has a route to probe")
    log = remote.run(f"tail -n 2000 {PROBE_LOG}").stdout
    problems, proven = [], []
    for worker, probe, tag, status in sent:
        expected = f"{manifest.address}:{worker.port}"
        seen = upstream_of(log, tag)
        if seen is None:
            problems.append(f"GET {probe} ({status}) not in {PROBE_LOG}: nginx does "
                            "not route the workers' paths")
        elif seen[0] != expected:
            problems.append(f"GET {probe} reached {seen[0]}, not {worker.name} ({expected})")
        else:
            proven.append(f"{probe} -> {worker.name}")
    if problems:
        raise CheckFailed("; ".join(problems))
    return "routed: " + ", ".join(proven)


def redis_answers(ctx: CheckContext, host: InventoryHost) -> str:
    """Redis, the workers' replication bus, answers PING."""
    manifest = read_manifest(ctx, host)
    where = f"{manifest.redis_host}:{manifest.redis_port}"
    out = ctx.remote(host).run(
        f"redis-cli -h {shlex.quote(manifest.redis_host)} -p {manifest.redis_port} ping")
    answer = (out.stdout.strip() or out.stderr.strip() or f"exit {out.rc}").splitlines()[-1]
    if out.rc != 0 or answer != "PONG":
        raise CheckFailed(f"Redis at {where} does not answer ({answer}): Synapse's workers "
                          "get no replication (systemctl status redis-server)")
    return f"Redis at {where} answers PONG"
