"""Addenda: signed observations and actions appended to the chain, shown with the journal."""

from __future__ import annotations

import json

import pytest

from planb.config import SiteConfig
from planb.errors import UsageError
from planb.reports.annotate import annotate
from planb.reports.verify import verify_directory
from tests.unit.test_reports_render_model import signed_store, write_drills
from tests.unit.test_reports_render_model import site as site  # noqa: F401 (fixture)


def test_annotate_appends_a_signed_addendum_and_the_chain_verifies(site: SiteConfig) -> None:
    journals = write_drills(site)
    store = signed_store(site)
    target = journals[1]
    stored = annotate(store, target.id[:8], observations=["Synapse was slow", "DNS ok"],
                      actions=["Pre-warm caches"], author="agnès")
    assert stored.kind == "addendum" and stored.seq == 4
    payload = stored.payload
    assert payload["target"] == {"id": target.id, "seq": target.seq, "sha256": target.sha256}
    assert payload["observations"] == ["Synapse was slow", "DNS ok"]
    assert payload["actions"] == ["Pre-warm caches"] and payload["author"] == "agnès"
    assert payload["written_at"].endswith("Z") and payload["target_kind"] == "drill"
    assert [a.id for a in store.addenda(target.id)] == [stored.id]
    result = verify_directory(store.directory, [store.signer.public_key])  # type: ignore[union-attr]
    assert result.ok, result.failure
    # The annotated journal is untouched.
    assert json.loads(target.path.read_bytes())["payload"] == dict(target.payload)


def test_annotate_refuses_bad_input_and_writes_nothing(site: SiteConfig) -> None:
    journals = write_drills(site)
    store = signed_store(site)
    before = sorted(p.name for p in store.directory.iterdir())
    with pytest.raises(UsageError, match="no journal matches"):
        annotate(store, "deadbeef", observations=["x"], actions=[], author="a")
    with pytest.raises(UsageError, match="at least one"):
        annotate(store, "1", observations=[], actions=[], author="a")
    with pytest.raises(UsageError, match="--action is empty"):
        annotate(store, "1", observations=["x"], actions=["  "], author="a")
    with pytest.raises(UsageError, match="at most"):
        annotate(store, "1", observations=["x" * 3000], actions=[], author="a")
    assert sorted(p.name for p in store.directory.iterdir()) == before
    addendum = annotate(store, str(journals[0].seq), observations=["x"], actions=[], author="a")
    with pytest.raises(UsageError, match="itself an addendum"):
        annotate(store, str(addendum.seq), observations=["y"], actions=[], author="a")


def test_annotate_masks_password_forms(site: SiteConfig) -> None:
    write_drills(site)
    stored = annotate(signed_store(site), "1", observations=["login with password=hunter2"],
                      actions=[], author="a")
    assert "hunter2" not in stored.path.read_text("utf-8")
