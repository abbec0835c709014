"""Synapse's workers with Redis on the HA lab (issue 14: fallback.synapse.workers).

The HA lab (tests/integration/ha_lab.py) deploys with ``fallback.synapse.workers:
activation``. Here, on the real hosts: every worker is up and routed and the events
stream is written by both event persisters (rooms sharded between them); a worker
killed with SIGKILL is restarted by systemd and answers again; Redis stopped is named
by ``planb verify`` while the client API still answers; and going back to ``none``
stops, disables and removes every worker, puts the monolith's nginx site back and
stops Redis, a second deploy changing nothing (the HA lab's own two deploys show the same
with the preset). The module leaves the lab with the preset, as it found it.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from planb.config import SiteConfig, load_config
from planb.messaging.admin_token import read_token
from planb.provisioning.deploy import run_deploy
from planb.provisioning.results import PlaybookResult
from planb.verify.endpoints import https_request
from planb.verify.registry import run_checks
from tests.integration.conftest import LabSession
from tests.integration.lab_state import on

pytestmark = pytest.mark.lab

HOST = "fallback"
PRESET = ("client_reader", "media", "persister1", "persister2", "sync_incremental",
          "sync_initial")
WORKER_CHECKS = ["synapse.workers", "synapse.workers_routed", "synapse.redis"]
#: What a preset switch touches: Redis, Synapse's configuration and services (workers
#: included), nginx; on the fallback host only (a whole deploy takes minutes more).
SWITCH_TAGS = ("redis", "synapse_config", "synapse_service", "nginx")


@pytest.fixture(scope="module")
def lab(ha_lab: LabSession) -> Iterator[LabSession]:
    """The HA lab with its workers; put back to the preset and checked at the end."""
    assert ha_lab.site.fallback.synapse.workers == "activation", (
        "the HA lab must deploy with fallback.synapse.workers: activation")
    yield ha_lab
    on(ha_lab, HOST, "systemctl start redis-server")
    if _preset(ha_lab.site) != "activation":
        _switch(ha_lab, "activation", runs=1)
    assert _wait_checks(ha_lab.site, WORKER_CHECKS).ok


def _preset(site: SiteConfig) -> str:
    return load_config(site.source).fallback.synapse.workers


def _switch(session: LabSession, preset: str, runs: int = 2) -> list[int]:
    """planb.yml's preset set to ``preset`` and deployed ``runs`` times: their changes."""
    path = Path(session.site.source)
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"(?m)^(    workers: )\S+$", rf"\g<1>{preset}", text),
                    encoding="utf-8")
    session.site = load_config(path)
    assert session.site.fallback.synapse.workers == preset
    changed = []
    for _ in range(runs):
        result = run_deploy(session.site, tags=SWITCH_TAGS, limit=HOST)
        assert result.ok, result.failures
        changed.append(result.changed_total)
    return changed


def _changed_tasks(result: PlaybookResult, roles: tuple[str, ...] = ("redis", "synapse",
                                                                       "nginx")) -> list[str]:
    """The tasks of ``roles`` that reported a change in the run (its job events)."""
    changed = []
    for path in sorted((result.artifacts_dir / "job_events").glob("*.json")):
        event = json.loads(path.read_text(encoding="utf-8"))
        data = event.get("event_data", {})
        if (event.get("event") == "runner_on_ok" and data.get("role") in roles
                and data.get("res", {}).get("changed")):
            changed.append(f"{data['role']}: {data.get('task')}")
    return changed


def _wait_checks(site: SiteConfig, names: list[str], timeout: float = 120):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        report = run_checks(site, names)
        if report.ok or time.monotonic() > deadline:
            return report
        time.sleep(2)


