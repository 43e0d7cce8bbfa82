"""Where the history a server sends on connecting ends, and live output begins.

Servers resend a stream's history on every connection, then go on live, and
neither the documented API nor the real server (0.7.4) marks where one ends:
`logs` without `--follow` must stop after the history, `--follow --tail N` must
keep N lines of it, `monitor --until-idle` must know when it has seen it all,
and `monitor` must tell a replayed process from one that just started. (A
decoder that knows the boundary, from a snapshot frame or a ``Ready`` marker,
says so instead, and these rules are not used.)

Both rules read the link, not the producer. A server writes its history as fast
as it can, so while it arrives the client is the bottleneck: the next frames are
already there whenever it reads, several at a time; live output comes at the
producer's pace, leaving the client waiting for it, a frame or two at a time,
however fast the process writes (a dev server at 1,000 lines/s included).

- :class:`SettledHistory`, late rather than early (without `--follow`: what has
  been logged so far; `--until-idle`: every process seen). Time is cut into
  windows of :data:`WINDOW` seconds; a window is *busy* when the client waited
  for data less than half of it, or :data:`BUSY_BYTES` arrived in it (a big
  frame on its way). The history is over once ``settle`` seconds pass without
  a busy window, and not before ``2 × settle`` after the first frame (a slow
  server's short history trickles in). Junk, a frame trickling in, a producer
  at any pace the client keeps up with leave no busy window.
- :class:`TailHistory`, early rather than late (`--tail`, where a late cut would
  move live lines into the tail and out of the output; the real server's event
  replay, where a late cut would hide a quick process). The first wait clearly
  longer than the history's own (:data:`RATIO` times their mean, at least
  :data:`FLOOR`), before a read that is not a backlog (no more than
  :data:`DENSE` frames, plus one per :data:`DENSE_PACE` seconds waited), is a
  *candidate* cut. It stands once :data:`CONFIRM` more reads came at a live
  pace, or ``settle`` seconds passed; a read back to back again, or a backlog,
  rejects it (the server only paused), and a wait :data:`RATIO` times longer
  still takes its place. A first frame later than :data:`EMPTY` that is not a
  backlog is a candidate too: the history may be empty; only a backlog rejects
  that one, since live events often come in quick pairs. A producer too fast
  for a pause to show (the client waiting for data most of the last ``settle``
  seconds, with no candidate) ends the history where it stands.

Whatever is decided, the output stays contiguous: every frame after the cut is
live output and passes on in full, so `--tail` never loses a live line past the
cut. Only the reads since a candidate cut are held; everything before it is
history for sure and passes on at once, so memory stays bounded.
"""

from __future__ import annotations

import math
from collections import deque

#: A wait this many times the history's mean wait is a candidate end of it ...
RATIO = 4.0
#: ... if it is at least this long (seconds) ...
FLOOR = 0.0001
#: ... or this long, when nothing yet tells the history's pace (one frame so far).
FIRST_FLOOR = 0.001
#: A first frame this long after opening may be live: the history may be empty.
EMPTY = 0.02
#: Batches at a live pace after a candidate cut that make it stand.
CONFIRM = 2
#: A batch of more than DENSE frames, plus one per DENSE_PACE seconds the client
#: waited for it, is a backlog arriving, not live output (which, at up to 1,000
#: lines/s, leaves the client fewer frames than that per wait).
DENSE = 3
DENSE_PACE = 0.001
#: Seconds per window of the settled rule.
WINDOW = 0.05
#: Bytes arriving in a window (or while waiting for a batch) that make it busy.
BUSY_BYTES = 32 * 1024
#: The settled rule's history is over at the latest this long after its first frame
#: (or ``CAP_SETTLES`` times ``settle``, if longer), busy or not: see SettledHistory.
CAP = 6.0
CAP_SETTLES = 12


#: Where the history ends, among the batches a :class:`Boundary` hands back
#: (an empty batch, told apart by identity).
CUT: list[bytes] = []

Batches = list[list[bytes]]


