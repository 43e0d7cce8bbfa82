"""Log streams: raw output and normalized entries, exactly once over reconnects."""

from __future__ import annotations

import itertools
import math
import time
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable
from difflib import SequenceMatcher
from typing import TYPE_CHECKING, Any

import orjson
from orjson import JSONDecodeError, loads

from ...events import BACKLOG_END, Event, LogEntry, RawChunk, deep_json
from ..patch import ops_of, split
from .base import _ENTRIES_LEN, ENTRIES, MAX_AHEAD, PatchDecoder, _index
from .schema import _STREAMS, _raw_line, entry_line, normalize_entry

if TYPE_CHECKING:
    from ...diagnostics import Diagnostics
    from ..patch import Frame


class _EntriesDecoder(PatchDecoder):
    """Log streams: ``add /entries/<n>``; history resent from 0 on reconnect."""

    def __init__(self, diag: Diagnostics) -> None:
        super().__init__(diag)
        self.emitted = 0  # entries 0 .. emitted-1 have been emitted
        self.next_path = f"{ENTRIES}0"  # and this is where the next one goes
        self.connections = 0
        #: this connection: the highest index it resent, and whether it brought a new entry
        self.resent_to = -1
        self.brought_new = False

    def connected(self) -> None:
        self.connections += 1
        self.resent_to = -1
        self.brought_new = False

    def emitted_to(self, count: int) -> None:
        self.emitted = count
        self.next_path = f"{ENTRIES}{count}"
        self.brought_new = True

    def check_resent(self) -> None:
        """At the end of a history resent after a reconnect: say so if it is
        shorter than what was printed before (the server lost some of its log)."""
        if self.connections > 1 and not self.brought_new and self.resent_to + 1 < self.emitted:
            self.diag.warning(
                f"after reconnecting, the server resent {self.resent_to + 1} log entries, "
                f"fewer than the {self.emitted} already printed: its log is shorter now"
            )
            self.brought_new = True  # once

    def feed(self, frame: bytes | str) -> Iterable[Event]:
        # The hot paths: the next entry, added whole by a one-op frame, as the
        # server sends logs, live or replayed; and a streaming agent's usual
        # frame, a one-op replace of the entry held back. next_added() and
        # held_replaced() take them if the entry has its usual shape; anything
        # else (other replacements, resends, malformed frames) takes the general
        # path, parsed once.
        try:
            obj = loads(frame)
        except JSONDecodeError:
            return PatchDecoder.feed(self, frame)  # reports it
        try:
            (op,) = obj["JsonPatch"]
            value = op["value"]
            path = op["path"]
            name = op["op"]
        except (LookupError, TypeError, ValueError):
            return self.feed_entry(obj)
        if path == self.next_path and name == "add":
            events = self.next_added(value)
            if events is not None:
                return events
        elif path == self.held_path and name == "replace":
            events = self.held_replaced(value)
            if events is not None:
                return events
        return self.feed_entry(obj)

    #: The path of the entry held back (see :meth:`held_replaced`); "" for none.
    held_path = ""

    def next_added(self, value: Any) -> tuple[Event, ...] | None:
        """The events for the next entry, added whole, if it has the usual shape;
        otherwise None, having changed nothing (the general path takes it)."""
        return None

    def held_replaced(self, value: Any) -> tuple[Event, ...] | None:
        """The events for a new version of the entry held back (at
        :attr:`held_path`), if it has the usual shape; otherwise None, having
        changed nothing (the general path takes it)."""
        return None

    def feed_entry(self, obj: Any) -> Iterable[Event]:
        # One ``add``/``replace`` of a known or the next entry per frame. Anything
        # else takes the general path.
        ops = obj.get("JsonPatch") if type(obj) is dict else None
        if type(ops) is list and len(ops) == 1:
            op = ops[0]
            if type(op) is dict:
                path = op.get("path")
                value = op.get("value")
                name = op.get("op")
                if (
                    (name == "add" or name == "replace")
                    and type(path) is str
                    and path.startswith(ENTRIES)
                    and type(value) is dict
                ):
                    index = _index(path[_ENTRIES_LEN:])
                    if index is not None and index <= self.emitted:
                        self.touched(index)
                        out: list[Event] = []
                        self.entry(index, value, name == "replace", out)
                        if index == self.emitted:
                            self.emitted_to(index + 1)
                        return out
        return self.feed_object(obj)

    def apply(self, frame: Frame) -> list[Event]:
        out: list[Event] = []
        for op, path, value in ops_of(frame):
            index = _index(split(path, ENTRIES))
            if index is None or op not in ("add", "replace", "remove"):
                self.unknown_path(op, path)
                continue
            if op == "remove":
                continue
            if type(value) is not dict:
                self.diag.bad_frame("unexpected log entry", f"{path}: not an object")
                continue
            if index > self.emitted + MAX_AHEAD:
                self.diag.bad_frame(
                    "log entry far past the last one", f"{op} {path}: next is {self.emitted}"
                )
                continue
            self.touched(index)
            if index > self.emitted:
                self.gap(self.emitted, index)
            self.entry(index, value, op == "replace", out)
            if index >= self.emitted:
                self.emitted_to(index + 1)
        return out

    def entry(self, index: int, value: dict[str, Any], replace: bool, out: list[Event]) -> None:
        raise NotImplementedError

    def finish(self) -> list[Event]:
        self.check_resent()
        return []

    def touched(self, index: int) -> None:
        """A frame of this connection patched entry ``index`` (the general path)."""
        if index > self.resent_to:
            self.resent_to = index

    def gap(self, start: int, stop: int) -> None:
        """Entries ``start`` to ``stop - 1`` were skipped: the next came first."""
        self.diag.warning(f"log entries {start}..{stop - 1} never arrived; output has a gap there")


