"""Filters and time parsing: the pieces between the events and the renderer."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import pytest

from forgectl.errors import InvalidValue, UsageError
from forgectl.events import LogEntry, ProcessEvent, RawChunk
from forgectl.filters import (
    LogFilter,
    ProcessFilter,
    RawLineFilter,
    RawTail,
    Tail,
    compile_grep,
    parse_levels,
    parse_since,
)
from forgectl.status import exit_status
from forgectl.times import parse_time


def log(level: str, message: str, ts: str | None = None, source: str = "executor") -> LogEntry:
    return LogEntry({"level": level, "message": message, "timestamp": ts, "source": source})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T08:06:58.809186949Z", datetime(2026, 11, 26, 8, 6, 58, 809186, UTC)),
        ("2024-01-15T10:30:00Z", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
        ("2024-01-15T12:30:00.5+02:00", datetime(2024, 1, 15, 10, 30, 0, 500000, UTC)),
        ("2024-01-15 10:30", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
        ("yesterday", None),
        (None, None),
    ],
)
def test_parse_time(text: str | None, expected: datetime | None) -> None:
    assert parse_time(text) == expected


def test_parse_since_durations_and_times() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_since("10m", now) == now - timedelta(minutes=10)
    assert parse_since("1.5h", now) == now - timedelta(minutes=90)
    assert parse_since("2024-01-15T10:30:00Z", now) == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    with pytest.raises(InvalidValue) as info:
        parse_since("soon", now)
    assert (info.value.param, info.value.value, info.value.exit_code) == ("since", "soon", 2)
    assert "duration" in info.value.reason


def test_levels_minimum_or_exact_set() -> None:
    rank, exact = parse_levels(["warn"])
    keep = LogFilter(rank, exact)
    assert [keep(log(lv, "m")) for lv in ("debug", "info", "success", "warn", "error")] == [
        False,
        False,
        False,
        True,
        True,
    ]
    rank, exact = parse_levels(["error,success"])
    keep = LogFilter(rank, exact)
    assert [keep(log(lv, "m")) for lv in ("info", "success", "error")] == [False, True, True]
    with pytest.raises(UsageError, match="bogus"):
        parse_levels(["warn,bogus"])
    assert parse_levels(["warning"]) == parse_levels(["warn"])
    assert parse_levels(["WARNING,error"]) == (None, frozenset({"warn", "error"}))


def test_source_grep_and_since_with_inherited_timestamps() -> None:
    keep = LogFilter(
        sources=("tool",),
        grep=compile_grep("auth"),
        since=datetime(2024, 1, 15, 10, 31, tzinfo=UTC),
    )
    assert keep(log("info", "auth ok", "2024-01-15T10:32:00Z", "tool:Bash"))
    assert keep(log("info", "auth again", None, "tool:Read"))  # inherits 10:32
    assert not keep(log("info", "auth old", "2024-01-15T10:30:00Z", "tool:Bash"))
    assert not keep(log("info", "auth inherited old", None, "tool:Bash"))
    assert not keep(log("info", "auth", "2024-01-15T10:40:00Z", "assistant"))
    with pytest.raises(InvalidValue, match="not a regular expression") as info:
        compile_grep("(")
    assert info.value.param == "grep"


def test_since_on_entries_without_server_times_is_a_usage_error() -> None:
    """The real server sends ``timestamp: null``: --since must not keep everything
    silently."""
    keep = LogFilter(since=datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(UsageError, match="--since needs the server's timestamps"):
        keep(log("info", "no time", None, "assistant"))
    assert keep(ProcessEvent({"type": "process_started"}))  # only log entries carry times
    without = LogFilter(grep=compile_grep("x"))
    assert without(log("info", "x", None, "assistant"))  # no --since: no question


def test_raw_grep_works_on_whole_lines_across_chunks() -> None:
    lines = RawLineFilter(re.compile("keep"), ())
    out = [*lines(RawChunk(b"keep 1\ndrop\nkee")), *lines(RawChunk(b"p 2\ntail keep"))]
    out += lines.flush()
    assert b"".join(c.raw for c in out if isinstance(c, RawChunk)) == b"keep 1\nkeep 2\ntail keep"


def test_raw_source_counts_the_documented_stream_as_stdout() -> None:
    lines = RawLineFilter(None, ("stdout",))
    assert lines(RawChunk(b"a\n")) and lines(RawChunk(b"b\n", "stdout"))
    assert lines(RawChunk(b"c\n", "stderr")) == []


def test_tail_keeps_the_last_n_of_the_history_then_passes_everything() -> None:
    tail = Tail(2)
    for i in range(5):
        assert tail.push(log("info", str(i))) == []
    assert [e.message for e in tail.release() if isinstance(e, LogEntry)] == ["3", "4"]
    live = log("info", "live")
    assert tail.push(live) == [live]
    assert Tail(0).release() == []


def test_raw_tail_counts_lines_not_chunks() -> None:
    """The real server cuts raw output into chunks of several lines at speed:
    ``--raw --tail 3`` is the last 3 lines, as ``tail -n 3`` prints them."""
    tail = RawTail(3)
    for chunk in (b"a\nb\n", b"c\nd\ne\nf", b"\n"):
        assert tail.push(RawChunk(chunk, "stdout")) == []
    kept = tail.release()
    assert [(c.raw, c.stream) for c in kept if isinstance(c, RawChunk)] == [
        (b"d\ne\nf", "stdout"),
        (b"\n", "stdout"),
    ]
    live = RawChunk(b"live\n")
    assert tail.push(live) == [live]
    assert RawTail(0).release() == []


def test_raw_tail_is_tail_n_whatever_the_chunks() -> None:
    for seed in range(500):
        check_raw_tail(random.Random(seed))


def check_raw_tail(rng: random.Random) -> None:
    lines = [rng.choice(["", "x", "yy", "a longer line"]) for _ in range(rng.randrange(0, 12))]
    text = "\n".join(lines).encode() + rng.choice([b"", b"\n", b"partial"])
    n = rng.randrange(0, 8)
    cuts = sorted(rng.sample(range(1, len(text)), min(max(len(text) - 1, 0), rng.randrange(6))))
    chunks = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True) if j > i]
    tail = RawTail(n)
    for chunk in chunks:
        tail.push(RawChunk(chunk))
    kept = tail.release()
    want = b"".join(text.splitlines(keepends=True)[-n:]) if n else b""
    assert b"".join(c.raw for c in kept if isinstance(c, RawChunk)) == want, (chunks, n)
    assert len(kept) <= len(chunks)


def test_process_filter() -> None:
    keep = ProcessFilter(
        frozenset({"p1"}), frozenset({"process_failed"}), frozenset({"claude_code"})
    )
    event = ProcessEvent({"type": "process_failed", "processId": "p1", "executor": "CLAUDE_CODE"})
    assert keep(event)
    assert not keep(ProcessEvent({"type": "process_failed", "processId": "p2"}))
    assert not keep(ProcessEvent({"type": "process_started", "processId": "p1"}))


@pytest.mark.parametrize(
    ("event", "status"),
    [
        ({"type": "process_completed", "exitCode": 0}, 0),
        ({"type": "process_completed", "exitCode": None}, 0),
        ({"type": "process_completed", "exitCode": 300}, 44),
        ({"type": "process_failed", "exitCode": 3}, 3),
        ({"type": "process_failed", "exitCode": 256}, 125),
        ({"type": "process_failed", "exitCode": None}, 125),
        ({"type": "process_stopped"}, 137),
    ],
)
def test_exit_status_of_a_process(event: dict[str, object], status: int) -> None:
    assert exit_status(ProcessEvent({"processId": "p", **event})) == status
