"""Real Ansible runs through planb's runner, on this machine, touching only tmp_path.

Hosts are ``localhost`` with ``ansible_connection: local``. Playbooks are written into
tmp_path, except for the CLI tests, which run the real site.yml with every path of the
common role pointed into tmp_path (or failing in its first validation task).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from planb.cli.main import app
from planb.config import load_config
from planb.errors import EXIT_INTERRUPTED, EXIT_PLAYBOOK_FAILED, Interrupted, PlaybookFailed
from planb.provisioning import (
    PlaybookResult,
    ProgressEvent,
    deploy,
    new_run_dir,
    run_deploy,
    run_playbook,
)

LOCAL_HOST = {"ansible_connection": "local",
              "ansible_python_interpreter": "{{ ansible_playbook_python }}"}


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep Ansible's and planb's own state inside tmp_path."""
    monkeypatch.setenv("ANSIBLE_HOME", str(tmp_path / "ansible-home"))
    monkeypatch.setenv("ANSIBLE_LOCAL_TEMP", str(tmp_path / "ansible-tmp"))
    monkeypatch.setenv("ANSIBLE_REMOTE_TEMP", str(tmp_path / "ansible-remote-tmp"))
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "planb-home"))
    monkeypatch.delenv("PLANB_CONFIG", raising=False)


