"""One connection: frames in, events out, until it ends or must be replaced.

The read loop of one open channel: batches of frames go through the decoder,
and, while the history is undecided, through the :class:`~.history.Boundary`. It
waits with a deadline only when something is owed at a time (a decoder's quiet
call, the history's decision); the common case (following a stream) is one
await per network read and no timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from ..dialects.base import Decoder
from ..events import BACKLOG_END, Event
from .history import CUT, Boundary

if TYPE_CHECKING:
    from ..diagnostics import Diagnostics
    from ..dialects.base import Verifier
    from ..transport import Channel


#: While a check runs, the read loop looks for its result this often (seconds).
VERIFY_POLL = 0.05
#: Frames longer than this are never a server's end-of-history marker.
MARKER_MAX = 64


class Outcome(enum.Enum):
    """How a connection's read loop ended."""

    #: The decoder reached the stream's normal end (a finished marker...).
    DONE = "done"
    #: Without --follow: the history has arrived; the stream is complete.
    SETTLED = "settled"
    #: The server closed the connection cleanly (what that means is the driver's call).
    CLOSED = "closed"
    #: The decoder found this connection's feed incomplete: open a fresh one now.
    RESYNC = "resync"


class Connection:
    """Reads one channel; :attr:`outcome` says how it ended."""

    def __init__(
        self,
        channel: Channel,
        decoder: Decoder,
        diag: Diagnostics,
        *,
        history: Boundary | None,
        settle: bool,
        mark: bool,
        check: Callable[[Verifier], Awaitable[Verifier]] | None = None,
    ) -> None:
        self.channel = channel
        self.decoder = decoder
        self.diag = diag
        self.history = history
        #: without --follow: end once the history is over
        self.settle = settle
        #: yield BACKLOG_END where the history ends
        self.mark = mark
        self.outcome = Outcome.CLOSED
        self.frames = 0
        #: the decoder is done with this connection (no more frames are fed)
        self.finished = False
        #: reads a second copy of the history when the decoder asks (see .verify)
        self.check = check
        #: that reading, while it runs
        self.verification: asyncio.Task[Verifier] | None = None
        self._asked = False
        #: the timing rule has placed the end of the history
        self._cut = False
        #: the decoder takes a read's frames in one call (not when tracing each one)
        self._bulk = decoder.batched and diag.verbose < 2
        #: the decoder may see the server's own end-of-history marker among them
        self._marks = type(decoder).marks_history is not Decoder.marks_history

    async def batches(self) -> AsyncGenerator[list[Event], None]:
        """The events of each network read (raises StreamLost when the link breaks)."""
        decoder = self.decoder
        feed: Callable[[bytes | str], Iterable[Event]] = decoder.feed
        if self.diag.verbose >= 2:
            feed = _traced(feed, self.diag)
        timed = (
            self.history is not None
            or decoder.quiet_after is not None
            or decoder.first_quiet is not None
            or (decoder.verifies and self.check is not None)
        )
        loop = self._timed(feed) if timed else self._untimed(feed)
        async for events in loop:
            yield events

    async def _untimed(
        self, feed: Callable[[bytes | str], Iterable[Event]]
    ) -> AsyncGenerator[list[Event], None]:
        # The hot path: nothing is owed at a time, so no timer; one await per read.
        channel = self.channel
        receive = channel.receiver()
        while True:
            try:
                batch = await receive()
            except Exception as exc:
                channel.closed_by(exc)  # raises unless closed cleanly
                return
            self.frames += len(batch)
            events: list[Event] = []
            self._feed(batch, feed, events)
            if events:
                yield events
            if self._ended():
                return

    async def _timed(
        self, feed: Callable[[bytes | str], Iterable[Event]]
    ) -> AsyncGenerator[list[Event], None]:
        loop = asyncio.get_running_loop()
        channel = self.channel
        decoder = self.decoder
        receive = channel.receiver()
        quiet_after = decoder.quiet_after
        first_quiet = decoder.first_quiet
        # The decoder's quiet call: ``quiet_after`` s after the last frame, or
        # ``first_quiet`` s after opening when no frame comes at all.
        quiet_at = loop.time() + first_quiet if first_quiet is not None else math.inf
        while True:
            history = self.history
            since = loop.time()
            before = channel.received()
            wake = min(quiet_at, decoder.wake_at)
            if history is not None:
                wake = min(wake, history.due())
            if self.verification is not None:
                wake = min(wake, since + VERIFY_POLL)
            try:
                if wake == math.inf:
                    batch = await receive()
                else:
                    async with asyncio.timeout_at(wake):
                        batch = await receive()
            except TimeoutError:
                now = loop.time()
                out: list[Event] = []
                if history is not None:
                    received = channel.received() - before
                    self._feed_all(history.wait(since, now, received), feed, out)
                if (now >= quiet_at or now >= decoder.wake_at) and not self.finished:
                    quiet_at = math.inf
                    decoder.wake_at = math.inf
                    self._take(decoder.quiet(), out)
                out.extend(self._checked())
                if out:
                    yield out
                if self._ended():
                    return
                continue
            except Exception as exc:
                if history is not None:
                    self.history = None
                    held: list[Event] = []
                    self._feed_all(history.flush(), feed, held)
                    if held:
                        yield held  # received before the link broke: never lost
                channel.closed_by(exc)
                return
            arrived = loop.time()
            self.frames += len(batch)
            if not self._asked:
                # The first frames are in: this connection is past the moment a
                # join can lose anything, so a second one opened now has it all.
                # Asked before they are fed, so the check sees every frame.
                self._ask()
            events: list[Event] = []
            if history is None:
                self._feed(batch, feed, events)
            elif self._marked_by_server(batch):
                # The server marks where its history ends: the decoder, fed the
                # marker in its place, says so; nothing is judged by time.
                self.history = None
                self._feed_all(history.flush(), feed, events)
                self._feed(batch, feed, events)
            else:
                received = channel.received() - before
                self._feed_all(
                    history.batch(arrived, arrived - since, received, batch), feed, events
                )
            if quiet_after is not None:
                quiet_at = arrived + quiet_after
            events.extend(self._checked())
            if events:
                yield events
            if self._ended():
                return

    def _marked_by_server(self, batch: list[bytes]) -> bool:
        """Whether the batch holds the server's end-of-history marker."""
        if not self._marks:
            return False
        marks = self.decoder.marks_history
        return any(len(frame) <= MARKER_MAX and marks(frame) for frame in batch)

    def _ask(self) -> None:
        """After the first frames: start the decoder's check, if it wants one."""
        self._asked = True
        if self.check is None or not self.decoder.verifies:
            return
        verifier = self.decoder.verifier()
        if verifier is not None:
            self.verification = asyncio.ensure_future(self.check(verifier))

    def _checked(self) -> list[Event]:
        """The decoder's healing events, once the check has finished."""
        task = self.verification
        if task is None:
            return []
        if not task.done():
            events = self.decoder.checked_events()
        else:
            self.verification = None
            events = list(self.decoder.verified(self._outcome_of(task)))
        if not self.mark:  # a decoder holding events places the history's end among them
            events = [e for e in events if e is not BACKLOG_END]
        return events

    def _outcome_of(self, task: asyncio.Task[Verifier]) -> Verifier | None:
        if task.cancelled():
            return None
        exc = task.exception()
        if exc is not None:
            self.diag.warning(
                f"could not read the history a second time to check for lost entries: {exc}"
            )
            return None
        return task.result()

    async def settle_check(self, timeout: float) -> list[Event]:
        """The stream ended: wait (up to ``timeout`` s) for a check still running."""
        task = self.verification
        if task is None:
            return []
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), timeout)
        if not task.done():
            task.cancel()
        return self._checked() if task.done() else list(self.decoder.verified(None))

    def cancel_check(self) -> list[Event]:
        """The connection ends before its check: stop it; what the decoder held
        for it goes out as it is."""
        if self.verification is not None:
            self.verification.cancel()
            self.verification = None
        events = self.decoder.check_abandoned()
        return events if self.mark else [e for e in events if e is not BACKLOG_END]

    def _feed(
        self, batch: list[bytes], feed: Callable[[bytes | str], Iterable[Event]], out: list[Event]
    ) -> None:
        decoder = self.decoder
        if self._bulk:
            decoder.feed_batch(batch, out)
            if decoder.done or decoder.resync:
                self.finished = True
        else:
            for data in batch:
                if self._take(feed(data), out):
                    break
                if decoder.done or decoder.resync:
                    self.finished = True
                    break
        # Fed: not held while the next read is awaited (a 64 MiB frame would be).
        batch.clear()

    def _take(self, events: Iterable[Event], out: list[Event], *, strip: bool = False) -> bool:
        """The decoder's events; True when they end this connection's reading."""
        if self.decoder.knows_history:
            return self._marked(events, out)
        if strip:
            out.extend(e for e in events if e is not BACKLOG_END)
        else:
            out.extend(events)
        return False

    def _marked(self, events: Iterable[Event], out: list[Event]) -> bool:
        """A decoder that marks the end of the history itself: keep its marker if
        asked for, end there without --follow."""
        for event in events:
            if event is BACKLOG_END:
                if self._cut:
                    continue  # the timing rule placed it already; a marker came late
                if self.settle:
                    self.finished = True
                    self.outcome = Outcome.SETTLED
                    return True
                if not self.mark:
                    continue
            out.append(event)
        return False

    def _feed_all(
        self,
        batches: list[list[bytes]],
        feed: Callable[[bytes | str], Iterable[Event]],
        out: list[Event],
    ) -> None:
        """Feed what the history boundary hands back; at its cut, end (without
        --follow: what comes after is live, and not asked for) or mark it."""
        for batch in batches:
            if self.finished:
                return
            if batch is CUT:
                capped = getattr(self.history, "capped", None)
                if capped:
                    self.diag.warning(
                        "the stream never went quiet (a machine too busy to keep up, or a "
                        f"history still arriving): what came in its first {capped:g} s is "
                        "taken for the history; --follow reads on"
                    )
                self.history = None
                self._cut = True
                holding = self.decoder.holding()
                self._take(self.decoder.history_over(), out, strip=not self.mark)
                if self.settle:
                    self.finished = True
                    self.outcome = Outcome.SETTLED
                    return
                if self.mark and not holding:
                    out.append(BACKLOG_END)
                continue
            self._feed(batch, feed, out)

    def _ended(self) -> bool:
        decoder = self.decoder
        if self.outcome is Outcome.SETTLED:
            return True
        if decoder.done:
            self.outcome = Outcome.DONE
        elif decoder.resync:
            self.outcome = Outcome.RESYNC
        else:
            return False
        return True


def _traced(
    feed: Callable[[bytes | str], Iterable[Event]], diag: Diagnostics
) -> Callable[[bytes | str], Iterable[Event]]:
    """``feed``, tracing each frame's size and start on stderr (``-vv``)."""

    def traced(frame: bytes | str) -> Iterable[Event]:
        head = frame[:100]
        text = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
        more = "…" if len(frame) > len(head) else ""
        unit = "bytes" if isinstance(frame, bytes) else "characters"
        diag.trace(f"frame, {len(frame)} {unit}: {text!r}{more}", 2)
        return feed(frame)

    return traced
