"""``planb lab up|stop|start --json`` on a real lab: the result alone on stdout."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from planb.cli.main import app
from tests.integration.conftest import LabSession

pytestmark = pytest.mark.lab


def test_lab_up_json_is_the_result_alone(lab_session: LabSession) -> None:
    """Up again (running hosts are left as they are) and read the lab from the JSON."""
    result = CliRunner().invoke(app, ["--config", str(lab_session.site.source), "lab", "up",
                                      "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["created"] is False and data["site"] == str(lab_session.site.source)
    hosts = {host["name"]: host for host in data["hosts"]}
    assert set(hosts) == {host.name for host in lab_session.topology.hosts}
    for host in lab_session.topology.hosts:
        assert hosts[host.name]["address"] == host.address
        assert hosts[host.name]["system"] in ("running", "degraded")


def test_lab_stop_and_start_json(lab_session: LabSession) -> None:
    config = ["--config", str(lab_session.site.source), "lab"]
    stopped = CliRunner().invoke(app, [*config, "stop", "primary", "--json"])
    try:
        assert stopped.exit_code == 0, stopped.output
        assert json.loads(stopped.stdout) == {"host": "primary", "stopped": True}
    finally:
        started = CliRunner().invoke(app, [*config, "start", "primary", "--json"])
    assert started.exit_code == 0, started.output
    data = json.loads(started.stdout)
    assert data["host"] == "primary" and data["system"] in ("running", "degraded")
