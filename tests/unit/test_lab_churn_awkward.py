"""'planb lab churn' leaves the lab's awkward names alone, so the name tests can read
them back exactly whichever of the churning sync tests ran first."""

from __future__ import annotations

from planb.directory.lab_churn import _awkward, _Person
from planb.lab.agent_names import AWKWARD_NAMES


def person(given: str, surname: str) -> _Person:
    return _Person("uid=x,ou=people,dc=primary,dc=lab", "id", "x", given, surname,
                   f"{given} {surname}", "Direction", locked=False)


def test_every_awkward_name_is_recognised_as_read_from_ldap() -> None:
    for given, surname in AWKWARD_NAMES:
        assert _awkward(person(given, surname)), (given, surname)
        assert _awkward(person(given.strip(), surname.strip())), (given, surname)


def test_ordinary_names_are_churned() -> None:
    assert not _awkward(person("Jean", "Dupont"))
    assert not _awkward(person("Marie", "Le Goff"))
