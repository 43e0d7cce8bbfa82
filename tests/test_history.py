"""Where a history ends: the rules of forgectl/stream/history.py on the timings seen
on real links (the frames' arrival times measured on the real server and the
reference server), replayed exactly, so each case is deterministic."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from forgectl.stream.history import CAP, CUT, Boundary, SettledHistory, TailHistory

MS = 0.001
SETTLE = 0.5
FIRST_WAIT = 1.0


@dataclass
class Batch:
    """A network read: ``frames`` frames after the client waited ``wait`` seconds
    (``received`` bytes of a frame still arriving meanwhile, if any)."""

    wait: float
    frames: int = 1
    received: int = 0
    work: float = 0.0  # seconds the client then spends on it (not waiting)


def run(
    rule: Callable[[float, float, float], Boundary],
    batches: list[Batch],
    *,
    then_quiet: float = 5.0,
) -> Result:
    """Feed the batches (frames numbered in order), then ``then_quiet`` seconds of
    silence, polling as the read loop does; where did it cut, and when."""
    history = rule(0.0, SETTLE, FIRST_WAIT)
    now = 0.0
    fed: list[int] = []
    cut_at: int | None = None
    decided: float | None = None
    number = 0

    def take(out: list[list[bytes]]) -> None:
        nonlocal cut_at, decided
        for frames in out:
            if frames is CUT:
                cut_at, decided = len(fed), now
            else:
                fed.extend(int(f) for f in frames)

    for batch in batches:
        # The loop wakes when the history is due while it waits.
        due = history.due()
        if not history.over and now + batch.wait >= due > now:
            since, now = now, due
            take(history.wait(since, now, batch.received))
            remaining = batch.wait - (due - since)
        else:
            remaining = batch.wait
        now += remaining
        frames = [str(number + i).encode() for i in range(batch.frames)]
        number += batch.frames
        take(history.batch(now, remaining, batch.received, frames))
        now += batch.work
    end = now + then_quiet
    while not history.over and history.due() <= end:
        since, now = now, history.due()
        take(history.wait(since, now))
    take(history.flush())
    return Result(cut_at, decided, fed, number, getattr(history, "capped", 0.0))


@dataclass
class Result:
    cut: int | None  # frames before the cut
    decided: float | None  # when (seconds after opening)
    fed: list[int]  # frames fed, in order
    total: int
    capped: float = 0.0  # the settled rule's cap ended it (its seconds)

    def contiguous(self) -> bool:
        return self.fed == list(range(self.total))


def live(count: int, every: float) -> list[Batch]:
    return [Batch(every) for _ in range(count)]


# -- --tail: early ---------------------------------------------------------------------


def test_tail_real_server_raw_history_in_two_reads_then_100_lines_a_second() -> None:
    # Measured: 16 frames, a 4.8 ms pause, 56 frames in one read, then a line per 10 ms.
    result = run(TailHistory, [Batch(0, 16), Batch(4.8 * MS, 56), *live(30, 10 * MS)])
    assert result.cut == 72
    assert result.contiguous()


def test_tail_reference_server_history_with_a_pause_then_slow_live_lines() -> None:
    # A Python server: a frame every 0.1 ms with a 2.4 ms hiccup, then a line per 200 ms.
    gaps = [0.1, 0.15, 2.4, 0.13, 0.11, 0.09, 0.17, 0.09, 0.08, 0.07]
    history = [Batch(1.2 * MS)] + [Batch(g * MS) for g in gaps]
    result = run(TailHistory, [*history, *live(5, 200 * MS)])
    assert result.cut == len(history)
    assert result.contiguous()


def test_tail_big_history_read_as_fast_as_the_client_can_then_1000_lines_a_second() -> None:
    history = [Batch(0, 50)] + [Batch(0.005 * MS, 200) for _ in range(40)]
    result = run(TailHistory, [*history, *live(200, 1 * MS)])
    assert result.cut == 50 + 40 * 200
    assert result.contiguous()


def test_tail_empty_history_then_live_output() -> None:
    result = run(TailHistory, live(10, 50 * MS))
    assert result.cut == 0  # the first frame came late: it is live
    assert result.contiguous()


def test_tail_empty_history_then_live_events_in_quick_pairs() -> None:
    # Measured on a fresh real server's event stream (nothing to replay): a task
    # and its process created 63 ms after opening, the server's frames in pairs
    # 0.5 ms apart. The pair is not the history's pace: there is no history.
    waits = [63.0, 0.5, 31.9, 0.6, 0.4, 2.4, 251.8, 0.8, 2.6, 0.7]
    result = run(TailHistory, [Batch(w * MS) for w in waits])
    assert result.cut == 0
    assert result.contiguous()


def test_tail_a_late_history_arriving_as_a_backlog_is_still_history() -> None:
    # A loaded server starts its history 40 ms late, then sends it all at once.
    history = [Batch(40 * MS, 2), Batch(0.01 * MS, 60), Batch(0.01 * MS, 60)]
    result = run(TailHistory, [*history, *live(10, 10 * MS)])
    assert result.cut == 122
    assert result.contiguous()


def test_tail_a_pause_inside_the_history_is_not_its_end() -> None:
    # The server paused 0.8 ms, then went on at full speed: rejected.
    history = [Batch(0, 30), Batch(0.8 * MS, 1), Batch(0.002 * MS, 40), Batch(0.003 * MS, 40)]
    result = run(TailHistory, [*history, *live(10, 10 * MS)])
    assert result.cut == 111
    assert result.contiguous()


def test_tail_a_pause_and_one_slow_read_inside_the_history_are_not_its_end() -> None:
    # One read after the pause came slowly too; the burst then resumed: rejected.
    history = [Batch(0, 30), Batch(0.8 * MS, 1), Batch(0.3 * MS, 1), Batch(0.002 * MS, 40)]
    result = run(TailHistory, [*history, *live(10, 10 * MS)])
    assert result.cut == 72
    assert result.contiguous()


def test_tail_live_lines_accumulated_while_the_client_was_descheduled_still_confirm() -> None:
    # 1,000 lines/s; the client loses the CPU for 8 ms once: 8 lines in one read.
    batches = [Batch(0, 60), *live(3, 1 * MS), Batch(8 * MS, 8), *live(5, 1 * MS)]
    result = run(TailHistory, batches)
    assert result.cut == 60
    assert result.contiguous()


def test_tail_history_then_silence() -> None:
    result = run(TailHistory, [Batch(0, 25)])
    assert (result.cut, result.decided) == (25, SETTLE)


def test_tail_nothing_at_all() -> None:
    result = run(TailHistory, [])
    assert (result.cut, result.decided) == (0, FIRST_WAIT)


def test_tail_a_producer_faster_than_any_pause_still_ends_it() -> None:
    # 20,000 lines/s: waits of 0.05 ms, the client idle half the time.
    batches = [Batch(0, 40), *[Batch(0.05 * MS, 1) for _ in range(12_000)]]
    result = run(TailHistory, batches)
    assert result.cut is not None and result.decided is not None
    assert result.decided <= SETTLE + 0.05
    assert result.contiguous()


# -- without --follow, --until-idle: late ----------------------------------------------


def test_settled_returns_within_about_a_second_whatever_the_producer_pace() -> None:
    for every in (50 * MS, 10 * MS, 1 * MS):  # 20, 100, 1,000 lines/s
        result = run(SettledHistory, [Batch(0, 500), *live(int(3 / every), every)])
        assert result.decided is not None and result.decided <= 2 * SETTLE + 0.05, every
        assert result.cut is not None and result.cut >= 500, every  # the whole history
        assert result.contiguous()


def test_settled_waits_while_a_big_history_is_being_read() -> None:
    # 3 s of a history the client reads as fast as it can (10 ms of work per read,
    # the next read already there), then live lines at 100/s.
    history = [Batch(0.01 * MS, 100, work=10 * MS) for _ in range(300)]
    result = run(SettledHistory, [*history, *live(100, 10 * MS)])
    assert result.cut is not None and result.cut >= 300 * 100
    assert result.decided is not None and 3.0 <= result.decided <= 3.0 + 2 * SETTLE
    assert result.contiguous()


def test_tail_waits_while_a_big_history_is_being_read() -> None:
    history = [Batch(0.01 * MS, 100, work=10 * MS) for _ in range(300)]
    result = run(TailHistory, [*history, *live(50, 10 * MS)])
    assert result.cut == 300 * 100
    assert result.contiguous()


def test_event_stream_bursts_after_the_replay_are_live() -> None:
    """The real server's event replay is one burst; a process started 0.3 s later
    comes as a burst of its own (its task, its attempt, the process, back to back).
    On an event stream that burst is live; on a log it would say the server had only
    paused, and the cut moves on (measured: a dev server started 0.3-0.7 s after
    monitor was taken for the replay, and hidden, 4 times in 12)."""
    replay = [Batch(0.004, 5)] + [Batch(0.001, 5) for _ in range(9)]
    start = [Batch(0.3, 2), Batch(0.0002, 1), Batch(0.0003, 2)]  # one change, four reads
    stop = [Batch(2.0, 2), Batch(0.0002, 1)]
    events = run(functools.partial(TailHistory, bursts=True), [*replay, *start, *stop])
    assert events.cut == 50 and events.contiguous()
    logs = run(TailHistory, [*replay, *start, *stop])
    assert logs.cut is not None and logs.cut > 50  # the pause rule, as logs need it


def test_settled_ends_at_the_cap_when_the_client_never_waits() -> None:
    """A client starved of CPU finds live lines waiting at every read, as if they were
    a history: it ends anyway, at the cap, and says it was the cap."""
    starved = [Batch(0.0, 20, work=20 * MS) for _ in range(600)]  # 12 s, never waiting
    result = run(SettledHistory, starved)
    assert result.decided is not None and CAP <= result.decided <= CAP + 0.05
    assert result.capped == CAP and result.contiguous()
    usual = run(SettledHistory, [Batch(0, 500), *live(300, 10 * MS)])
    assert usual.decided is not None and usual.decided < CAP and not usual.capped


def test_settled_a_big_frame_arriving_is_not_silence() -> None:
    # 3 s waiting for one 64 MiB frame, at 20 MiB/s: busy, not quiet.
    big = Batch(3.0, 1, received=64 << 20)
    result = run(SettledHistory, [Batch(0, 10), big, Batch(0.01 * MS, 5)])
    assert result.cut == 16  # it waited for the frame and what followed at once


def test_settled_junk_at_20_a_second_or_a_trickling_frame_do_not_hold_it() -> None:
    junk = run(SettledHistory, [Batch(0, 5), *live(100, 50 * MS)])
    assert junk.decided is not None and junk.decided <= 2 * SETTLE + 0.06
    trickle = run(SettledHistory, [Batch(0, 5), Batch(10.0, 1, received=200)])
    assert trickle.decided == 2 * SETTLE and trickle.cut == 5


def test_a_big_first_frame_still_arriving_at_the_first_wait_is_waited_for() -> None:
    # The history is one 4 MiB frame on a slow link: 2 s on its way (2 MiB/s), longer
    # than the first wait. It is the history, not an empty one.
    for rule in (SettledHistory, TailHistory):
        big = Batch(2.0, 1, received=4 << 20)
        result = run(rule, [big, *live(5, 100 * MS)])
        assert result.cut is not None and result.cut >= 1, rule
        assert result.contiguous()


def test_a_first_frame_trickling_in_does_not_hold_an_empty_history() -> None:
    # 200 bytes over 20 s before any frame: no history came, at the first wait.
    result = run(SettledHistory, [Batch(20.0, 1, received=200)])
    assert (result.cut, result.decided) == (0, FIRST_WAIT)


def test_settled_nothing_at_all_is_an_empty_history() -> None:
    result = run(SettledHistory, [])
    assert (result.cut, result.decided) == (0, FIRST_WAIT)
