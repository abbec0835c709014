"""The break-glass command imports only what the messaging hosts get from the bundle.

Its virtualenv holds planb's wheel (--no-deps) and planb-host-requirements.in's closure:
an import of anything else (ansible, nio, ldap3, typer, rich...) would fail on the host
with ModuleNotFoundError on the day it is needed.
"""

from __future__ import annotations

import json
import subprocess
import sys

from planb.bundle.inputs import HOST_REQUIREMENTS_FILE, parse_requirements

#: Import name -> the distribution that provides it, for the host list's closure.
PROVIDED_BY = {"cryptography": "cryptography", "_cffi_backend": "cffi", "jinja2": "jinja2",
               "markupsafe": "jinja2", "yaml": "pyyaml", "babel": "babel",
               "markdown_it": "markdown-it-py", "mdurl": "markdown-it-py"}
MODULES = ("planb.breakglass.cli", "planb.breakglass.host", "planb.breakglass.announce")


def imported_third_party() -> set[str]:
    code = ("import json, sys\n"
            f"for m in {MODULES!r}: __import__(m)\n"
            "std = set(sys.stdlib_module_names)\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} - std)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    tops = set(json.loads(out))
    # Interpreter and packaging internals, not imports of planb's.
    return {t for t in tops if t != "planb" and not t.startswith("_")
            or t == "_cffi_backend"} - {"__main__"}


def test_the_break_glass_command_imports_only_the_host_requirements() -> None:
    pinned = {line.split("==")[0].lower()
              for line in parse_requirements(HOST_REQUIREMENTS_FILE.read_text()).splitlines()}
    found = imported_third_party() - {"cython_runtime", "_distutils_hack"}
    unknown = {m for m in found if m not in PROVIDED_BY}
    assert not unknown, f"planb.breakglass imports {unknown}: not on the hosts"
    assert {PROVIDED_BY[m] for m in found} - {"cffi"} <= pinned