def _units(session: LabSession) -> dict[str, str]:
    """Each synapse-worker@ unit loaded on the host and its active state."""
    out = on(session, HOST, "systemctl list-units --all --plain --no-legend "
                            "'synapse-worker@*' | awk '{print $1, $3}'").stdout
    return {line.split()[0].removeprefix("synapse-worker@").removesuffix(".service"):
            line.split()[1] for line in out.splitlines() if line.strip()}


def test_every_worker_is_up_routed_and_both_persisters_write(lab: LabSession) -> None:
    # The HA lab deployed the site twice with the preset: its second run changed nothing
    # in the roles the preset touches.
    if lab.second_deploy is not lab.first_deploy and lab.second_deploy is not None:
        assert _changed_tasks(lab.second_deploy) == []
    report = _wait_checks(lab.site, [*WORKER_CHECKS, "ports", "matrix.client_api"])
    assert report.ok, report.summary()
    assert _units(lab) == dict.fromkeys(PRESET, "active")
    routed = next(r for r in report.results if r.name == "synapse.workers_routed").message
    for worker in ("sync_initial", "sync_incremental", "client_reader", "media"):
        assert f"-> {worker}" in routed, routed
    # Workers, Redis and the replication listener: on the loopback only.
    sockets = on(lab, HOST, "ss -Hltn").stdout
    for port in (6379, 8300, 8301, 8302, 8311, 8312, 8313, 8321):
        bound = re.findall(rf"(\S+):{port}\s", sockets)
        assert bound and set(bound) <= {"127.0.0.1"}, (port, bound)
    # Rooms made through the proxy: their events are persisted by both persisters
    # (Synapse shards the events stream by room).
    token = read_token(lab.site)
    rooms = []
    for n in range(8):
        answer = https_request(lab.site, _address(lab), "POST",
                               "/_matrix/client/v3/createRoom",
                               {"name": f"planb workers test {n}", "preset": "private_chat"},
                               token=token)
        assert answer.status == 200, answer.text
        rooms.append(answer.body["room_id"])
    try:
        listed = ",".join(f"'{r}'" for r in rooms)
        writers = on(lab, HOST, "runuser -u postgres -- psql -d synapse -tAc " + shlex.quote(
            f"SELECT DISTINCT instance_name FROM events WHERE room_id IN ({listed})")).stdout
        assert set(writers.split()) == {"persister1", "persister2"}, writers
    finally:
        _delete_rooms(lab, rooms)


def _address(session: LabSession) -> str:
    return next(h.address for h in session.topology.hosts if h.name == HOST)


def _delete_rooms(session: LabSession, rooms: list[str]) -> None:
    """Delete the test's rooms with the admin API on the host's loopback."""
    script = (
        "import sys, urllib.parse, urllib.request\n"
        "token = open(sys.argv[1]).read().strip()\n"
        "for room in sys.argv[2:]:\n"
        "    req = urllib.request.Request('http://127.0.0.1:8008/_synapse/admin/v2/rooms/'\n"
        "        + urllib.parse.quote(room), method='DELETE', data=b'{\"purge\": true}',\n"
        "        headers={'Authorization': 'Bearer ' + token})\n"
        "    urllib.request.urlopen(req, timeout=30).read()\n")
    token_path = "/root/planb-workers-test-token"
    # The token goes through SSH's stdin, never a command line.
    subprocess.run(session.lab.ssh_argv(HOST, ["sh", "-c", f"umask 077; cat > {token_path}"]),
                   input=read_token(session.site), text=True, check=True, timeout=60,
                   capture_output=True)
    try:
        done = on(session, HOST, "python3 -c " + shlex.quote(script) + f" {token_path} "
            + " ".join(shlex.quote(r) for r in rooms))
        assert done.returncode == 0, done.stderr[-500:]
    finally:
        on(session, HOST, f"rm -f {token_path}")


