"""``planb verify``: checks that the deployed fallback is as it must be, and probes that use it.

- :func:`run_checks` runs the named checks (:data:`CHECKS`) on the site's inventory and
  returns a :class:`VerifyReport` (one :class:`CheckResult` per check and host).
- :func:`run_probes` logs agents in through the fallback and has them exchange a
  message (matrix-nio); drills call it with sampled agents.
- :func:`to_junit_xml` / :func:`write_junit` render a report for CI.
"""

from planb.verify.junit import to_junit_xml, write_junit
from planb.verify.model import CheckResult, Status, VerifyReport
from planb.verify.probes import AgentProbe, run_probes
from planb.verify.registry import CHECKS, FAILOVER_CHECKS, check_names, run_checks, select_checks

__all__ = ["CHECKS", "FAILOVER_CHECKS", "AgentProbe", "CheckResult", "Status", "VerifyReport",
           "check_names", "run_checks", "run_probes", "select_checks", "to_junit_xml",
           "write_junit"]
