"""``planb deploy --check`` on the deployed lab: it changes nothing and sees what drifted.

A dry run that fails, or that reports changes on an up-to-date site, is no use before
a real deploy; one that quietly fixes what it finds is worse. So: on the deployed lab
the check exits 0 with changed=0; then a file a role templates and a setting the
openldap role keeps in cn=config are changed by hand, the check names both tasks as
"changed" and leaves both as they were made by hand, and a real deploy puts them back.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import LabSession
from tests.integration.lab_state import ensure_hosts_up, planb_cli

pytestmark = pytest.mark.lab

#: Templated by the coturn role ("Write coturn's configuration ...").
TURN_CONF = "/etc/turnserver.conf"
HAND_LINE = "# edited by hand: planb deploy --check must leave this line alone"
#: Kept by the openldap role through planb-ldap-ensure (olcSizeLimit on the mdb database).
LDAP_DB = "olcDatabase={1}mdb,cn=config"


def _deploy(session: LabSession, *flags: str) -> dict[str, object]:
    """``planb deploy FLAGS --json``: the result, asserting it exited 0."""
    code, out = planb_cli(session, "deploy", *flags, "--json")
    # The JSON result, then (on a failure) the error message and its hint.
    result, _ = json.JSONDecoder().raw_decode(out, out.index("{"))
    assert code == 0, (result["failures"], result["error"])
    return dict(result)


def _changed_tasks(result: dict[str, object]) -> set[tuple[str, str]]:
    """(host, task name) of every task the run reported as changed, from its events."""
    changed = set()
    for path in Path(str(result["artifacts_dir"])).glob("job_events/*.json"):
        event = json.loads(path.read_text(encoding="utf-8"))
        data = event.get("event_data", {})
        if event.get("event") == "runner_on_ok" and data.get("res", {}).get("changed"):
            changed.add((data["host"], data["task"]))
    return changed


def _size_limit(session: LabSession) -> str:
    result = session.lab.run_on("fallback", [
        "ldapsearch", "-LLL", "-Q", "-Y", "EXTERNAL", "-H", "ldapi:///", "-s", "base",
        "-b", LDAP_DB, "olcSizeLimit"])
    assert result.returncode == 0, result.stderr
    return " ".join(line.split(":", 1)[1].strip() for line in result.stdout.splitlines()
                    if line.startswith("olcSizeLimit:"))


def _set_size_limit(session: LabSession, value: str) -> None:
    ldif = f"dn: {LDAP_DB}\nchangetype: modify\nreplace: olcSizeLimit\nolcSizeLimit: {value}\n"
    result = session.lab.run_on("fallback", [
        "sh", "-c", f"printf '%s' '{ldif}' | ldapmodify -Q -Y EXTERNAL -H ldapi:///"])
    assert result.returncode == 0, result.stderr


def test_check_on_the_deployed_lab_changes_nothing(deployed_lab: LabSession) -> None:
    ensure_hosts_up(deployed_lab)
    result = _deploy(deployed_lab, "--check")
    assert result["check"] is True
    assert result["changed_total"] == 0, sorted(_changed_tasks(result))
    assert set(result["hosts"]) == {"primary", "fallback"}  # type: ignore[arg-type]


def test_check_reports_hand_made_changes_and_leaves_them(deployed_lab: LabSession) -> None:
    ensure_hosts_up(deployed_lab)
    lab = deployed_lab.lab
    original_limit = _size_limit(deployed_lab)
    assert original_limit and original_limit != "500"
    edit = lab.run_on("fallback", ["sh", "-c", f"echo '{HAND_LINE}' >> {TURN_CONF}"])
    assert edit.returncode == 0, edit.stderr
    _set_size_limit(deployed_lab, "500")
    try:
        checked = _deploy(deployed_lab, "--check")
        changed = _changed_tasks(checked)
        assert ("fallback", "Write coturn's configuration (holds the shared secret)") in changed
        assert ("fallback", "Bring cn=config, the base entries and the accounts in step") \
            in changed
        assert {host for host, _ in changed} == {"fallback"}, sorted(changed)
        # The check changed neither: the hand-made line and limit are still there.
        conf = lab.run_on("fallback", ["cat", TURN_CONF]).stdout
        assert conf.rstrip("\n").endswith(HAND_LINE)
        assert _size_limit(deployed_lab) == "500"
    finally:  # the hand-made changes are on the fallback host: put back there only
        fixed = _deploy(deployed_lab, "--limit", "fallback")
    assert HAND_LINE not in lab.run_on("fallback", ["cat", TURN_CONF]).stdout
    assert _size_limit(deployed_lab) == original_limit
    assert ("fallback", "Write coturn's configuration (holds the shared secret)") \
        in _changed_tasks(fixed)
    # And after the real deploy, nothing is left to change there (the whole site's check
    # is the test above).
    assert _deploy(deployed_lab, "--check", "--limit", "fallback")["changed_total"] == 0
