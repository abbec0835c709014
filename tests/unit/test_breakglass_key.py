"""'planb keys breakglass' and planb's own wheel for the hosts."""

from __future__ import annotations

import base64
import hashlib
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planb.bundle.selfwheel import build_self_wheel
from planb.cli.main import app

runner = CliRunner()


def test_keys_breakglass_writes_a_pair_keeps_the_public_part_and_refuses_to_overwrite(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLANB_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["init", "site"]).exit_code == 0
    config, state = str(tmp_path / "site" / "planb.yml"), tmp_path / "site" / ".planb"
    out = tmp_path / "safe"
    done = runner.invoke(app, ["--config", config, "keys", "breakglass", "--out", str(out)])
    assert done.exit_code == 0, done.output
    private, public = out / "planb-breakglass", out / "planb-breakglass.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    kept = state / "keys" / "breakglass.pub"
    assert kept.read_text() == public.read_text()
    assert public.read_text().startswith("ssh-ed25519 ")
    if shutil.which("ssh-keygen"):  # the fingerprint printed is ssh-keygen's
        listed = subprocess.run(["ssh-keygen", "-lf", str(public)], capture_output=True,
                                text=True, check=True).stdout.split()[1]
        assert f"fingerprint {listed}" in done.output
        derived = subprocess.run(["ssh-keygen", "-yf", str(private)], capture_output=True,
                                 text=True, check=True).stdout.split()[:2]
        assert derived == public.read_text().split()[:2]
    again = runner.invoke(app, ["--config", config, "keys", "breakglass", "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output
    assert kept.read_text() == public.read_text()
    forced = runner.invoke(app, ["--config", config, "keys", "breakglass", "--out", str(out),
                                 "--force"])
    assert forced.exit_code == 0 and kept.read_text() == public.read_text()
    assert kept.read_text().split()[1] not in done.output  # a new key
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_planb_wheel_is_reproducible_and_complete(tmp_path: Path) -> None:
    first = build_self_wheel(tmp_path / "a")
    time.sleep(2.1)  # zip times have a 2 s resolution: a clock in the wheel would show
    second = build_self_wheel(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as wheel:
        names = set(wheel.namelist())
        assert "planb/breakglass/cli.py" in names
        assert "planb/data/templates/announcement.fr.md.j2" in names
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
        entry = wheel.read("planb-0.1.0.dist-info/entry_points.txt").decode()
        assert "planb-breakglass = planb.breakglass.cli:main" in entry
        for line in wheel.read("planb-0.1.0.dist-info/RECORD").decode().splitlines():
            name, digest, size = line.split(",")
            if digest:
                data = wheel.read(name)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                assert digest == "sha256=" + expected.decode() and int(size) == len(data)


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs a system python3")
def test_planb_wheel_installs_and_runs_the_command(tmp_path: Path) -> None:
    """pip accepts the wheel and its console script runs (deps from this venv's path)."""
    wheel = build_self_wheel(tmp_path / "w")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--target", str(target), str(wheel)], check=True)
    assert (target / "bin" / "planb-breakglass").exists()
    env = {"PYTHONPATH": f"{target}:{':'.join(p for p in sys.path if 'site-packages' in p)}",
           "PATH": "/usr/bin:/bin"}
    shown = subprocess.run([sys.executable, "-I", "-c",
                            "import sys; sys.path[:0] = sys.argv[1].split(':'); "
                            "import planb, planb.breakglass.cli as c; print(planb.__file__); "
                            "c.main(['help'])", env["PYTHONPATH"]],
                           capture_output=True, text=True, check=True)
    assert shown.stdout.startswith(str(target)) and "planb-breakglass" in shown.stdout