class Boundary:
    """Fed every batch of frames of one connection; tells when its history is over.

    It holds frames, not events, so that the decoder only ever sees frames of one
    side of the cut at a time (a decoder that holds an entry back would otherwise
    release history as live output). :meth:`batch` and :meth:`wait` (time spent
    waiting without a batch) return the batches to feed now: history for sure at
    once, the rest once the history is over, with :data:`CUT` where it ends;
    :attr:`over` is then true. :meth:`due` says when to call :meth:`wait` if no
    frame comes.
    """

    def __init__(self, opened_at: float, settle: float, first_wait: float) -> None:
        self.opened_at = opened_at
        self.settle = settle
        #: no frame this long after opening: the history is empty
        self.first_wait = first_wait
        self.over = False
        #: when the first frame arrived
        self.first_at: float | None = None
        #: before the first frame: when :data:`BUSY_BYTES` of one last arrived in a wait
        self.arriving_at = -math.inf

    def due(self) -> float:
        raise NotImplementedError

    def first_due(self) -> float:
        """No frame yet: the history is empty once ``first_wait`` has passed, unless
        a first frame is arriving (a big one, at a real pace: a trickle is not)."""
        return max(self.opened_at + self.first_wait, self.arriving_at + self.settle)

    def arriving(self, now: float, received: int) -> None:
        if received >= BUSY_BYTES:
            self.arriving_at = now

    def batch(self, arrived: float, waited: float, received: int, frames: list[bytes]) -> Batches:
        """A batch of frames that the client waited ``waited`` seconds for, while
        ``received`` bytes arrived (a big frame arriving is not waiting)."""
        raise NotImplementedError

    def wait(self, since: float, now: float, received: int = 0) -> Batches:
        """The client waited from ``since`` to ``now`` and no whole frame came
        (``received`` bytes of one did)."""
        out: Batches = []
        if self.first_at is None:
            self.arriving(now, received)
        if not self.over and now >= self.due():
            self._end(out)
        return out

    def flush(self) -> Batches:
        """The stream ended (or broke) before its history was decided: all of it."""
        return []

    def _end(self, out: Batches) -> None:
        self.over = True
        out.append(CUT)


class SettledHistory(Boundary):
    """The end of the history, late rather than early: without ``--follow`` (what
    has been logged so far) and for ``--until-idle`` (every process seen).

    A window of :data:`WINDOW` seconds is *busy* when the client waited for data
    less than half of it (the server writing its history faster than the client
    reads), or when :data:`BUSY_BYTES` arrived in it. The history is over once
    ``settle`` seconds pass without a busy window, and not before ``2 × settle``
    after the first frame (a slow server's short history trickles in); the
    frames that came until then are all taken: a late end only adds what was
    logged meanwhile. Junk, a frame trickling in, a producer at any pace the
    client keeps up with, leave no busy window: it returns within about a second.

    A client starved of CPU (a machine far busier than its cores) finds data
    waiting at every read, live output too, and cannot tell it from a history: no
    window is ever idle. So the history is over at the latest :data:`CAP` seconds
    after its first frame (``CAP_SETTLES × settle`` if longer), and :attr:`capped`
    says so (the caller warns: a history still arriving then, over a slow link,
    would be cut short there).
    """

    def __init__(self, opened_at: float, settle: float, first_wait: float) -> None:
        super().__init__(opened_at, settle, first_wait)
        self._window = 0  # the window being measured, from the first frame
        self._waited = 0.0
        self._received = 0
        self._busy_until = 0.0  # the end of the last busy window
        #: the history was ended by the cap, not by a quiet link: the cap's seconds
        self.capped = 0.0

    def due(self) -> float:
        if self.over:
            return math.inf
        if self.first_at is None:
            return self.first_due()
        settled = max(self.first_at + 2 * self.settle, self._busy_until + self.settle)
        return min(settled, self._cap())

    def _cap(self) -> float:
        assert self.first_at is not None
        return self.first_at + max(CAP, CAP_SETTLES * self.settle)

    def _end(self, out: Batches) -> None:
        if self.first_at is not None and self.due() >= self._cap():
            self.capped = max(CAP, CAP_SETTLES * self.settle)
        super()._end(out)

    def batch(self, arrived: float, waited: float, received: int, frames: list[bytes]) -> Batches:
        if self.over:
            return [frames]
        out: Batches = []
        if self.first_at is None:
            self.first_at = arrived
            self._busy_until = arrived
        else:
            self._account(arrived - waited, arrived, received)
            if arrived >= self.due():
                self._end(out)
        out.append(frames)
        return out

    def wait(self, since: float, now: float, received: int = 0) -> Batches:
        if self.first_at is not None and not self.over:
            self._account(since, now, received)
        return super().wait(since, now, received)

    def _account(self, start: float, end: float, received: int) -> None:
        """A wait from ``start`` to ``end`` (``received`` bytes arriving meanwhile,
        spread evenly over it), over the windows it spans; judge each window that ends."""
        assert self.first_at is not None
        rate = received / (end - start) if end > start else 0.0
        while True:
            window_start = self.first_at + self._window * WINDOW
            window_end = window_start + WINDOW
            part = max(0.0, min(end, window_end) - max(start, window_start))
            self._waited += part
            self._received += int(rate * part) if end > start else received
            if end < window_end:
                return
            if self._waited < WINDOW / 2 or self._received >= BUSY_BYTES:
                self._busy_until = window_end
            self._window += 1
            self._waited = 0.0
            self._received = 0


