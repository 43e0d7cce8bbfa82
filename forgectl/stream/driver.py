"""The stream driver: connect, read frames, keep the link alive, reconnect.

One loop serves every command and every dialect::

    socket → channel.frames() → decoder.feed() → events (→ filters → renderer)

Reconnects follow the spec's strategy (1 s doubling to 30 s, with jitter, reset
once a connection delivers). The decoder decides what a resent history means,
so output stays exactly-once across reconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import TYPE_CHECKING

from ..constants import BACKOFF_INITIAL
from ..errors import ConnectError, ForgeError, NotFoundError, StreamLost
from ..events import BACKLOG_END, Event
from ..transport import Channel, Quiet, Transport, default_transport
from .backoff import Backoff
from .history import _HistoryEnd
from .options import StreamOptions
from .watchdog import _LinkState, _watchdog

if TYPE_CHECKING:
    from ..diagnostics import Diagnostics
    from ..dialects.base import Dialect, Plan, StreamRequest
    from ..transport import Endpoint


def _traced(
    feed: Callable[[bytes | str], Iterable[Event]], diag: Diagnostics
) -> Callable[[bytes | str], Iterable[Event]]:
    """``feed``, tracing each frame's size and start on stderr (``-vv``)."""

    def traced(frame: bytes | str) -> Iterable[Event]:
        head = frame[:100]
        text = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
        more = "…" if len(frame) > len(head) else ""
        diag.trace(
            f"frame, {len(frame)} {'bytes' if isinstance(frame, bytes) else 'characters'}: {text!r}{more}",
            2,
        )
        return feed(frame)

    return traced


async def _close_quickly(channel: Channel, timeout: float = 0.5) -> None:
    try:
        async with asyncio.timeout(timeout):
            await channel.close()
    except TimeoutError:
        channel.abort()