class ForgeRawDecoder(_EntriesDecoder):
    """``{"type":"STDOUT"|"STDERR","content":...}`` → the bytes, verbatim.

    The server drops output when a client joins a busy process (see
    :class:`ForgeLogsDecoder`), and raw entries are numbered per connection, so
    a lost chunk leaves no gap: the later ones just move up. With ``follow``, a
    connection's chunks are therefore held until a second connection's copy of
    the history confirms them (:class:`RawAlignment`), and chunks it lost are
    put back in their place; past that copy's end, everything goes straight out.
    """

    def __init__(self, diag: Diagnostics, follow: bool = False, *, ended: bool = False) -> None:
        super().__init__(diag)
        self.follow = follow
        self.ended = ended
        self.verifies = follow and not ended
        self.alignment: RawAlignment | None = None
        #: chunks lost on the last connection (its numbering is that many behind)
        self.shift = 0
        #: the check is over; the alignment stays open this long for us to catch up
        self.catch_up_until = math.inf
        self.printed_before = 0

    def connected(self) -> None:
        super().connected()
        if self.shift:
            self.emitted_to(self.emitted + self.shift)
            self.shift = 0
        self.alignment = None
        #: what was printed before this connection: its resend, skipped by index
        self.printed_before = self.emitted

    def next_added(self, value: Any) -> tuple[Event, ...] | None:
        if self.alignment is not None:
            return None  # held for the alignment: the general path
        try:
            content = value["content"]
            stream = _STREAMS.get(value["type"]) if type(content) is str else None
        except (LookupError, TypeError):
            return None
        if stream is None:
            return None
        self.emitted_to(self.emitted + 1)
        return (RawChunk(content.encode(), stream),)

    def entry(self, index: int, value: dict[str, Any], replace: bool, out: list[Event]) -> None:
        if index < self.emitted:
            return  # already written: raw output is never rewritten
        content = value.get("content")
        kind = value.get("type")
        if type(content) is not str or (kind is not None and type(kind) is not str):
            self.diag.bad_frame("unexpected log entry", f"entry {index}: no text content")
            return
        alignment = self.alignment
        if alignment is not None:
            alignment.ours.append(value)
            alignment.received += 1
            alignment.step()
            out.extend(self.checked_events())
            if self.catch_up_until < math.inf and not alignment.theirs:
                out.extend(self._close_alignment())  # caught up with the copy
            return
        self.chunk(value, out)

    def chunk(self, value: dict[str, Any], out: list[Event]) -> None:
        """One chunk of output, in its place in the sequence, as events."""
        kind = value.get("type")
        content = value["content"]
        out.append(RawChunk(content.encode(), kind.lower() if type(kind) is str else None))

    def verifier(self) -> RawVerifier | None:
        if not self.verifies or self.done:
            return None
        self.alignment = RawAlignment()
        return RawVerifier(self.alignment, self.printed_before)

    def holding(self) -> bool:
        return self.alignment is not None

    def history_over(self) -> list[Event]:
        # The driver's cut falls after the chunks received so far: it goes out
        # with them, in its place, when they are confirmed.
        if self.alignment is not None:
            self.alignment.mark()
            return self.checked_events()
        return []

    def checked_events(self) -> list[Event]:
        alignment = self.alignment
        if alignment is None or not alignment.ready:
            return []
        out: list[Event] = []
        for value in alignment.ready:
            if value is HISTORY_MARK:
                out.append(BACKLOG_END)
            else:
                self.chunk(value, out)
        alignment.ready.clear()
        return out

    def verified(self, check: Any) -> list[Event]:
        """The later copy is read: our chunks it has confirmed go out, and ours
        stay held a moment more while this connection catches up with it."""
        alignment = self.alignment
        if alignment is None:
            return []
        alignment.step()
        if not alignment.theirs or check is None or self.done:
            return self._close_alignment()
        self.catch_up_until = self.wake_at = time.monotonic() + CATCH_UP
        return self.checked_events()

    def check_abandoned(self) -> list[Event]:
        return self._close_alignment() if self.alignment is not None else []

    def quiet(self) -> list[Event]:
        # Called at wake_at: this connection never got what the copy still has.
        if self.alignment is not None and time.monotonic() >= self.catch_up_until:
            return self._close_alignment()
        return []

    def _close_alignment(self) -> list[Event]:
        alignment = self.alignment
        assert alignment is not None
        alignment.end()
        out = self.checked_events()
        self.shift = alignment.lost
        if alignment.lost:
            self.diag.trace(f"{alignment.lost} chunks the server dropped at the join were put back")
        if alignment.unaligned:
            self.diag.warning(
                "could not match the output against a second reading of it: "
                "a chunk the server dropped when forgectl joined may be missing"
            )
        self.alignment = None
        self.wake_at = self.catch_up_until = math.inf
        return out

    def finish(self) -> list[Event]:
        # With the check still running, what the alignment holds comes out when
        # it ends (verified(), which the driver waits for once the stream is
        # done); once the check is over, now.
        out = super().finish()
        if self.alignment is not None and self.catch_up_until < math.inf:
            out = self._close_alignment() + out
        return out


