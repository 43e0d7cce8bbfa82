"""The documented dialect's resend filter: what a reconnect may and may not print."""

from __future__ import annotations

from forgectl.diagnostics import Diagnostics
from forgectl.dialects.resend import CHECKPOINT, EXACT, ResendFilter


def _filter() -> tuple[ResendFilter, list[str]]:
    said: list[str] = []
    return ResendFilter(Diagnostics(lambda level, line: said.append(line))), said


def _emit(resend: ResendFilter, frames: list[bytes]) -> list[bytes]:
    """What a decoder prints for these frames, on one connection."""
    out: list[bytes] = []
    for frame in frames:
        if resend.replaying:
            out.extend(resend.replay(frame))
        else:
            resend.take(frame)
            out.append(frame)
    return out


def _msgs(start: int, stop: int, tag: str = "m") -> list[bytes]:
    return [f"{tag}{i}".encode() for i in range(start, stop)]


def test_an_identical_resend_is_skipped_and_the_rest_printed() -> None:
    resend, said = _filter()
    assert _emit(resend, _msgs(0, 10)) == _msgs(0, 10)
    resend.connected()
    assert _emit(resend, _msgs(0, 15)) == _msgs(10, 15)
    assert said == []


def test_a_server_that_does_not_resend_loses_nothing() -> None:
    resend, said = _filter()
    _emit(resend, _msgs(0, 10))
    resend.connected()
    assert _emit(resend, _msgs(10, 14)) == _msgs(10, 14)
    assert said == []  # not resending is legitimate: nothing to report


def test_a_short_history_that_differs_is_printed_from_the_difference() -> None:
    resend, said = _filter()
    _emit(resend, _msgs(0, 10))
    resend.connected()
    changed = [*_msgs(0, 4), b"other", *_msgs(5, 12)]
    assert _emit(resend, changed) == [b"other", *_msgs(5, 12)]
    assert len(said) == 1 and "#4" in said[0]
    # The resent history is the reference for the next reconnect.
    resend.connected()
    assert _emit(resend, [*changed, b"new"]) == [b"new"]


def test_a_long_history_that_differs_repeats_rather_than_loses() -> None:
    resend, said = _filter()
    total = EXACT + 5 * CHECKPOINT + 10
    first = _msgs(0, total)
    _emit(resend, first)
    resend.connected()
    bad = EXACT + 2 * CHECKPOINT + 7  # inside the third window past EXACT
    changed = [*first[:bad], b"other", *first[bad + 1 :], b"tail"]
    out = _emit(resend, changed)
    window_start = EXACT + 2 * CHECKPOINT
    # Everything from the last good checkpoint is printed again: no loss.
    assert out == changed[window_start:]
    assert "repeated" in said[0]
    resend.connected()
    assert _emit(resend, [*changed, b"more"]) == [b"more"]


def test_many_messages_keep_memory_flat() -> None:
    resend, _ = _filter()
    for i in range(200_000):
        resend.take(b"%d" % i)
    assert len(resend.exact) == EXACT
    assert len(resend.marks) == (200_000 - EXACT) // CHECKPOINT
