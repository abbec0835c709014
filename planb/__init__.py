"""planb: keep a free-software backup communication system ready, and prove it."""

from importlib import resources
from pathlib import Path

__version__ = "0.1.0"

#: The folder above the package: a git checkout when planb runs from one (then
#: ``.git`` is there), site-packages when it is installed from a wheel.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_path(*parts: str) -> Path:
    """A file or folder shipped inside the package under ``planb/data/``.

    Everything planb reads at run time (playbooks, roles, bundle lists, templates,
    scenarios, runbooks) lives there, so an installed wheel works without a checkout.
    """
    return Path(str(resources.files("planb").joinpath("data", *parts)))


#: ``site.yml``, ``failover.yml``, ``roles/`` and the bundle's input lists.
PLAYBOOKS_DIR = data_path("playbooks")