#: Where the history ends, among the chunks an alignment passes on.
HISTORY_MARK: dict[str, Any] = {}

#: After the later copy is read, how long this connection may take to catch up
#: with it before what it still lacks counts as lost at its join.
CATCH_UP = 2.0


class RawAlignment:
    """Two copies of one raw output, lined up chunk by chunk: ``ours`` (this
    connection's chunks, held) and ``theirs`` (a later connection's history).

    Where they agree, our chunk is confirmed (:attr:`ready`). Where ours lacks a
    run of theirs (this connection lost it at its join), theirs go out in its
    place; where theirs lack a run of ours (that copy lost its own), ours go
    out. A difference is settled once :data:`MATCH` chunks after it agree again,
    within :data:`LOOK` chunks.
    """

    LOOK = 256
    MATCH = 3

    def __init__(self) -> None:
        self.ours: deque[dict[str, Any]] = deque()
        self.theirs: deque[dict[str, Any]] = deque()
        self.ready: list[dict[str, Any]] = []
        self.lost = 0  # chunks this connection had lost, put back
        self.unaligned = False
        self.received = 0  # our chunks so far
        self.released = 0  # ... and those passed on
        #: the end of the history falls after this many of our chunks
        self.mark_after: int | None = None

    def mark(self) -> None:
        """The history ends after our chunks so far."""
        self.mark_after = self.received
        self._place_mark()

    def _place_mark(self) -> None:
        if self.mark_after is not None and self.released >= self.mark_after:
            self.ready.append(HISTORY_MARK)
            self.mark_after = None

    def _ours(self) -> None:
        self.ready.append(self.ours.popleft())
        self.released += 1
        self._place_mark()

    def step(self, final: bool = False) -> None:
        """Line up what both copies have; ``final``: neither grows any more, so
        what is left lines up however short."""
        ours, theirs = self.ours, self.theirs
        while ours and theirs:
            if _same(ours[0], theirs[0]):
                self._ours()
                theirs.popleft()
                continue
            if not self._resync(final):
                return  # wait for more of one copy or the other

    def _resync(self, final: bool) -> bool:
        """The copies differ at their heads: line up their next LOOK chunks (a
        longest-common-subsequence diff, difflib's) up to the first run of MATCH
        chunks both have, and pass on what comes before it: ours where the copy
        lacks it, theirs where ours does (ours' losses first: they are older)."""
        ours, theirs = self.ours, self.theirs
        a = [_key(v) for v in itertools.islice(ours, self.LOOK)]
        b = [_key(v) for v in itertools.islice(theirs, self.LOOK)]
        anchor = next(
            (
                m
                for m in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()
                if m.size >= self.MATCH or (final and m.size) or (m.size and m.a + m.size == len(a))
            ),
            None,
        )
        if anchor is None:
            if final or (len(a) >= self.LOOK and len(b) >= self.LOOK):
                self.unaligned = True  # nothing lines up: stop holding
                while ours:
                    self._ours()
                theirs.clear()
            return False
        before = SequenceMatcher(None, a[: anchor.a], b[: anchor.b], autojunk=False)
        for tag, i1, i2, j1, j2 in before.get_opcodes():
            if tag == "equal":
                for _ in range(i2 - i1):
                    self._ours()
                    theirs.popleft()
                continue
            if tag in ("insert", "replace"):  # ours lost them
                for _ in range(j2 - j1):
                    self.ready.append(theirs.popleft())
                self.lost += j2 - j1
            if tag in ("delete", "replace"):  # the copy lost them
                for _ in range(i2 - i1):
                    self._ours()
        return True

    def end(self) -> None:
        """That later copy is over: what lines up, then ours as they are; chunks of
        theirs ours never got, after it had time to, were lost by ours."""
        self.step(final=True)
        if self.theirs and not self.ours:
            self.lost += len(self.theirs)
            self.ready.extend(self.theirs)
        while self.ours:
            self._ours()
        self.theirs.clear()
        if self.mark_after is not None:
            self.ready.append(HISTORY_MARK)
            self.mark_after = None


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a.get("content") == b.get("content") and a.get("type") == b.get("type"))


