"""One connection: frames in, events out, until it ends or must be replaced.

The read loop of one open channel: batches of frames go through the decoder,
and, while the history is undecided, through the :class:`~.history.Boundary`. It
waits with a deadline only when something is owed at a time (a decoder's quiet
call, the history's decision); the common case (following a stream) is one
await per network read and no timer.
"""

from __future__ import annotations

import asyncio
import enum
import math
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import TYPE_CHECKING

from ..events import BACKLOG_END, Event
from .history import CUT, Boundary

if TYPE_CHECKING:
    from ..diagnostics import Diagnostics
    from ..dialects.base import Decoder
    from ..transport import Channel


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
            wake = quiet_at if history is None else min(quiet_at, history.due())
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
                    self._feed_all(history.wait(since, now), feed, out)
                if now >= quiet_at and not self.finished:
                    quiet_at = math.inf
                    out.extend(decoder.quiet())
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
            events: list[Event] = []
            if history is None:
                self._feed(batch, feed, events)
            else:
                received = channel.received() - before
                self._feed_all(
                    history.batch(arrived, arrived - since, received, batch), feed, events
                )
            if quiet_after is not None:
                quiet_at = arrived + quiet_after
            if events:
                yield events
            if self._ended():
                return

    def _feed(
        self, batch: list[bytes], feed: Callable[[bytes | str], Iterable[Event]], out: list[Event]
    ) -> None:
        decoder = self.decoder
        knows = decoder.knows_history
        for data in batch:
            if knows:
                if self._marked(feed(data), out):
                    return
            else:
                out.extend(feed(data))
            if decoder.done or decoder.resync:
                self.finished = True
                return

    def _marked(self, events: Iterable[Event], out: list[Event]) -> bool:
        """A decoder that marks the end of the history itself: keep its marker if
        asked for, end there without --follow."""
        for event in events:
            if event is BACKLOG_END:
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
                self.history = None
                if self.settle:
                    self.finished = True
                    self.outcome = Outcome.SETTLED
                    return
                if self.mark:
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
