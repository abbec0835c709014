"""The offline bundle: every Debian package and Python wheel the roles install.

Public interface:

- :func:`build_bundle` builds (or reuses) a bundle folder and returns a :class:`BuildResult`.
- :func:`load_manifest` / :func:`verify` read a bundle's manifest and re-hash its files.
- :func:`default_output` is the machine-wide bundle, ``$PLANB_HOME/bundles/current``.

A bundle folder holds ``debs/`` (a flat apt repository), ``wheels/``, ``client/`` (the
browser client, :mod:`planb.bundle.client`),
``requirements/synapse.txt`` (exact pins with hashes), ``wheels-host/`` and
``requirements/planb-host.txt`` (planb's own dependencies for the messaging hosts'
break-glass command, role ``breakglass``), ``SHA256SUMS``,
``manifest.json`` and ``bundle.tar`` (all of it in one file, for shipping).
"""

from planb.bundle.archive import ARCHIVE_NAME
from planb.bundle.build import BuildResult, build_bundle, default_output
from planb.bundle.manifest import Item, Manifest, Problem, load_manifest, verify

__all__ = [
    "ARCHIVE_NAME",
    "BuildResult",
    "Item",
    "Manifest",
    "Problem",
    "build_bundle",
    "default_output",
    "load_manifest",
    "verify",
]
