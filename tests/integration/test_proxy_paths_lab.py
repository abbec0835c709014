"""nginx on the lab's fallback decides on the raw path Synapse will see (issue 11, §4).

Each hostile raw path (dot-segments, encoded ``.`` ``/`` ``\\``, ``//``, the admin
prefix in any case or encoding) goes to nginx byte for byte over TLS and must be
refused by nginx itself, never answered by Synapse; the encoded Matrix IDs clients
send must still reach Synapse, and 'planb verify' runs the same lists.
"""

from __future__ import annotations

import pytest

from planb.inventory import InventoryHost, hosts_in
from planb.verify import run_checks
from planb.verify.endpoints import HttpAnswer
from planb.verify.proxy_paths import (
    HOSTILE_PATHS,
    LEGIT_PATHS,
    NGINX_PAGE,
    REFUSED_MARKER,
    PathCase,
    describe,
    raw_request,
    refused_by_proxy,
)
from tests.integration.conftest import LabSession

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def proxy(deployed_lab: LabSession) -> InventoryHost:
    """The lab's proxy host (the one-host fallback)."""
    return hosts_in(deployed_lab.site, "fallback_proxy")[0]


def send(lab: LabSession, proxy: InventoryHost, case: PathCase) -> HttpAnswer:
    """``GET`` the case's raw target on the proxy's nginx, byte for byte, over TLS."""
    matrix = lab.site.matrix
    return raw_request(lab.site, proxy.address, case.raw(matrix.server_name,
                                                         matrix.public_hostname))


@pytest.mark.parametrize("case", HOSTILE_PATHS, ids=lambda c: c.why)
def test_nginx_refuses_a_hostile_raw_path(deployed_lab: LabSession, proxy: InventoryHost,
                                          case: PathCase) -> None:
    answer = send(deployed_lab, proxy, case)
    assert refused_by_proxy(answer), (
        f"{case.target!r} ({case.why}) reached Synapse: {describe(answer)}")
    # planb's own rules refused it (not merely some other nginx 404), with their status.
    mark = NGINX_PAGE if case.by_parser else REFUSED_MARKER
    assert mark in answer.text, f"{case.target!r} ({case.why}): {describe(answer)}"
    assert answer.status in (400, 404), describe(answer)


@pytest.mark.parametrize("case", LEGIT_PATHS, ids=lambda c: c.why)
def test_encoded_matrix_paths_still_reach_synapse(deployed_lab: LabSession,
                                                  proxy: InventoryHost,
                                                  case: PathCase) -> None:
    answer = send(deployed_lab, proxy, case)
    assert not refused_by_proxy(answer), f"{case.target!r} refused by nginx"
    assert isinstance(answer.body, dict), f"not Synapse's JSON: {describe(answer)}"


def test_verify_proxy_paths_check_passes(deployed_lab: LabSession) -> None:
    report = run_checks(deployed_lab.site, ["matrix.proxy_paths", "matrix.client_api"])
    assert [(r.name, r.status) for r in report.results] == [
        ("matrix.client_api", "pass"), ("matrix.proxy_paths", "pass")], report.summary()