def _key(value: dict[str, Any]) -> tuple[Any, Any]:
    return value.get("type"), value.get("content")


def _check_frame(frame: bytes | str) -> tuple[list[Any] | None, bool]:
    """A second copy's frame: its JSON Patch ops (None for anything else), and
    whether it is the server's ``{"finished": true}``."""
    try:
        obj = loads(frame)
    except JSONDecodeError:
        return None, False
    if type(obj) is not dict:
        return None, False
    ops = obj.get("JsonPatch")
    if type(ops) is list:
        return ops, False
    return None, obj.get("finished") is True


class RawVerifier:
    """Feeds a later connection's raw history into a :class:`RawAlignment`.

    Once that copy's history seems over (by how its link behaves), it is read
    on until it has confirmed every chunk this connection had by then: a
    starved or slow second connection must not stop short of the place where
    this one lost something.
    """

    def __init__(self, alignment: RawAlignment, start: int = 0) -> None:
        self.alignment = alignment
        self.finished = False
        self.target: int | None = None
        #: the copy's chunks before this index were printed before this connection
        self.start = start

    def needs_more(self) -> bool:
        alignment = self.alignment
        if self.target is None:
            self.target = alignment.received
        return not self.finished and alignment.released < self.target and not alignment.unaligned

    def feed(self, frame: bytes | str) -> None:
        ops, finished = _check_frame(frame)
        if ops is None:
            self.finished = self.finished or finished
            return
        for op in ops:
            if type(op) is dict and op.get("op") == "add":
                value, path = op.get("value"), op.get("path")
                index = _index(split(path, ENTRIES)) if type(path) is str else None
                if index is not None and index < self.start:
                    continue  # printed before this connection opened
                if type(value) is dict and type(value.get("content")) is str:
                    self.alignment.theirs.append(value)
        self.alignment.step()


