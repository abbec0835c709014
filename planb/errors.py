"""The exceptions planb raises, each carrying the exit code the CLI turns it into.

Library code raises these and never calls ``sys.exit``; ``planb.cli.main`` is the
single place that maps them to an exit status (see DESIGN.md).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PLAYBOOK_FAILED = 3
EXIT_DRILL_DEVIATED = 4
EXIT_INTERRUPTED = 130


class PlanbError(Exception):
    """Base class: a failure a user can act on, with a message that says how."""

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(PlanbError):
    """The command was asked for something that cannot be done as asked."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """The site configuration is missing, unreadable or invalid.

    ``path`` is the file, ``key`` the dotted key path (if known) and ``line`` the
    1-based line in the file (if known).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        key: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        where = path or "<config>"
        if line is not None:
            where += f":{line}"
        if key:
            where += f": {key}"
        super().__init__(f"{where}: {message}", hint=hint)
        self.path = path
        self.key = key
        self.line = line


class PrerequisiteError(PlanbError):
    """Something planb needs on this machine is missing (root, a command)."""


class LabError(PlanbError):
    """The lab could not be brought up, inspected or torn down."""


class PlaybookFailed(PlanbError):
    """An Ansible run failed; the message names the host and task."""

    exit_code = EXIT_PLAYBOOK_FAILED


class DrillDeviated(PlanbError):
    """A drill ran but missed its objective or a probe failed."""

    exit_code = EXIT_DRILL_DEVIATED


class Interrupted(PlanbError):
    """The user pressed Ctrl-C; whatever had to be put back was put back."""

    exit_code = EXIT_INTERRUPTED
