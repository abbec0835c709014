"""The runbooks' break-glass path is the one the controller-lost drill runs: the printed
commands come from planb.actions (breakglass_command, restore_words), filled with the
site's addresses, host key fingerprints and the break-glass key's fingerprint."""

from __future__ import annotations

import base64
import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from planb.actions.breakglass import breakglass_command, breakglass_hosts
from planb.actions.controller import restore_words
from planb.cli.main import app
from planb.config import load_config
from planb.hostkeys import fingerprint, known_hosts_path
from planb.runbooks.breakglass import ADMIN_KEY, KEY_FILE, PASSPHRASE, RESTORED_DIR
from tests.unit.test_runbooks_render import lab_site, render_cli  # noqa: F401


def code_blocks(markdown: str) -> list[str]:
    return [line for block in re.findall(r"^```\n(.*?)^```", markdown, re.S | re.M)
            for line in block.splitlines()]


def test_the_runbook_prints_the_commands_the_drill_runs(lab_site: Path) -> None:  # noqa: F811
    site = load_config(lab_site)
    hosts = breakglass_hosts(site)
    assert hosts
    # The host keys as 'planb hosts trust' records them: the runbook prints them.
    blob = base64.b64encode(b"\0\0\0\x0bssh-ed25519" + bytes(36)).decode()
    known_hosts_path(site).write_text(f"{hosts[0].address} ssh-ed25519 {blob}\n")
    text = render_cli(lab_site, "activate-failover")
    lines = code_blocks(text)
    for host in hosts:
        for verb in ("activate", "deactivate"):
            printed = next(line for line in lines if f"root@{host.address} \"{verb} " in line)
            command = breakglass_command(host, verb, operator="YOUR NAME",  # type: ignore[arg-type]
                                         reason="THE REASON")
            assert printed == command.printable(KEY_FILE)
            # The drill's call is the printed one, its key in place of the placeholder,
            # plus options that only narrow what is accepted, and --drill on activate.
            drill = breakglass_command(host, verb, operator="YOUR NAME",  # type: ignore[arg-type]
                                       reason="THE REASON", drill=True).argv("/safe/key",
                                                                              Path("/kh"))
            words = [w if w != KEY_FILE else "/safe/key" for w in shlex.split(printed)]
            assert drill[:len(words) - 2] == words[:-2] and drill[-2] == words[-2]
            assert drill[len(words) - 2:-2] == [
                "-F", "/dev/null", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=10", "-o", "StrictHostKeyChecking=yes",
                "-o", "UserKnownHostsFile=/kh", "-o", "GlobalKnownHostsFile=/dev/null"]
            assert shlex.split(drill[-1]) == shlex.split(words[-1]) + (
                ["--drill"] if verb == "activate" else [])
        restore = next(line for line in lines if line.startswith("planb controller restore"))
        assert shlex.split(restore)[1:] == restore_words(
            site, host, into=RESTORED_DIR, key=ADMIN_KEY, passphrase_file=PASSPHRASE)
        assert f"--host-fingerprint {fingerprint(('ssh-ed25519', blob))} " in restore
    assert f"accept it only if it is `{fingerprint(('ssh-ed25519', blob))}`" in text
    # Break-glass comes first: before the controller's path.
    assert text.index("break-glass on the fallback host") < text.index("B. From the controller")




def test_the_printed_runbook_names_the_break_glass_key_by_its_fingerprint(
        lab_site: Path) -> None:  # noqa: F811
    assert "no break-glass key made yet" in render_cli(lab_site, "activate-failover")
    made = CliRunner().invoke(app, ["-c", str(lab_site), "keys", "breakglass", "--out",
                                    str(lab_site.parent / "safe")])
    assert made.exit_code == 0, made.output
    printed = re.search(r"fingerprint (SHA256:\S+)", made.output)
    assert printed
    text = render_cli(lab_site, "activate-failover")
    assert f"is `{printed.group(1)}`" in text


def test_rotate_signing_key_covers_each_host_key(lab_site: Path) -> None:  # noqa: F811
    site = load_config(lab_site)
    lines = code_blocks(render_cli(lab_site, "rotate-signing-key"))
    for host in breakglass_hosts(site):
        assert breakglass_command(host, "rotate-key", operator="YOUR NAME",
                                  reason="THE REASON").printable(KEY_FILE) in lines
    assert any(line.endswith("deploy --tags breakglass") for line in lines)
    assert any("keys breakglass --out" in line and "--force" in line for line in lines)
