"""From a code holder to what carries their code: the code derived again from the key.

A code is never stored in clear: :func:`planb.enrolment_code.derive_code` gives it back
from the site's enrolment key, the agent's source id and the serial the sync recorded,
so a letter can be printed again at any time and prints the code the directory's hash
was made from. A :class:`Letter` hides its code from ``repr`` (and so from logs and
tracebacks that show it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from planb.config import SiteConfig
from planb.enrol_page import ENROL_PATH
from planb.enrolment.holders import Holder
from planb.enrolment_code import derive_code, format_code


@dataclass(frozen=True)
class Letter:
    """One agent's letter: who, where, and their code (``XXXX-XXXX-XXXX``)."""

    login: str
    name: str
    department: str
    code: str = field(repr=False)
    serial: int = 0
    expires: datetime | None = None
    mail: str = ""
    mobile: str = ""


@dataclass(frozen=True)
class Addresses:
    """Where the agent goes: the enrolment page and the welcome page."""

    enrol: str
    welcome: str

    @classmethod
    def of(cls, site: SiteConfig) -> Addresses:
        host = site.matrix.public_hostname
        return cls(enrol=f"https://{host}{ENROL_PATH}", welcome=f"https://{host}/")


def letter_for(holder: Holder, key: bytes) -> Letter:
    """``holder``'s letter, with the code number ``holder.serial`` derived from ``key``."""
    code = format_code(derive_code(key, holder.source_id, holder.serial))
    return Letter(login=holder.login, name=holder.name, department=holder.department,
                  code=code, serial=holder.serial, expires=holder.expires,
                  mail=holder.mail, mobile=holder.mobile)


def letters_for(holders: Iterable[Holder], key: bytes) -> list[Letter]:
    """One letter per holder, in the holders' order."""
    return [letter_for(h, key) for h in holders]
