"""SSH host keys: recorded on first contact in <site>/known_hosts, then enforced.

Real tools where they run without a network: ssh-keygen (fingerprints, keys), ssh -G
(which option value ssh keeps), ansible-inventory and ansible (the command Ansible
builds). ssh-keyscan against real hosts is exercised by
tests/integration/test_hostkeys_lab.py; here trust() gets the keys a host "offers".
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from planb.config import LabConfig, SiteConfig, load_config
from planb.hostkeys import (
    HostKeyError,
    Key,
    KeyTarget,
    fingerprint,
    is_key_refusal,
    known_hosts_path,
    parse_known_hosts,
    refusal_error,
    require_trusted,
    ssh_options,
    trust,
)
from planb.inventory import load_hosts
from planb.lab.site import write_lab_site
from planb.lab.topology import build_topology
from planb.provisioning.deploy import run_deploy
from planb.provisioning.results import TaskFailure
from planb.provisioning.runner import ansible_env

HOST = KeyTarget("fallback", "10.77.9.11")


def new_key(tmp_path: Path, name: str) -> Key:
    """A fresh ed25519 public key (type, blob), made with ssh-keygen."""
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    kind, blob = path.with_suffix(".pub").read_text(encoding="utf-8").split()[:2]
    return kind, blob


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    lab = LabConfig(subnet="10.77.9.0/24", bridge="planb9")
    return load_config(write_lab_site(tmp_path, build_topology(lab.subnet, lab.bridge),
                                      tmp_path / "key", lab))


def test_fingerprints_are_the_ones_ssh_keygen_prints(tmp_path: Path) -> None:
    key = new_key(tmp_path, "k")
    printed = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "k.pub")], check=True,
                             capture_output=True, text=True).stdout.split()[1]
    assert fingerprint(key) == printed


def test_known_hosts_names_hosts_as_ssh_does() -> None:
    assert KeyTarget("a", "192.0.2.1").entry == "192.0.2.1"
    assert KeyTarget("a", "192.0.2.1", 22).entry == "192.0.2.1"
    assert KeyTarget("a", "192.0.2.1", 2222).entry == "[192.0.2.1]:2222"
    parsed = parse_known_hosts("# c\n@revoked x ssh-ed25519 AAA\n|1|h= ssh-rsa B\n"
                               "a,b ssh-ed25519 AAAA\n")
    assert parsed == {"a": {("ssh-ed25519", "AAAA")}, "b": {("ssh-ed25519", "AAAA")}}


def test_first_contact_records_the_key_and_a_second_run_changes_nothing(tmp_path: Path
                                                                       ) -> None:
    path, key = tmp_path / "known_hosts", new_key(tmp_path, "k")
    [first] = trust(path, [HOST], scan=lambda _t: {key})
    assert first.outcome == "recorded" and first.fingerprints == [
        f"ssh-ed25519 {fingerprint(key)}"]
    text = path.read_text(encoding="utf-8")
    assert text == f"10.77.9.11 {key[0]} {key[1]}\n"
    [again] = trust(path, [HOST], scan=lambda _t: {key})
    assert again.outcome == "unchanged" and path.read_text(encoding="utf-8") == text


def test_a_changed_key_is_refused_unless_replaced_on_purpose(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    old, new = new_key(tmp_path, "old"), new_key(tmp_path, "new")
    other = KeyTarget("proxy", "10.77.9.12")
    trust(path, [HOST, other], scan=lambda t: {old} if t is HOST else {new})
    before = path.read_text(encoding="utf-8")
    [changed] = trust(path, [HOST], scan=lambda _t: {new})
    assert changed.outcome == "changed"
    assert path.read_text(encoding="utf-8") == before, "a changed key is never replaced"
    [replaced] = trust(path, [HOST], replace=True, scan=lambda _t: {new})
    assert replaced.outcome == "replaced"
    assert parse_known_hosts(path.read_text(encoding="utf-8")) == {
        "10.77.9.11": {new}, "10.77.9.12": {new}}


def test_a_host_that_does_not_answer_is_not_recorded(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    [silent] = trust(path, [HOST], scan=lambda _t: set())
    assert silent.outcome == "unreachable" and not path.exists()


def test_hosts_with_no_recorded_key_are_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    with pytest.raises(HostKeyError) as refused:
        require_trusted(path, [HOST])
    assert "fallback (10.77.9.11)" in str(refused.value)
    assert "planb hosts trust" in (refused.value.hint or "")
    trust(path, [HOST], scan=lambda _t: {new_key(tmp_path, "k")})
    require_trusted(path, [HOST])
    changed = refusal_error(HOST, path)
    assert "does not match" in str(changed) and "fallback" in str(changed)
    assert "planb hosts trust --replace fallback" in (changed.hint or "")


@pytest.mark.parametrize("text", [
    "@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
    "Host key for 10.77.9.11 has changed and you have requested strict checking.\n"
    "Host key verification failed.",
    "No ED25519 host key is known for 10.77.9.11 and you have requested strict checking.",
    "Failed to connect to the host via ssh: Host key verification failed.",
])
def test_ssh_refusals_are_recognised(text: str) -> None:
    assert is_key_refusal(text)
    assert not is_key_refusal("ssh: connect to host 10.77.9.11 port 22: No route to host")


def effective(argv: list[str], option: str) -> str:
    """The value ssh keeps for ``option`` with these arguments (``ssh -G``)."""
    done = subprocess.run(["ssh", "-G", *argv, "192.0.2.1"], capture_output=True,
                          text=True, check=True)
    return next(line.split(" ", 1)[1] for line in done.stdout.splitlines()
                if line.split(" ", 1)[0] == option.lower())


def test_the_site_check_wins_over_an_old_inventorys_no_check(site: SiteConfig) -> None:
    """A site written before planb checked host keys still says StrictHostKeyChecking=no:
    planb's options come first, and ssh keeps the first value of an option."""
    main = site.inventory_dir / "group_vars" / "all" / "main.yml"
    main.write_text(main.read_text(encoding="utf-8").replace(
        '"-o LogLevel=ERROR"',
        '"-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"'),
        encoding="utf-8")
    host = next(h for h in load_hosts(site) if h.name == "fallback")
    args = host.ssh.ssh_args()
    assert "StrictHostKeyChecking=no" in args
    assert effective(args, "StrictHostKeyChecking") == "true"
    assert effective(args, "UserKnownHostsFile") == str(known_hosts_path(site))
    assert effective(args, "GlobalKnownHostsFile") == "/dev/null"


