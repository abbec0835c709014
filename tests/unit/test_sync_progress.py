"""'planb sync apply' without a terminal (a nightly job's log): plain progress lines."""

from __future__ import annotations

import pytest

from planb.cli import sync_cmd


def test_without_a_terminal_progress_is_a_line_per_phase_now_and_then(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(float(t) for t in (0, 5, 10, 40, 41, 42, 43))
    monkeypatch.setattr(sync_cmd.time, "monotonic", lambda: next(clock))
    bars = sync_cmd._Bars()  # started at 0 s
    for done in (0, 100, 200, 300, 400):  # at 5, 10, 40, 41 and 42 s
        bars("members", done, 400)
    bars("members", 400, 400)  # already reported as finished: not again
    bars.stop()
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["members: 0/400 (0 %), 5 s", "members: 200/400 (50 %), 40 s",
                     "members: 400/400 (100 %), 42 s"]
