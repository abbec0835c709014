"""Render-time pseudonymisation: a report never shows a sampled agent's login.

Drill journals already hold pseudonyms (``agent-`` and 12 hex digits, from
:func:`planb.actions.sampling.pseudonym`) for every probed agent. This is the second
line of defence for journals written otherwise (an older planb, another producer):

- a probe ``subject`` that is not a pseudonym is shown as ``agent-hidden-N``;
- that login is then also replaced wherever it appears in the report's text;
- Matrix user ids (``@login:server``) and e-mail addresses in any text are replaced
  the same way, unless their local part already is a pseudonym.

The labels are numbered per report (``agent-hidden-1``, ``-2``…), not derived from the
login, so nothing in a report can be matched back to a login by hashing guesses.
"""

from __future__ import annotations

import re

PSEUDONYM_RE = re.compile(r"^agent-[0-9a-f]{12}$")
HIDDEN_PREFIX = "agent-hidden-"
_MATRIX_ID = re.compile(r"@([A-Za-z0-9._=/+-]+):([A-Za-z0-9.-]+(?::\d+)?)")
_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)\b")


def is_pseudonym(value: str) -> bool:
    """Whether ``value`` is already a pseudonym (or a render-time label)."""
    return bool(PSEUDONYM_RE.match(value)) or value.startswith(HIDDEN_PREFIX)


class Pseudonyms:
    """Replaces logins by stable per-report labels; one instance per rendered report."""

    def __init__(self) -> None:
        self._labels: dict[str, str] = {}

    @property
    def hidden(self) -> int:
        """How many distinct logins were hidden in this report."""
        return len(self._labels)

    def subject(self, value: object) -> str:
        """A probe subject as the report shows it ("" when there is none)."""
        if not isinstance(value, str) or not value.strip():
            return ""
        value = value.strip()
        return value if is_pseudonym(value) else self._label(value)

    def text(self, value: object) -> str:
        """Free text with every known login, Matrix user id and e-mail address hidden."""
        if value is None:
            return ""
        text = value if isinstance(value, str) else str(value)
        for login in sorted(self._labels, key=len, reverse=True):
            text = text.replace(login, self._labels[login])
        text = _MATRIX_ID.sub(self._matrix_id, text)
        return _EMAIL.sub(self._email, text)

    def _label(self, login: str) -> str:
        if login not in self._labels:
            self._labels[login] = f"{HIDDEN_PREFIX}{len(self._labels) + 1}"
        return self._labels[login]

    def _matrix_id(self, match: re.Match[str]) -> str:
        local, server = match[1], match[2]
        return match[0] if is_pseudonym(local) else f"@{self._label(local)}:{server}"

    def _email(self, match: re.Match[str]) -> str:
        local, domain = match[1], match[2]
        return match[0] if is_pseudonym(local) else f"{self._label(local)}@{domain}"