def test_ansible_puts_the_site_check_before_the_inventorys_options(tmp_path: Path) -> None:
    known = tmp_path / "site dir" / "known_hosts"
    env = {**os.environ, **ansible_env(known), "ANSIBLE_HOME": str(tmp_path / "ansible"),
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")}
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "-i", "h1,", "all", "-m", "ping",
         "-vvv", "-e", "ansible_host=127.0.0.1 ansible_port=1",
         "-e", "ansible_ssh_common_args='-o StrictHostKeyChecking=no'"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    line = next(ln for ln in done.stdout.splitlines() if "SSH: EXEC ssh" in ln)
    argv = shlex.split(line.split("SSH: EXEC ", 1)[1])[1:]
    cut = argv.index("127.0.0.1")
    assert effective(argv[:cut], "StrictHostKeyChecking") == "true"
    assert effective(argv[:cut], "UserKnownHostsFile") == str(known)


def test_a_playbook_failure_over_a_refused_key_names_the_host_and_the_fix() -> None:
    failure = TaskFailure("fallback", "fallback", "Gathering Facts",
                          "Failed to connect to the host via ssh: Host key verification "
                          "failed.", unreachable=True)
    assert failure.key_refused
    assert "planb hosts trust --replace fallback" in failure.describe()
    other = TaskFailure("fallback", "p", "t", "No route to host", unreachable=True)
    assert not other.key_refused and "planb hosts trust" not in other.describe()


def test_deploy_refuses_a_site_whose_hosts_were_never_trusted(site: SiteConfig) -> None:
    """An existing site after the upgrade: no known_hosts yet, a clear message."""
    with pytest.raises(HostKeyError) as refused:
        run_deploy(site)
    assert "no SSH host key recorded" in str(refused.value)
    assert "planb hosts trust" in (refused.value.hint or "")
    assert not (site.state_dir / "runs").exists(), "Ansible must not have run"


def test_new_sites_no_longer_turn_host_key_checks_off(site: SiteConfig) -> None:
    main = (site.inventory_dir / "group_vars" / "all" / "main.yml").read_text(encoding="utf-8")
    assert "StrictHostKeyChecking" not in main and "/dev/null" not in main
    assert ssh_options(Path("/x"))[:2] == ["-o", "StrictHostKeyChecking=yes"]


def test_hosts_ansible_reaches_without_ssh_need_no_key(tmp_path: Path) -> None:
    """``ansible_connection: local`` has no host key: deploy must not ask for one, while
    an SSH host of the same inventory still must have its key recorded."""
    from planb.inventory import InventoryHost, require_trusted_hosts

    site_dir = tmp_path / "site"
    site_dir.mkdir()
    local = InventoryHost("localhost", "127.0.0.1", ("fallback_messaging",),
                          hostvars={"ansible_connection": "local"})
    over_ssh = InventoryHost("fallback", "10.0.0.9", ("fallback_proxy",),
                             hostvars={"ansible_connection": "ansible.builtin.ssh"})
    assert not local.uses_ssh and over_ssh.uses_ssh
    site = type("Site", (), {"base_dir": site_dir})()
    require_trusted_hosts(site, [local])  # type: ignore[arg-type]
    with pytest.raises(HostKeyError) as refused:
        require_trusted_hosts(site, [local, over_ssh])  # type: ignore[arg-type]
    assert "fallback" in str(refused.value) and "localhost" not in str(refused.value)
