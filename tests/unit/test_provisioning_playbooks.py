"""site.yml and the roles follow the project's playbook conventions, and Ansible parses them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import planb
from planb.provisioning.runner import ansible_env

PLAYBOOKS = planb.PLAYBOOKS_DIR
# The roles checked here. Roles from later issues can be added once they are complete
# (or this can become every folder of playbooks/roles/).
ROLES = [PLAYBOOKS / "roles" / name for name in ("common", "backup")]
# Task keywords that are not modules.
KEYWORDS = {
    "name", "when", "tags", "register", "vars", "loop", "loop_control", "notify", "become",
    "become_user", "changed_when", "failed_when", "ignore_errors", "no_log", "delegate_to",
    "run_once", "block", "rescue", "always", "environment", "check_mode", "until", "retries",
    "delay", "listen", "args", "diff", "throttle", "any_errors_fatal",
}
# Modules whose ``state`` has a default that hides intent.
NEEDS_STATE = {"ansible.builtin.file", "ansible.builtin.apt", "ansible.builtin.service",
               "ansible.builtin.systemd_service", "ansible.builtin.user", "ansible.builtin.group"}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def tasks_in(items: list[dict[str, Any]], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for task in items or []:
        yield where, task
        for section in ("block", "rescue", "always"):
            yield from tasks_in(task.get(section, []), where)


def all_tasks() -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for role in ROLES:
        for folder in ("tasks", "handlers"):
            for path in sorted((role / folder).glob("*.yml")):
                found.extend(tasks_in(load(path), str(path.relative_to(PLAYBOOKS))))
    for play in load(PLAYBOOKS / "site.yml"):
        for section in ("pre_tasks", "tasks", "post_tasks", "handlers"):
            found.extend(tasks_in(play.get(section, []), "site.yml"))
    return found


def module_of(task: dict[str, Any]) -> str | None:
    modules = [k for k in task if k not in KEYWORDS]
    return modules[0] if modules else None


def test_every_play_and_task_is_named() -> None:
    for play in load(PLAYBOOKS / "site.yml"):
        assert play.get("name"), f"site.yml: play for {play.get('hosts')} has no name"
    for where, task in all_tasks():
        assert task.get("name"), f"{where}: task without a name: {task}"


def test_modules_are_fully_qualified_and_state_is_explicit() -> None:
    for where, task in all_tasks():
        module = module_of(task)
        if module is None:  # a block
            continue
        assert module.startswith("ansible.builtin."), f"{where}: {task['name']}: use the FQCN"
        args = task[module] or {}
        # A systemd reload alone (a handler after a drop-in) puts no unit in any state.
        if module in NEEDS_STATE and set(args) != {"daemon_reload"}:
            assert "state" in args, f"{where}: {task['name']}: set state:"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_variables_are_prefixed_and_documented(role: Path) -> None:
    defaults = role / "defaults" / "main.yml"
    assert defaults.is_file(), f"{role.name}: defaults/main.yml documents the variables"
    text = defaults.read_text(encoding="utf-8")
    assert "#" in text, f"{role.name}: defaults/main.yml needs comments"
    for name in load(defaults) or {}:
        assert name.startswith(f"{role.name}_"), f"{role.name}: {name} lacks the role prefix"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_main_only_sequences_and_validates_first(role: Path) -> None:
    main = load(role / "tasks" / "main.yml")
    allowed = {"ansible.builtin.import_tasks", "ansible.builtin.include_tasks"}
    assert all(module_of(t) in allowed for t in main), f"{role.name}: main.yml only includes"
    first = main[0]["ansible.builtin.import_tasks"]
    assert first == "validate.yml", f"{role.name}: validate the variables first"
    validate = load(role / "tasks" / "validate.yml")
    assert module_of(validate[0]) == "ansible.builtin.assert"
    assert all("fail_msg" in t["ansible.builtin.assert"] for t in validate
               if module_of(t) == "ansible.builtin.assert")


def test_ansible_parses_site_yml(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    groups = {"fallback_directory": {"hosts": {"h1": None}}}
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"h1": None}, "children": groups}}),
                         encoding="utf-8")
    env = {**os.environ, **ansible_env(), "ANSIBLE_HOME": str(tmp_path / "ansible"),
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")}
    binary = Path(sys.executable).parent / "ansible-playbook"
    done = subprocess.run(
        [str(binary), "--syntax-check", "-i", str(inventory), str(PLAYBOOKS / "site.yml"),
         "-e", "planb_site=test"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_fallback_host_of_a_split_lab_gets_its_tls_certificate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The TLS play reaches the directory and messaging hosts of a split lab (whose proxy
    host is called like the 'fallback' group: Ansible then takes the host)."""
    from planb.config import LabConfig
    from planb.lab.site import write_lab_site
    from planb.lab.topology import build_topology

    lab = LabConfig(subnet="10.77.5.0/24", bridge="planb5", split=True)
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    write_lab_site(tmp_path, build_topology(lab.subnet, lab.bridge, split=True),
                   tmp_path / "key", lab)
    plays = yaml.safe_load((PLAYBOOKS / "site.yml").read_text(encoding="utf-8"))
    tls = next(p for p in plays if any(r.get("role") == "pki" for r in p.get("roles", [])))
    env = {**os.environ, **ansible_env(), "ANSIBLE_HOME": str(tmp_path / "ansible"),
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "-i",
         str(tmp_path / "inventories" / "lab" / "hosts.yml"), tls["hosts"], "--list-hosts"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    hosts = {line.strip() for line in done.stdout.splitlines()[1:]}
    assert hosts == {"primary", "fallback", "directory", "messaging"}, done.stdout