class Stream:
    """An async iterator of events for one request, over reconnects."""

    def __init__(
        self,
        dialect: Dialect,
        request: StreamRequest,
        endpoint: Endpoint,
        options: StreamOptions,
        diag: Diagnostics,
        transport: Transport | None = None,
    ) -> None:
        self.transport = transport or default_transport()
        self.dialect = dialect
        self.request = request
        self.endpoint = endpoint
        self.options = options
        self.diag = diag
        self.plan: Plan | None = None
        self._channel: Channel | None = None
        self._waiting_said = False
        self._start_deadline: float | None = None

    async def _open(self, plan: Plan) -> Channel:
        route = plan.route
        self.diag.trace(f"connecting to {self.endpoint.server.http_url(route.path, route.query)}")
        return await self.transport.open(
            self.endpoint,
            route,
            what=plan.what,
            ping_interval=self.options.ping_interval,
            ping_timeout=self.options.stale_timeout,
            trace=self.diag.trace,
        )

    async def _plan(self, deadline: float | None) -> Plan:
        """The dialect's plan, polling while the target does not exist yet."""
        while True:
            try:
                return await self.dialect.plan(self.request, self.endpoint, self.diag)
            except NotFoundError as exc:
                await self._wait_for_start(exc, deadline)

    async def _wait_for_start(self, exc: NotFoundError, deadline: float | None) -> None:
        loop = asyncio.get_running_loop()
        if deadline is None or loop.time() >= deadline:
            raise exc
        if not self._waiting_said:
            self._waiting_said = True
            self.diag.note(f"{exc}; waiting up to {self.options.wait_start:g} s for it to appear")
        await asyncio.sleep(min(1.0, max(0.0, deadline - loop.time())))

    async def _connect(
        self, plan: Plan, backoff: Backoff, first: bool, deadline: float | None
    ) -> tuple[Channel, Plan]:
        loop = asyncio.get_running_loop()
        while True:
            try:
                return await self._open(plan), plan
            except ForgeError as exc:
                try:
                    other = await self.dialect.fallback(
                        self.request, plan, exc, self.endpoint, self.diag
                    )
                except NotFoundError as missing:
                    if not first:
                        raise
                    await self._wait_for_start(missing, self._start_deadline)
                    continue
                if other is not None:
                    plan = other
                    continue
                if isinstance(exc, NotFoundError) and first:
                    await self._wait_for_start(exc, self._start_deadline)
                    continue
                if not exc.retryable:
                    raise
                if first and self.options.retry_for is None:
                    raise
                if not first and not self.options.reconnect:
                    raise
                delay = backoff.next()
                if deadline is not None and loop.time() + delay > deadline:
                    raise ConnectError(
                        f"{exc}; gave up after {self.options.retry_for:g} s"
                    ) from None
                verb = "waiting for the server" if first else "reconnecting"
                self.diag.note(f"{exc}; {verb} in {delay:.1f} s (attempt {backoff.attempt})")
                await asyncio.sleep(delay)

    def __aiter__(self) -> AsyncGenerator[Event, None]:
        return self._drive(None)

    async def pump(self, sink: Callable[[Event], object]) -> None:
        """Deliver every event to ``sink`` until the stream ends.

        The same driver as iteration, minus a generator hop per event: the
        CLI's hot path when no filter needs to stop the stream early.
        """
        async for _ in self._drive(sink):
            pass  # the driver yields nothing when it has a sink

    async def _drive(self, sink: Callable[[Event], object] | None) -> AsyncGenerator[Event, None]:
        loop = asyncio.get_running_loop()
        if self.options.wait_start:
            self._start_deadline = loop.time() + self.options.wait_start
        plan = self.plan = await self._plan(self._start_deadline)
        decoder = plan.decoder
        backoff = Backoff(self.options.backoff_initial)
        backlog_owed = self.options.mark_backlog
        first = True
        retry_for = self.options.retry_for
        deadline = None if retry_for is None else loop.time() + retry_for
        settle = not self.request.follow
        while True:
            channel, plan = await self._connect(plan, backoff, first, deadline)
            if plan is not self.plan:
                self.plan = plan
                decoder = plan.decoder
            first = False
            deadline = None
            self.dialect.connected(self.diag)
            self._channel = channel
            decoder.connected()
            state = _LinkState()
            opened_at = loop.time()
            quiet_after = decoder.quiet_after
            if settle and quiet_after is not None:
                quiet_after = min(quiet_after, self.options.settle)
            if backlog_owed and not settle:
                quiet_after = min(quiet_after or self.options.settle, self.options.settle)
            watchdog = asyncio.create_task(
                _watchdog(
                    channel,
                    decoder,
                    state,
                    self.options,
                    settle and quiet_after is None,
                    self.diag,
                    backlog=backlog_owed and not settle,
                )
            )
            lost: StreamLost | None = None
            history: _HistoryEnd | None = None
            try:
                recv = channel.receiver() if quiet_after is None else None
                feed: Callable[[bytes | str], Iterable[Event]] = decoder.feed
                if self.diag.verbose >= 2:
                    feed = _traced(feed, self.diag)
                if recv is not None:
                    # The hot path: no timer, no generator between socket and
                    # decoder, one await per batch of frames.
                    try:
                        while True:
                            batch = await recv()
                            state.frames += len(batch)
                            if sink is None:
                                for data in batch:
                                    for event in feed(data):
                                        yield event
                                    if decoder.done:
                                        break
                            else:
                                for data in batch:
                                    for event in feed(data):
                                        sink(event)
                                    if decoder.done:
                                        break
                            if decoder.done:
                                break
                    except StreamLost:
                        raise
                    except Exception as exc:
                        channel.closed_by(exc)
                else:
                    if quiet_after is None:
                        first_wait = None
                    elif decoder.quiet_after is not None:
                        first_wait = self.options.first_frame_wait
                    else:  # only the backlog marker is owed
                        first_wait = self.options.settle
                    history = _HistoryEnd(state) if backlog_owed and not settle else None
                    async for frame in channel.frames(quiet_after, first_wait):
                        if isinstance(frame, Quiet):
                            quiet = list(decoder.settled() if settle else decoder.quiet())
                            if history is not None:
                                quiet = [*history.flush(), *quiet, BACKLOG_END]
                                history = None
                                backlog_owed = False
                            for event in quiet:
                                if sink is None:
                                    yield event
                                else:
                                    sink(event)
                            if settle:
                                decoder.done = True
                            if decoder.done:
                                break
                            continue
                        state.frames += 1
                        if history is None:
                            events = feed(frame)
                        elif state.backlog_over:  # before this frame (it trickled in)
                            events = [*history.over(), *feed(frame)]
                            history = None
                            backlog_owed = False
                        else:
                            events = history.frame(feed(frame), loop.time())
                        for event in events:
                            if sink is None:
                                yield event
                            else:
                                sink(event)
                        if decoder.done:
                            break
            except StreamLost as exc:
                lost = exc
            except BaseException:
                # Ctrl-C, SIGTERM, or a consumer that stopped iterating: leave the
                # server a normal close (1000), without waiting long for it.
                watchdog.cancel()
                await _close_quickly(channel)
                raise
            finally:
                watchdog.cancel()
                self._channel = None
            if history is not None:  # the stream ended or broke in its history
                for event in history.flush():
                    if sink is None:
                        yield event
                    else:
                        sink(event)
            if decoder.done:
                await channel.close()
                return
            if state.settled:
                for event in decoder.settled():
                    if sink is None:
                        yield event
                    else:
                        sink(event)
                return
            if lost is None:
                code = channel.close_code
                if decoder.end_on_close and code == 1000:
                    return
                lost = StreamLost(
                    f"server closed the connection with code {code}"
                    if code is not None
                    else "connection closed"
                )
            if state.stale:
                lost = StreamLost(f"no data for {self.options.stale_timeout:g} s (dead peer)")
            if not self.options.reconnect:
                raise StreamLost(f"connection lost: {lost}")
            # The spec resets the delay once a connection opens; a connection that
            # delivered nothing and died at once does not count (a server that
            # accepts and drops must not be hammered every second).
            if state.frames or loop.time() - opened_at >= BACKOFF_INITIAL:
                backoff.reset()
            if deadline is None and retry_for is not None:
                deadline = loop.time() + retry_for
            delay = backoff.next()
            if deadline is not None and loop.time() + delay > deadline:
                raise ConnectError(f"connection lost: {lost}; gave up after {retry_for:g} s")
            self.diag.note(
                f"connection lost: {lost}; reconnecting in {delay:.1f} s (attempt {backoff.attempt})"
            )
            await asyncio.sleep(delay)

    async def aclose(self) -> None:
        """Close the open connection, if any, with a normal close."""
        channel = self._channel
        if channel is not None:
            await channel.close()
