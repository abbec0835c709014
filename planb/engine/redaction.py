"""The redactor: masks secrets in any text bound for a journal, a report or an audit log."""

from __future__ import annotations

import re
from collections.abc import Iterable

OUTPUT_LIMIT = 4000
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b([\w.-]*(?:password|passwd|secret|token|passphrase)[\w.-]*)(\s*[=:]\s*)(\S+)")


class Redactor:
    """Masks secrets in text that goes to journals: known values and ``password=…`` forms."""

    MASK = "********"

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str, limit: int = OUTPUT_LIMIT) -> str:
        for secret in self._secrets:
            text = text.replace(secret, self.MASK)
        text = _SECRET_ASSIGNMENT.sub(lambda m: f"{m[1]}{m[2]}{self.MASK}", text)
        if len(text) > limit:
            cut = len(text) - limit
            text = f"[{cut} characters cut]\n" + text[-limit:]
        return text