def write_inventory(path: Path, **host_vars: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    inventory = {"all": {"hosts": {"localhost": {**LOCAL_HOST, **host_vars}}}}
    path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
    return path


def write_playbook(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_successful_run_then_rerun_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out" / "motd"
    playbook = write_playbook(tmp_path / "converge.yml", f"""\
        - name: Converge
          hosts: all
          gather_facts: false
          tasks:
            - name: Create the folder
              ansible.builtin.file:
                path: {target.parent}
                state: directory
                mode: "0755"
            - name: Write the file
              ansible.builtin.copy:
                content: "hello {{{{ planb_site }}}}\\n"
                dest: {target}
                mode: "0644"
        """)
    inventory = write_inventory(tmp_path / "inventory" / "hosts.yml")
    seen: list[ProgressEvent] = []

    def run() -> PlaybookResult:
        return run_playbook(playbook, inventory, run_dir=new_run_dir(tmp_path / "state", playbook),
                            extravars={"planb_site": "demo"}, on_event=seen.append)

    first = run()
    assert first.ok and first.status == "successful" and first.rc == 0
    assert first.hosts["localhost"].changed == 2
    assert target.read_text(encoding="utf-8") == "hello demo\n"
    assert {p.task for p in seen} >= {"Create the folder", "Write the file"}
    assert any(p.play == "Converge" for p in seen)

    second = run()
    assert second.ok and second.changed_total == 0
    artifacts = second.artifacts_dir
    assert (artifacts / "stdout").is_file() and any((artifacts / "job_events").iterdir())
    recorded = json.loads((artifacts.parent.parent / "result.json").read_text(encoding="utf-8"))
    assert recorded["changed_total"] == 0 and recorded["ok"] is True


def test_failing_task_raises_playbook_failed_naming_host_and_task(tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path / "broken.yml", """\
        - name: Broken play
          hosts: all
          gather_facts: false
          tasks:
            - name: Step that works
              ansible.builtin.debug:
                msg: fine
            - name: Step that breaks
              ansible.builtin.command: /bin/false
              changed_when: false
        """)
    site_dir = tmp_path / "site"
    runner = CliRunner()
    assert runner.invoke(app, ["init", str(site_dir), "--site", "demo"]).exit_code == 0
    write_inventory(site_dir / "inventories" / "demo" / "hosts.yml")
    site = load_config(site_dir / "planb.yml")

    with pytest.raises(PlaybookFailed) as caught:
        deploy(site, playbook=playbook)
    assert caught.value.exit_code == EXIT_PLAYBOOK_FAILED
    message = str(caught.value)
    assert "localhost" in message and "Step that breaks" in message
    assert "non-zero return code" in message
    assert caught.value.hint and str(site.state_dir / "runs") in caught.value.hint

    result = run_deploy(site, playbook=playbook)
    assert result.status == "failed" and not result.ok
    assert [(f.host, f.task, f.play) for f in result.failures] == [
        ("localhost", "Step that breaks", "Broken play")]
    assert result.hosts["localhost"].failed == 1 and result.hosts["localhost"].ok == 1


def test_cancel_stops_ansible_and_raises_interrupted(tmp_path: Path) -> None:
    marker = "37.0815"  # a sleep nobody else runs, to find leftovers
    playbook = write_playbook(tmp_path / "slow.yml", f"""\
        - name: Slow play
          hosts: all
          gather_facts: false
          tasks:
            - name: Wait
              ansible.builtin.command: sleep {marker}
        """)
    site_dir = tmp_path / "site"
    assert CliRunner().invoke(app, ["init", str(site_dir), "--site", "demo"]).exit_code == 0
    write_inventory(site_dir / "inventories" / "demo" / "hosts.yml")
    site = load_config(site_dir / "planb.yml")
    started: list[float] = []

    def on_event(progress: ProgressEvent) -> None:
        if progress.task == "Wait" and not started:
            started.append(time.monotonic())

    def cancel() -> bool:
        return bool(started) and time.monotonic() - started[0] > 1.0

    begin = time.monotonic()
    with pytest.raises(Interrupted) as caught:
        run_deploy(site, playbook=playbook, on_event=on_event, cancel=cancel)
    assert caught.value.exit_code == EXIT_INTERRUPTED
    assert time.monotonic() - begin < 30
    assert not _processes_running(f"sleep {marker}")


def test_ctrl_c_cancels_the_run_cleanly(tmp_path: Path) -> None:
    marker = "38.0815"
    playbook = write_playbook(tmp_path / "slow.yml", f"""\
        - name: Slow play
          hosts: all
          gather_facts: false
          tasks:
            - name: Wait
              ansible.builtin.command: sleep {marker}
        """)
    inventory = write_inventory(tmp_path / "hosts.yml")
    script = textwrap.dedent(f"""\
        import sys
        from pathlib import Path
        from planb.provisioning import run_playbook
        def show(p):
            if p.task == "Wait":
                print("waiting", flush=True)
        r = run_playbook(Path({str(playbook)!r}), Path({str(inventory)!r}),
                         run_dir=Path({str(tmp_path / 'run')!r}), on_event=show)
        print("status", r.status, flush=True)
        """)
    # A Ctrl-C as at a terminal, even when the tests run as a background job (which
    # starts with SIGINT ignored, and a child inherits that).
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             env=os.environ.copy(),
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "waiting"
        time.sleep(0.5)
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert "status canceled" in out
    assert child.returncode == 0
    assert not _processes_running(f"sleep {marker}")


def _processes_running(command_line: str) -> bool:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if command_line in cmdline and "python" not in cmdline:
            return True
    return False


# --- through the CLI, with the real site.yml -------------------------------------------


@pytest.fixture
def cli_site(tmp_path: Path) -> Path:
    """A site made by 'planb init' whose inventory is this machine, every path in tmp_path."""
    site_dir = tmp_path / "site"
    done = CliRunner().invoke(app, ["init", str(site_dir), "--site", "demo"])
    assert done.exit_code == 0, done.output
    # This machine is the "host": no offline bundle (nor apt changes) for it.
    config = site_dir / "planb.yml"
    config.write_text(config.read_text().replace("offline: true", "offline: false"))
    root = tmp_path / "root"
    root.mkdir()
    write_inventory(
        site_dir / "inventories" / "demo" / "hosts.yml",
        common_manage_hostname=False,
        common_base_packages=["python3"],
        common_localtime_path=str(root / "localtime"),
        common_timezone_file=str(root / "timezone"),
        common_facts_dir=str(root / "facts.d"),
    )
    return site_dir / "planb.yml"


def test_cli_failing_play_exits_3_naming_host_and_task(cli_site: Path) -> None:
    hosts = cli_site.parent / "inventories" / "demo" / "hosts.yml"
    inventory = yaml.safe_load(hosts.read_text(encoding="utf-8"))
    inventory["all"]["hosts"]["localhost"]["common_timezone"] = "Not a zone"
    hosts.write_text(yaml.safe_dump(inventory), encoding="utf-8")

    done = CliRunner().invoke(app, ["--config", str(cli_site), "deploy"])
    assert done.exit_code == EXIT_PLAYBOOK_FAILED, done.output
    assert "localhost" in done.stderr
    assert "Check common_timezone" in done.stderr
    assert "Not a zone" in done.stderr
    assert not (cli_site.parent.parent / "root" / "localtime").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the common role sets root ownership")
def test_cli_deploy_twice_second_run_changes_nothing(cli_site: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["--config", str(cli_site), "deploy"])
    assert first.exit_code == 0, first.output
    assert "localhost" in first.stdout and "deploy successful" in first.stdout

    second = runner.invoke(app, ["--config", str(cli_site), "deploy", "--json"])
    assert second.exit_code == 0, second.output
    data = json.loads(second.stdout)
    assert data["ok"] is True and data["changed_total"] == 0
    assert data["hosts"]["localhost"]["changed"] == 0

    root = cli_site.parent.parent / "root"
    assert (root / "localtime").resolve() == Path("/usr/share/zoneinfo/Europe/Paris").resolve()
    facts = json.loads((root / "facts.d" / "planb.fact").read_text(encoding="utf-8"))
    assert facts["site"] == "demo" and facts["managed_by"] == "planb"


def test_cli_verbose_shows_ansibles_output_and_check_changes_nothing(cli_site: Path) -> None:
    done = CliRunner().invoke(app, ["-v", "--config", str(cli_site), "deploy", "--check",
                                    "--tags", "common_timezone"])
    assert done.exit_code == 0, done.output
    assert "TASK [common : Point" in done.stderr
    assert "PLAY RECAP" in done.stderr
    assert "check mode" in done.stdout
    assert not (cli_site.parent.parent / "root" / "localtime").exists()


def test_each_run_has_its_own_ssh_master_connections(tmp_path: Path) -> None:
    """A master connection an earlier run left open would let the next run skip the SSH
    host key check: each run gets a fresh private folder for them, removed at its end."""
    seen = tmp_path / "control-dir"
    playbook = write_playbook(tmp_path / "cp.yml", f"""\
        - name: Where the masters go
          hosts: all
          gather_facts: false
          tasks:
            - name: Record it
              ansible.builtin.copy:
                content: "{{{{ lookup('ansible.builtin.env', 'ANSIBLE_SSH_CONTROL_PATH_DIR') }}}}"
                dest: {seen}
                mode: "0644"
        """)
    inventory = write_inventory(tmp_path / "inventory" / "hosts.yml")
    folders = []
    for _ in range(2):
        result = run_playbook(playbook, inventory,
                              run_dir=new_run_dir(tmp_path / "state", playbook))
        assert result.ok, result
        folders.append(Path(seen.read_text(encoding="utf-8")))
    assert folders[0] != folders[1]
    assert all(f.name.startswith("planb-cp-") and not f.exists() for f in folders)
