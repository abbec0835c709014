"""The admin token's renewal command: the one the synapse role installs, run over ssh."""

from __future__ import annotations

import yaml

import planb
from planb.inventory import SshTarget
from planb.messaging.admin_token import RENEW_COMMAND, renew_argv

DEFAULTS = planb.data_path("playbooks") / "roles" / "synapse" / "defaults" / "main.yml"


def test_the_command_planb_runs_is_the_one_the_role_installs() -> None:
    defaults = yaml.safe_load(DEFAULTS.read_text(encoding="utf-8"))
    assert defaults["synapse_admin_token_renew"] == RENEW_COMMAND


def test_the_renewal_runs_on_the_host_with_its_ssh_settings() -> None:
    target = SshTarget(name="messaging", address="10.0.0.3", user="root", port=2222,
                       key_file="/keys/id", options=("-o", "LogLevel=ERROR"),
                       known_hosts="/site/known_hosts")
    argv = renew_argv(target)
    assert argv[0] == "ssh" and argv[-2:] == ["root@10.0.0.3", RENEW_COMMAND]
    joined = " ".join(argv)
    assert "StrictHostKeyChecking=yes" in joined
    assert "UserKnownHostsFile=/site/known_hosts" in joined
    assert "-i /keys/id" in joined and "-p 2222" in joined and "BatchMode=yes" in joined