class ForgeRawAsLogsDecoder(ForgeRawDecoder):
    """Raw output shown as normalized entries (script processes have no normalized
    stream once finished): one entry per line, stderr lines at level ``warn``."""

    def __init__(self, diag: Diagnostics, follow: bool = False, *, ended: bool = False) -> None:
        super().__init__(diag, follow, ended=ended)
        self.partial: dict[str, str] = {}
        self.lines = 0  # lines emitted: each one's metadata.index, as entries have

    next_added = _EntriesDecoder.next_added  # every entry is split into lines by chunk()

    def chunk(self, value: dict[str, Any], out: list[Event]) -> None:
        kind = value.get("type")
        stream = kind.lower() if type(kind) is str else "stdout"
        text = self.partial.pop(stream, "") + value["content"]
        lines = text.split("\n")
        if lines[-1]:
            self.partial[stream] = lines[-1]
        for line in lines[:-1]:
            out.append(self._line(line, stream))

    def _line(self, line: str, stream: str) -> LogEntry:
        self.lines += 1
        return _raw_line(line, stream, self.lines - 1)

    def finish(self) -> list[Event]:
        out = super().finish()
        if self.alignment is None:
            out.extend(self._rest())
        return out

    def verified(self, check: Any) -> list[Event]:
        out = super().verified(check)
        if self.done:
            out.extend(self._rest())
        return out

    def _rest(self) -> list[Event]:
        """The last line of each stream, if it had no newline."""
        out: list[Event] = [self._line(rest, stream) for stream, rest in self.partial.items()]
        self.partial.clear()
        return out

    def settled(self) -> list[Event]:
        return self._rest()