def test_a_worker_killed_with_sigkill_is_restarted(lab: LabSession) -> None:
    unit = "synapse-worker@sync_initial"

    def show(prop: str) -> str:
        return on(lab, HOST, f"systemctl show -p {prop} --value {unit}").stdout.strip()

    pid, restarts = show("MainPID"), int(show("NRestarts"))
    assert pid != "0"
    start = time.monotonic()
    on(lab, HOST, f"kill -KILL {pid}")
    deadline = start + 90
    while time.monotonic() < deadline:
        if show("MainPID") not in ("0", pid) and show("ActiveState") == "active":
            break
        time.sleep(0.5)
    active = time.monotonic() - start
    assert int(show("NRestarts")) == restarts + 1
    report = _wait_checks(lab.site, ["synapse.workers", "synapse.workers_routed"])
    assert report.ok, report.summary()
    print(f"{unit} active again {active:.1f} s after SIGKILL (systemd, Type=notify: "
          f"Synapse started), healthy and routed per verify {time.monotonic() - start:.1f} s")


def test_redis_down_is_named_by_verify(lab: LabSession) -> None:
    try:
        on(lab, HOST, "systemctl stop redis-server")
        report = run_checks(lab.site, ["synapse.redis", "matrix.client_api"])
        results = {r.name: r for r in report.results}
        assert results["synapse.redis"].status == "fail"
        assert "Redis at 127.0.0.1:6379 does not answer" in results["synapse.redis"].message
        # Synapse's main process keeps answering clients (replication stalls, as its docs
        # say; the workers reconnect when Redis is back).
        assert results["matrix.client_api"].status == "pass", results["matrix.client_api"]
    finally:
        on(lab, HOST, "systemctl start redis-server")
    report = _wait_checks(lab.site, WORKER_CHECKS)
    assert report.ok, report.summary()


def test_back_to_none_removes_the_workers_then_the_preset_returns(lab: LabSession) -> None:
    changed = _switch(lab, "none")
    assert changed[1] == 0, f"the second deploy with none changed {changed[1]} tasks"
    # Stopped (systemd may still list a stopped instance until it forgets it), not
    # enabled, their unit file gone (below).
    assert set(_units(lab).values()) <= {"inactive"}, _units(lab)
    enabled = on(lab, HOST, "ls /etc/systemd/system/multi-user.target.wants/ "
                            "| grep -c synapse-worker@").stdout.strip()
    assert enabled == "0", enabled
    gone = on(lab, HOST, "ls /etc/synapse/workers /etc/synapse/workers.json "
                         "/etc/systemd/system/synapse-worker@.service "
                         "/etc/nginx/conf.d/planb-00-workers.conf "
                         "/etc/nginx/snippets/planb-workers.conf 2>&1 | grep -c 'No such'")
    assert gone.stdout.strip() == "5", gone.stdout
    site_conf = on(lab, HOST, "cat /etc/nginx/conf.d/planb-matrix.conf").stdout
    assert "planb-workers" not in site_conf
    redis = on(lab, HOST, "systemctl is-active redis-server; systemctl is-enabled redis-server")
    assert redis.stdout.split() == ["inactive", "disabled"], redis.stdout
    homeserver = on(lab, HOST, "cat /etc/synapse/homeserver.yaml").stdout
    assert "instance_map" not in homeserver and "redis" not in homeserver
    report = _wait_checks(lab.site, [*WORKER_CHECKS, "matrix.client_api", "service.synapse"])
    assert {r.name: r.status for r in report.results} == {
        "synapse.workers": "skip", "synapse.workers_routed": "skip", "synapse.redis": "skip",
        "matrix.client_api": "pass", "service.synapse": "pass"}
    # Back to the preset (its second deploy changing nothing: the HA lab's own two).
    back = _switch(lab, "activation", runs=1)
    assert back[0] > 0
    assert _units(lab) == dict.fromkeys(PRESET, "active")
    report = _wait_checks(lab.site, WORKER_CHECKS)
    assert report.ok, report.summary()
    print("workers -> none -> workers: tasks changed", json.dumps(changed + back))
