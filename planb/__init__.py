"""planb: keep a free-software backup communication system ready, and prove it."""

from pathlib import Path

__version__ = "0.1.0"

#: The source tree that holds ``playbooks/``, ``templates/`` and ``runbooks/``.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