def _version_mark(doc: dict[str, Any]) -> int:
    """Identifies one version of a normalized entry, within this process, by what
    can change between versions: its text, level, source and everything under
    ``metadata`` but its index and revision. An entry with nothing more (most of
    them) is hashed without serializing anything: its kind alone gives its level and
    source."""
    meta = doc["metadata"]
    if len(meta) == 3:  # entryType, index, revision
        return hash((doc["message"], meta["entryType"]))
    mark = hash((doc["message"], doc["level"], doc["source"]))
    rest = {k: v for k, v in meta.items() if k != "index" and k != "revision"}
    try:
        text = orjson.dumps(rest, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # nested deeper than orjson writes
        text = deep_json(rest, sort_keys=True)
    return hash((mark, text))


#: Marks that are no version's: an entry that never arrived, one that was not a
#: normalized entry, one held but not printed yet.
_GAP, _BAD, _HELD = 0, 1, 2


class ForgeLogsDecoder(_EntriesDecoder):
    """Normalized entries, each printed once it stops changing, or again as a new revision.

    The server rewrites entries in place (``replace /entries/<n>``: streaming
    assistant text, a tool call's status, an error message read in two chunks),
    and a finished process's history replays every version, the first ones
    included. So the newest entry is held back until a later entry arrives, the
    stream ends or goes quiet (:attr:`quiet_after`, only with ``follow``: without
    it the backlog settles anyway): versions replaced meanwhile are never printed.
    A version replacing one already printed is printed again, with the same
    ``metadata.index`` and the next ``metadata.revision`` (0 first), unless it is
    the one printed last (the same text, kind and details). After a reconnect
    the history resends each entry's versions in order: as many as were seen
    before are skipped, so a version returning to an earlier state (a tool call
    ``created``, ``pending_approval``, then ``created`` again) is a new one, not a
    resend; a resent history with fewer versions of an entry than were seen
    (the server re-read a finished process's log) ends with that entry as the
    server has it now.

    The server drops messages when a client joins a busy stream (between copying
    its history and subscribing to live output): an added entry (a gap, which
    shows) or a replacement (which does not: the entry stays in a version the
    server has since replaced). So with ``follow`` every connection is checked
    once against a second one opened right after its first frame, whose history
    is a later copy (:class:`LogVerifier`): entries found missing or stale are
    printed, as new entries or new revisions. Gaps are reported only if that
    check could not heal them (or did not run).

    What it keeps per entry is 12 bytes however many versions the entry had
    (and a dict item for an entry printed more than once): a reconnect's
    history is skipped by it, so it lasts as long as the process's stream, and
    goes with the decoder when the process has finished (``logs --attempt``
    drops each process's stream then).
    """

    def __init__(self, diag: Diagnostics, follow: bool = True, *, ended: bool = False) -> None:
        super().__init__(diag)
        self.follow = follow
        self.ended = ended
        self.verifies = follow and not ended
        #: While this connection is being checked: index → hash of the latest frame
        #: that patched it (the hash of the frame being fed in ``_frame``).
        self.tracking: dict[int, int] | None = None
        self._frame = 0
        #: Entries skipped by a frame that came first (start, stop), not yet healed.
        self.gaps: list[tuple[int, int]] = []
        #: Per entry (``len(marks) == emitted``): the mark of the version printed
        #: last (or _GAP, _BAD, _HELD), and how many versions of it the server has
        #: sent (as its histories resend them, in order).
        self.marks = array("q")
        self.versions = array("I")
        #: the revision printed last of the entries printed more than once
        self.revisions: dict[int, int] = {}
        #: After a reconnect, per entry: versions this connection's history has
        #: yet to resend (None: no resend to skip); and the newest version it
        #: skipped that differs from ours, put in if the resend stops short.
        self.resending: array[int] | None = None
        self.owed: dict[int, dict[str, Any]] = {}
        #: the newest entry, normalized and marked, held until it stops changing
        self.pending: tuple[int, dict[str, Any], int] | None = None
        #: the history ended with ``pending`` still held: its end goes out after it
        self.end_after = False
        self.quiet_after = 0.25 if follow else None

    def connected(self) -> None:
        super().connected()
        self.tracking = {} if self.verifies and not self.done else None
        self.owed = {}
        self.resending = array("I", self.versions) if self.connections > 1 else None

    def feed(self, frame: bytes | str) -> Iterable[Event]:
        if self.tracking is not None:
            self._frame = hash(frame)
        return super().feed(frame)

    def touched(self, index: int) -> None:
        super().touched(index)
        tracking = self.tracking
        if tracking is not None:
            tracking[index] = self._frame

    def gap(self, start: int, stop: int) -> None:
        self.gaps.append((start, stop))  # reported if not healed (see _report_gaps)

    def verifier(self) -> LogVerifier | None:
        """After a connection's first frames: check it against a second one
        (only while following a process that has not finished)."""
        if self.tracking is None or self.done:
            self.tracking = None
            return None
        return LogVerifier(lambda: self.emitted)

    def check_abandoned(self) -> list[Event]:
        self.tracking = None  # the next connection is checked afresh
        return []

    def verified(self, check: Any) -> list[Event]:
        """The second connection's history is in (or could not be had: None):
        print what this connection missed, as the entries' next versions."""
        tracking, self.tracking = self.tracking, None
        out: list[Event] = []
        if isinstance(check, LogVerifier) and tracking is not None:
            seen = check.frames
            versions = self.versions
            for index in sorted(check.last):
                if index < len(versions) and check.versions[index] > versions[index]:
                    # The copy had versions this connection lost at its join:
                    # the next history resends them too.
                    versions[index] = check.versions[index]
                ours = tracking.get(index)
                if ours is not None and ours not in seen:
                    continue  # what we have is newer than that copy
                self.entry(index, check.last[index], True, out, heal=True)
                if index >= self.emitted:
                    self.emitted_to(index + 1)
            self._healed_by(check)
        self._report_gaps()
        if self.done:  # the stream has ended (finish() is past): nothing to wait for
            out.extend(self.quiet())
        return out

    def _healed_by(self, check: LogVerifier) -> None:
        """Indices the later copy does not have either were never the server's; past
        the copy's last entry it says nothing (it was cut short): those stay gaps."""
        top = max(check.last, default=-1)
        self.gaps = [
            (a, b)
            for a, b in self.gaps
            if b > top + 1 or any(i in check.last for i in range(a, min(b, top + 1)))
        ]

    def _report_gaps(self) -> None:
        for start, stop in self.gaps:
            marks = self.marks
            missing = [i for i in range(start, stop) if i >= len(marks) or marks[i] == _GAP]
            if missing:
                _EntriesDecoder.gap(self, missing[0], missing[-1] + 1)
        self.gaps = []

    def next_added(self, value: Any) -> tuple[Event, ...] | None:
        # entry() for the next entry, added whole: the schema maps it (its first
        # lines take the usual shape), the version mark and the hold inlined.
        try:
            plain = value["type"] == "NORMALIZED_ENTRY" and len(value) == 2
            content = value["content"]
        except (LookupError, TypeError):
            return None
        marks = self.marks
        index = self.emitted
        if not plain or len(marks) != index:
            return None
        doc = entry_line(content, index)
        if doc is None:
            return None
        meta = doc["metadata"]
        mark = hash((doc["message"], meta["entryType"])) if len(meta) == 3 else _version_mark(doc)
        marks.append(_HELD)
        self.versions.append(1)
        self.held_path = self.next_path
        self.emitted_to(index + 1)
        if self.tracking is not None:
            self.tracking[index] = self._frame
        pending = self.pending
        self.pending = (index, doc, mark)
        if pending is None:
            return ()
        held = pending[0]
        if self.end_after:
            self.end_after = False
            released = self._release(pending)
            return (BACKLOG_END,) if released is None else (released, BACKLOG_END)
        if marks[held] == _HELD:  # the usual case: printed once, in turn
            marks[held] = pending[2]
            return (LogEntry(pending[1]),)
        released = self._release(pending)
        return () if released is None else (released,)

    def held_replaced(self, value: Any) -> tuple[Event, ...] | None:
        # entry() for a new version of the held entry, live: the schema maps it,
        # the version counted and marked, the hold renewed; nothing to print yet.
        pending = self.pending
        try:
            plain = value["type"] == "NORMALIZED_ENTRY" and len(value) == 2
            content = value["content"]
        except (LookupError, TypeError):
            return None
        if not plain or pending is None or self.resending is not None:
            return None
        index = pending[0]
        doc = entry_line(content, index)
        if doc is None:
            return None
        if index > self.resent_to:
            self.resent_to = index
        if self.tracking is not None:
            self.tracking[index] = self._frame
        self.versions[index] += 1
        meta = doc["metadata"]
        mark = hash((doc["message"], meta["entryType"])) if len(meta) == 3 else _version_mark(doc)
        if mark != pending[2]:
            self.pending = (index, doc, mark)
        return ()

    def entry(
        self,
        index: int,
        value: dict[str, Any],
        replace: bool,
        out: list[Event],
        *,
        heal: bool = False,
    ) -> None:
        """One version of entry ``index``, as this connection brought it (or, to
        ``heal``, as the check's copy had it last)."""
        doc = normalize_entry(index, value)
        mark = _BAD if doc is None else _version_mark(doc)
        marks = self.marks
        pending = self.pending
        if index >= len(marks):  # a new entry
            versions = self.versions
            while len(marks) < index:
                marks.append(_GAP)
                versions.append(0)
            marks.append(_HELD)
            versions.append(0 if heal else 1)
        else:
            ours = pending[2] if pending is not None and pending[0] == index else marks[index]
            if heal:
                if ours == mark:
                    return  # what we have already
            else:
                resending = self.resending
                if resending is not None and index < len(resending) and resending[index]:
                    # A version seen before, resent by this connection's history:
                    # the last of them is the one we have, unless the resend
                    # stops short (see _settle_resend).
                    left = resending[index] = resending[index] - 1
                    if left:
                        if mark != ours and doc is not None:
                            self.owed[index] = value
                        else:
                            self.owed.pop(index, None)
                        return
                    self.owed.pop(index, None)
                else:
                    self.versions[index] += 1
                if ours == mark:
                    return  # nothing changed that anyone can see
            if marks[index] == _GAP:
                marks[index] = _HELD  # skipped before: it came after a later one
        if doc is None:
            if marks[index] == _HELD:
                marks[index] = _BAD
            self.diag.bad_frame("unexpected log entry", f"entry {index}: not a NORMALIZED_ENTRY")
            return
        if pending is not None and pending[0] != index:
            released = self._release(pending)
            if released is not None:
                out.append(released)
            if self.end_after:
                self.end_after = False
                out.append(BACKLOG_END)
        self.pending = (index, doc, mark)
        self.held_path = f"{ENTRIES}{index}"

    def _release(self, held: tuple[int, dict[str, Any], int]) -> LogEntry | None:
        """A held entry, to print: revision 0 the first time, the next one after;
        None if it is the version printed last."""
        index, doc, mark = held
        marks = self.marks
        last = marks[index]
        if last == mark:
            return None
        marks[index] = mark
        if last != _HELD and last != _BAD and last != _GAP:
            revision = self.revisions[index] = self.revisions.get(index, 0) + 1
            doc["metadata"]["revision"] = revision
        return LogEntry(doc)

    def _settle_resend(self) -> list[Event]:
        """This connection's history is over: the versions it still owed will not
        come; an entry it resent fewer versions of is as that history left it."""
        self.resending = None
        owed, self.owed = self.owed, {}
        out: list[Event] = []
        for index in sorted(owed):
            self.entry(index, owed[index], True, out, heal=True)
        return out

    def quiet(self) -> list[Event]:
        # A quiet link: this connection's history, if it resent one, is over.
        out = self._settle_resend() if self.resending is not None else []
        pending = self.pending
        if pending is None:
            return out
        self.pending = None
        self.held_path = ""
        released = self._release(pending)
        if released is not None:
            out.append(released)
        if self.end_after:
            self.end_after = False
            out.append(BACKLOG_END)
        return out

    def holding(self) -> bool:
        # Following, the history's last entry is held until it stops changing: the
        # end of the history goes out after it. (Without --follow the stream ends
        # at the cut, and settled() lets it go.)
        return self.follow and self.pending is not None

    def history_over(self) -> list[Event]:
        out = self._settle_resend() if self.resending is not None else []
        if self.follow and self.pending is not None:
            self.end_after = True
        return out

    def finish(self) -> list[Event]:
        self.check_resent()
        if self.tracking is None:
            self._report_gaps()
        return self.quiet()

    def settled(self) -> list[Event]:
        self._report_gaps()
        return self.quiet()


class LogVerifier:
    """Reads a second connection's copy of the history for :meth:`ForgeLogsDecoder.verified`:
    the last value of each entry, and every frame it had (to tell whether the
    first connection's latest frame for an entry came before that copy or after).

    Once that copy's history seems over (by how its link behaves), it is read on
    until it has every entry the first connection had by then: a copy that is slow
    to come (a loaded machine) is not an empty one, and the entry the first lost at
    its join is among those.
    """

    def __init__(self, reached: Callable[[], int] = lambda: 0) -> None:
        self.last: dict[int, dict[str, Any]] = {}
        #: how many versions of each entry the copy had
        self.versions: Counter[int] = Counter()
        self.frames: set[int] = set()
        self.finished = False
        #: how many entries the first connection has (gaps included)
        self.reached = reached
        self.target: int | None = None

    def needs_more(self) -> bool:
        # Past the target, frames both connections saw tell which one is ahead.
        if self.target is None:
            self.target = self.reached()
        return not self.finished and max(self.last, default=-1) + 1 < self.target

    def feed(self, frame: bytes | str) -> None:
        ops, finished = _check_frame(frame)
        if ops is None:
            self.finished = self.finished or finished
            return
        self.frames.add(hash(frame))
        for op in ops:
            if type(op) is not dict or op.get("op") not in ("add", "replace"):
                continue
            path, value = op.get("path"), op.get("value")
            index = _index(split(path, ENTRIES)) if type(path) is str else None
            if index is not None and type(value) is dict:
                self.last[index] = value
                self.versions[index] += 1