class TailHistory(Boundary):
    """The end of the history, early rather than late: for ``--follow --tail``,
    where a late cut would move live lines into the tail and out of the output."""

    def __init__(
        self, opened_at: float, settle: float, first_wait: float, *, bursts: bool = False
    ) -> None:
        super().__init__(opened_at, settle, first_wait)
        #: live output comes in bursts (an event stream: one change is several ops
        #: at once), so after a candidate cut only a backlog rejects it
        self.bursts = bursts
        self.last_at = opened_at
        #: the batches from the candidate cut on, held
        self._held: deque[list[bytes]] = deque()
        self._cand_at: float | None = None  # when the candidate batch arrived
        self._cand_gap = 0.0
        self._cand_empty = False  # the candidate is a late first frame: no history
        self._confirmed = 0
        self._sum = 0.0  # the waits between the history's frames (0 within a batch)
        self._count = 0
        #: (arrival, wait) of the batches of the last ``settle`` seconds, and their sum
        self._waits: deque[tuple[float, float]] = deque()
        self._wait_sum = 0.0

    def due(self) -> float:
        """When the history is over if no frame comes (loop time)."""
        if self.over:
            return math.inf
        if self.first_at is None:
            return self.first_due()
        if self._cand_at is not None:
            return self._cand_at + self.settle
        return self.last_at + self.settle

    def batch(self, arrived: float, waited: float, received: int, frames: list[bytes]) -> Batches:
        if received >= BUSY_BYTES:  # the wait was a big frame arriving
            waited = 0.0
        if self.over:
            return [frames]
        out: Batches = []
        if self.first_at is None:
            self.first_at = arrived
            self.last_at = arrived
            gap = arrived - self.opened_at
            big = received >= BUSY_BYTES or self.arriving_at > -math.inf
            if gap >= EMPTY and len(frames) <= DENSE + gap / DENSE_PACE and not big:
                # Late, and not a backlog (nor a big frame that took its time to
                # arrive): perhaps live output, and no history at all.
                self._candidate(arrived, gap, frames)
                self._cand_empty = True
            else:
                self._count += len(frames) - 1  # read together: no wait between them
                out.append(frames)
            return out
        if arrived >= self.due():  # the history ended in the silence before this batch
            self._end(out)
            out.append(frames)
            return out
        self.last_at = arrived
        mean = self._sum / self._count if self._count else 0.0
        # More frames at once than a live producer could have written while the
        # client waited (at 1,000 lines/s): the server is sending a backlog.
        dense = len(frames) > DENSE + waited / DENSE_PACE
        if self._cand_at is not None:
            # Back to back again (the history's pace): the server had only paused.
            # Not after a late first frame: there is no history pace to return to,
            # and live events come in quick pairs too (a task and its process, a
            # line and the next); only a backlog says the history was just slow.
            paced = max(FLOOR, mean * RATIO) if self._count else FIRST_FLOOR
            loose = self._cand_empty or self.bursts  # only a backlog rejects it
            if dense or (waited < paced and not loose):
                self._sum += self._cand_gap + waited
                self._count += len(frames) + 1
                self._cand_at = None
                out.extend(self._held)
                self._held.clear()
                out.append(frames)
                return out
            if waited >= RATIO * self._cand_gap and not loose:
                # A far longer wait: that one was a pause within the history, this
                # is the candidate now.
                self._sum += self._cand_gap
                self._count += sum(map(len, self._held))
                out.extend(self._held)
                self._held.clear()
                self._candidate(arrived, waited, frames)
                return out
            self._held.append(frames)
            self._confirmed += 1
            if self._confirmed >= CONFIRM:
                self._end(out)
            return out
        if (
            waited >= (FLOOR if self._count else FIRST_FLOOR)
            and waited >= mean * RATIO
            and not dense
        ):
            self._candidate(arrived, waited, frames)
            return out
        self._sum += waited
        self._count += len(frames)
        out.append(frames)
        if self._too_fast(arrived, waited):
            self._end(out)
        return out

    def flush(self) -> Batches:
        """The stream ended (or broke) before its history was decided: all of it."""
        out = list(self._held)
        self._held.clear()
        self._cand_at = None
        return out

    def _candidate(self, arrived: float, gap: float, frames: list[bytes]) -> None:
        self._cand_at = arrived
        self._cand_gap = gap
        self._cand_empty = False
        self._confirmed = 0
        self._held.append(frames)

    def _too_fast(self, arrived: float, waited: float) -> bool:
        """No candidate, yet the client waited for data most of the last ``settle``
        seconds: live output faster than any pause rule can see."""
        waits = self._waits
        waits.append((arrived, waited))
        self._wait_sum += waited
        start = arrived - self.settle
        while waits[0][0] < start:
            self._wait_sum -= waits.popleft()[1]
        assert self.first_at is not None
        return arrived - self.first_at >= self.settle and self._wait_sum >= self.settle / 2

    def _end(self, out: Batches) -> None:
        """The history is over: the cut, then what was held (live output)."""
        self.over = True
        out.append(CUT)
        out.extend(self._held)
        self._held.clear()
        self._cand_at = None
