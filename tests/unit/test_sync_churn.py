"""How lab churn spreads its changes over the five kinds."""

from __future__ import annotations

import pytest

from planb.directory.lab_churn import KINDS, split_counts


@pytest.mark.parametrize("total", [0, 1, 4, 5, 15, 90, 91])
def test_counts_add_up_and_differ_by_at_most_one(total: int) -> None:
    counts = split_counts(total)
    assert set(counts) == set(KINDS)
    assert sum(counts.values()) == total
    assert max(counts.values()) - min(counts.values()) <= 1
