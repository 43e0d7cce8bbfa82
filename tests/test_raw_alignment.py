"""Lining up two copies of one raw output (forgectl/dialects/forge/logs.py): what a
connection that joined a busy process lost is put back in its place, once, and
nothing either copy has is dropped or repeated."""

from __future__ import annotations

import random
from typing import Any

import pytest

from forgectl.dialects.forge.logs import HISTORY_MARK, RawAlignment


def chunk(i: int, stream: str = "STDOUT") -> dict[str, Any]:
    return {"type": stream, "content": f"line {i}\n"}


def align(
    ours: list[int], theirs: list[int], *, interleave: int = 1, mark: int | None = None
) -> list[Any]:
    """Feed both copies, ``interleave`` chunks of ours for each of theirs; return
    what comes out, in order (the history mark as the string "MARK")."""
    alignment = RawAlignment()
    ours_left = [chunk(i) for i in ours]
    theirs_left = [chunk(i) for i in theirs]
    fed = 0
    while ours_left or theirs_left:
        for _ in range(interleave):
            if ours_left:
                alignment.ours.append(ours_left.pop(0))
                alignment.received += 1
                fed += 1
                if mark is not None and fed == mark:
                    alignment.mark()
        if theirs_left:
            alignment.theirs.append(theirs_left.pop(0))
        alignment.step()
    alignment.end()
    return [
        "MARK" if value is HISTORY_MARK else int(value["content"].split()[1])
        for value in alignment.ready
    ]


def test_identical_copies_pass_through_once() -> None:
    assert align(list(range(10)), list(range(10))) == list(range(10))


@pytest.mark.parametrize("interleave", [1, 3, 10])
def test_what_ours_lost_at_the_join_is_put_back_in_its_place(interleave: int) -> None:
    ours = [*range(0, 20), *range(23, 40)]  # lost 20..22 at the switch to live
    assert align(ours, list(range(40)), interleave=interleave) == list(range(40))


def test_what_the_later_copy_lost_at_its_own_join_costs_nothing() -> None:
    theirs = [*range(0, 30), *range(31, 40)]
    assert align(list(range(40)), theirs) == list(range(40))


def test_both_lost_something_at_different_places() -> None:
    ours = [*range(0, 10), *range(12, 40)]
    theirs = [*range(0, 25), *range(26, 40)]
    assert align(ours, theirs) == list(range(40))


def test_the_later_copy_ends_first_and_ours_goes_on() -> None:
    ours = [*range(0, 15), *range(16, 60)]
    assert align(ours, list(range(30))) == list(range(60))


def test_a_loss_right_before_the_later_copy_ends_is_found_at_the_end() -> None:
    # Fewer than MATCH chunks follow the lost one in the copy: lined up on what is left.
    ours = [*range(0, 38)]
    theirs = [*range(0, 38), 38, 39]
    ours_after_loss = [*range(0, 37), 38]  # 37 lost; the copy ends at 39
    assert align(ours_after_loss, [*range(0, 40)]) == [*range(0, 40)]
    assert align(ours, theirs) == list(range(40))


def test_the_history_mark_stays_after_the_chunks_it_followed() -> None:
    ours = [*range(0, 20), *range(22, 30)]
    out = align(ours, list(range(30)), mark=20)
    assert out == [*range(0, 20), "MARK", *range(20, 30)]


def test_repeated_chunks_do_not_fool_it() -> None:
    # A dev server printing the same line over and over: losses are invisible
    # (nothing tells which copy of a line went), and nothing is invented.
    alignment = RawAlignment()
    for _ in range(50):
        alignment.ours.append({"type": "STDOUT", "content": "tick\n"})
        alignment.received += 1
        alignment.theirs.append({"type": "STDOUT", "content": "tick\n"})
        alignment.step()
    alignment.end()
    assert len(alignment.ready) == 50 and alignment.lost == 0


def test_random_losses_in_either_copy_are_healed() -> None:
    # The later copy joined later: what it lost comes at or after what ours lost.
    rng = random.Random(7)
    for _ in range(300):
        n = rng.randint(20, 200)
        whole = list(range(n))
        cut_ours, lost_ours = rng.randint(1, n - 10), rng.randint(1, 4)
        cut_theirs, lost_theirs = rng.randint(cut_ours, n - 5), rng.randint(0, 3)
        ours = [i for i in whole if not cut_ours <= i < cut_ours + lost_ours]
        theirs = [i for i in whole if not cut_theirs <= i < cut_theirs + lost_theirs]
        if set(ours) | set(theirs) != set(whole):
            continue  # both lost the same chunk: nothing can bring it back
        got = align(ours, theirs, interleave=rng.randint(1, 5))
        assert got == whole, (ours, theirs)
