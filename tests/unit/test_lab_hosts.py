"""planb lab stop/start/status for one host, where no container is needed: refusals and
what status shows for a host powered off with its disk kept."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from planb.cli.main import app
from planb.config import LabConfig, load_config
from planb.lab.lab import Lab
from planb.lab.site import write_lab_site
from planb.lab.topology import build_topology

runner = CliRunner()


def lab_site(tmp_path: Path) -> tuple[Path, Lab]:
    lab = LabConfig(subnet="10.77.9.0/24", bridge="planb9")
    config = write_lab_site(tmp_path, build_topology(lab.subnet, lab.bridge),
                            tmp_path / "key", lab)
    return config, Lab(load_config(config))


def test_stop_and_start_refuse_when_the_lab_is_not_up_or_the_host_is_unknown(
        tmp_path: Path) -> None:
    config, lab = lab_site(tmp_path)
    for verb in ("stop", "start"):
        down = runner.invoke(app, ["-c", str(config), "lab", verb, "primary"])
        assert down.exit_code == 1 and "the lab is not up" in down.output
    lab.dir.mkdir(parents=True)
    lab._record(lab.topology())  # as 'up' records it
    unknown = runner.invoke(app, ["-c", str(config), "lab", "stop", "primery"])
    assert unknown.exit_code == 2
    assert "primery" in unknown.output and "primary, fallback" in unknown.output


def test_status_shows_a_powered_off_host_apart_from_a_missing_one(tmp_path: Path) -> None:
    config, lab = lab_site(tmp_path)
    lab.dir.mkdir(parents=True)
    lab._record(lab.topology())
    paths = lab.host_paths("primary")
    paths.upper.mkdir(parents=True)
    paths.stopped_marker.write_text("off\n")
    shown = runner.invoke(app, ["-c", str(config), "lab", "status", "--json"])
    assert shown.exit_code == 0, shown.output
    rows = {h["name"]: h for h in json.loads(shown.stdout)}
    assert rows["primary"]["process"] == "stopped"
    assert rows["primary"]["system"] == "powered off (disk kept)"
    assert rows["fallback"]["process"] == "stopped" and rows["fallback"]["system"] == "stopped"
