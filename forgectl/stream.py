"""The stream driver: connect, read frames, keep the link alive, reconnect.

One loop serves every command and every dialect::

    socket → channel.frames() → decoder.feed() → events (→ filters → renderer)

Reconnects follow the spec's strategy (1 s doubling to 30 s, with jitter, reset
once a connection delivers). The decoder decides what a resent history means,
so output stays exactly-once across reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import sys
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .constants import (
    BACKOFF_INITIAL,
    BACKOFF_MAX,
    DEFAULT_PING_INTERVAL,
    DEFAULT_SETTLE,
    DEFAULT_STALE_TIMEOUT,
    ENV_TRANSPORT,
)
from .errors import ConnectError, ForgeError, NotFoundError, StreamLost
from .events import BACKLOG_END, Event

if TYPE_CHECKING:
    from .diagnostics import Diagnostics
    from .dialects.base import Decoder, Dialect, Plan, StreamRequest
    from .transport import Endpoint


@dataclass(slots=True)
class StreamOptions:
    reconnect: bool = True
    #: Bound on the total time spent waiting for a server (first connect included:
    #: without it a refused first connection fails at once).
    retry_for: float | None = None
    ping_interval: float = DEFAULT_PING_INTERVAL
    stale_timeout: float = DEFAULT_STALE_TIMEOUT
    settle: float = DEFAULT_SETTLE
    #: Without --follow, how long to wait for a first frame before calling the
    #: backlog empty.
    first_frame_wait: float = 5.0
    #: Keep polling this long for a process or attempt that does not exist yet (404).
    wait_start: float | None = None
    #: Yield :data:`~forgectl.events.BACKLOG_END` once the history sent on
    #: connecting has arrived (the stream first went quiet for ``settle`` s).
    mark_backlog: bool = False
    #: First reconnect delay (the spec's 1 s); tests shorten it.
    backoff_initial: float = BACKOFF_INITIAL


class Backoff:
    """1 s, 2 s, 4 s ... capped at 30 s, each with up to 20 % jitter."""

    def __init__(self, initial: float = BACKOFF_INITIAL, cap: float = BACKOFF_MAX) -> None:
        self.initial = initial
        self.cap = cap
        self.attempt = 0

    def next(self) -> float:
        base = min(self.cap, self.initial * (2**self.attempt))
        self.attempt += 1
        return float(base * random.uniform(0.8, 1.0))

    def reset(self) -> None:
        self.attempt = 0


class Quiet:
    """Marker yielded by a channel when the stream has been silent a while."""


QUIET = Quiet()


#: At most this many frames per tick, two ticks running, is live output
#: arriving, not history (ends the backlog without --follow, and for --tail).
TRICKLE = 3


class _LinkState:
    """Shared between a channel's frame loop and its watchdog."""

    __slots__ = ("backlog_over", "frames", "live_from", "settled", "stale", "tick")

    def __init__(self) -> None:
        self.frames = 0
        self.stale = False
        self.settled = False
        #: the watchdog's tick count: frames arriving meanwhile belong to this tick
        self.tick = 0
        #: the history has arrived and live output trickles in since tick ``live_from``
        self.backlog_over = False
        self.live_from = 0


class _HistoryEnd:
    """Where the history ends, for ``--follow --tail``, when live output trickles in.

    The watchdog calls two ticks of at most TRICKLE frames a trickle: live output,
    so the history ended before them. Live frames may also have come in the tick
    of the burst's end, after it: the first pause of BURST_GAP before the trickle
    marks where the burst really ended. So the last 3 x TRICKLE frames' events
    are held back (for half a second at most) until the end of the history is known.
    """

    #: A pause this long between two frames ends a burst.
    BURST_GAP = 0.05

    def __init__(self, state: _LinkState) -> None:
        self.state = state
        #: (arrival time, watchdog tick, events) of the latest frames
        self.held: deque[tuple[float, int, list[Event]]] = deque()
        self.before = -math.inf  # arrival time of the last frame passed on

    def frame(self, events: Iterable[Event], now: float) -> list[Event]:
        """One frame's events; returns those of the frames that cannot be live."""
        held = self.held
        held.append((now, self.state.tick, list(events)))
        out: list[Event] = []
        while len(held) > 3 * TRICKLE:
            self.before, _, old = held.popleft()
            out.extend(old)
        return out

    def over(self) -> list[Event]:
        """The trickle was called: the history, the marker, then what was live."""
        frames = list(self.held)
        self.held.clear()
        live_from = self.state.live_from
        cut = next((i for i, f in enumerate(frames) if f[1] >= live_from), len(frames))
        previous = self.before
        for i, (at, _, _) in enumerate(frames[:cut]):
            if at - previous >= self.BURST_GAP and previous > -math.inf:
                cut = i
                break
            previous = at
        out = [event for _, _, events in frames[:cut] for event in events]
        out.append(BACKLOG_END)
        out.extend(event for _, _, events in frames[cut:] for event in events)
        return out

    def flush(self) -> list[Event]:
        out = [event for _, _, events in self.held for event in events]
        self.held.clear()
        return out


class Channel:
    """One open connection delivering frames."""

    close_code: int | None = None
    close_reason: str = ""

    async def frames(
        self, quiet_after: float | None, first_wait: float | None = None
    ) -> AsyncIterator[bytes | str | Quiet]:
        """Frames until a clean close; :data:`QUIET` after ``quiet_after`` s of
        silence following a frame (or ``first_wait`` s before the first one).
        Raises :class:`StreamLost` when the link breaks.

        Built on :meth:`receiver` (a channel without one overrides this)."""
        receive = self.receiver()
        assert receive is not None
        try:
            owed = first_wait is not None
            wait = first_wait
            while True:
                if owed:
                    try:
                        async with asyncio.timeout(wait):
                            batch = await receive()
                    except TimeoutError:
                        owed = False
                        yield QUIET
                        continue
                else:
                    batch = await receive()
                owed = quiet_after is not None
                wait = quiet_after
                for frame in batch:
                    yield frame
        except StreamLost:
            raise
        except Exception as exc:
            self.closed_by(exc)

    async def send(self, data: bytes) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def progress(self) -> int:
        """A number that changes while bytes of a frame not yet complete arrive."""
        return 0

    def receiver(self) -> Callable[[], Awaitable[list[bytes]]] | None:
        """A coroutine function returning the next frames, for the hot path: every
        complete message buffered, waiting only when there is none (one await per
        network read, not per message). The driver calls :meth:`closed_by` with the
        ``ConnectionClosed`` it raises. None when frames only come through
        :meth:`frames`."""
        return None

    def closed_by(self, exc: BaseException) -> None:
        """Record how the link closed; raise :class:`StreamLost` unless cleanly."""
        raise StreamLost(str(exc))


class WebSocketChannel(Channel):
    def __init__(self, ws: Any) -> None:
        self.ws = ws

    def receiver(self) -> Callable[[], Awaitable[list[bytes]]]:
        # websockets' asyncio API has no public way to take what it has buffered
        # without waiting: one message per batch.
        recv = self.ws.recv

        async def receive() -> list[bytes]:
            return [await recv(False)]

        return receive

    def closed_by(self, exc: BaseException) -> None:
        record_close(self, exc)

    async def send(self, data: bytes) -> None:
        await self.ws.send(data.decode())

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()

    def abort(self) -> None:
        transport = self.ws.transport
        if transport is not None:
            transport.abort()

    def progress(self) -> int:
        # Bytes buffered for the frame being received: a 64 MiB frame on a slow
        # link is not silence.
        try:
            return len(self.ws.protocol.reader.buffer)
        except AttributeError:
            return 0


def record_close(channel: Channel, exc: BaseException) -> None:
    """Record how a WebSocket closed (``exc``, websockets' ``ConnectionClosed``);
    raise :class:`StreamLost` unless cleanly. Any other exception is re-raised."""
    from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

    if not isinstance(exc, ConnectionClosed):
        raise exc
    rcvd = exc.rcvd
    channel.close_code = rcvd.code if rcvd is not None else None
    channel.close_reason = rcvd.reason if rcvd is not None else ""
    if not isinstance(exc, ConnectionClosedOK):
        raise StreamLost(_close_text(exc)) from None


def _close_text(exc: Any) -> str:
    rcvd = exc.rcvd
    if rcvd is None:
        return "connection closed without a close frame"
    reason = f" ({rcvd.reason})" if rcvd.reason else ""
    return f"server closed the connection with code {rcvd.code}{reason}"


def _sansio_applies(url: str) -> bool:
    """Whether forgectl's own sans-I/O transport serves ``url``.

    It does unless ``FORGECTL_TRANSPORT=websockets`` asks for websockets' asyncio
    client, or a proxy from the environment (``*_proxy``, minus ``no_proxy``)
    applies to the URL: websockets' client speaks HTTP and SOCKS proxies, and
    decides which applies exactly so.
    """
    if os.environ.get(ENV_TRANSPORT, "").strip().lower() == "websockets":
        return False
    if sys.platform.startswith("linux") and not any(
        value and name.lower().endswith("_proxy") and name.lower() != "no_proxy"
        for name, value in os.environ.items()
    ):
        # No proxy variable at all (Linux has no system proxy settings): skip
        # websockets' exact check, which imports urllib.request (10-20 ms).
        return True
    from websockets.proxy import get_proxy
    from websockets.uri import parse_uri

    try:
        return get_proxy(parse_uri(url)) is None
    except Exception:  # a URL websockets rejects: its client reports it
        return False


async def _watchdog(
    channel: Channel,
    decoder: Decoder,
    state: _LinkState,
    options: StreamOptions,
    settle: bool,
    diag: Diagnostics,
    backlog: bool = False,
) -> None:
    """Heartbeats, dead-peer detection and (without --follow) the settle rule.

    With ``backlog`` (a follow owing the end-of-history marker), a burst that has
    slowed to a trickle sets ``state.backlog_over``: a process that writes more
    often than the settle time never falls silent, yet its history is over.

    It polls a frame counter instead of arming a timer per frame, so the hot
    path pays one integer increment per frame.
    """
    loop = asyncio.get_running_loop()
    tick = min(options.stale_timeout / 4, options.ping_interval)
    if settle or backlog:
        tick = min(tick, options.settle / 2)
    tick = max(tick, 0.01)
    seen = -1
    seen_partial = 0
    changed = loop.time()
    next_ping = changed + options.ping_interval
    # Frames per tick over the last two ticks: the history arrives as a burst,
    # live output of a busy process as a trickle.
    recent = [TRICKLE + 1, TRICKLE + 1]
    while True:
        await asyncio.sleep(tick)
        now = loop.time()
        delta = state.frames - max(seen, 0)
        partial = channel.progress()
        if partial != seen_partial:
            # Mid-frame: the link is busy, neither silent nor a trickle.
            seen_partial = partial
            changed = now
            delta = max(delta, TRICKLE + 1)
        if state.frames != seen:
            seen = state.frames
            changed = now
        idle = now - changed
        recent = [recent[1], delta]
        # A process writing faster than --settle never falls silent: once the
        # burst has slowed to a trickle, the history is over too.
        trickle = seen > 0 and max(recent) <= TRICKLE
        if backlog and trickle:
            state.live_from = state.tick - 1
            state.backlog_over = True
            backlog = False
        state.tick += 1
        if settle:
            limit = options.settle if seen > 0 else options.first_frame_wait
            # Without --follow, a silence long enough to call the peer dead also
            # ends the backlog: settle rather than reconnect to a silent server forever.
            if idle >= min(limit, options.stale_timeout) or trickle:
                state.settled = True
                await channel.close()
                return
        if idle >= options.stale_timeout:
            diag.trace(f"no frame for {idle:.0f} s: the peer looks dead")
            state.stale = True
            channel.abort()
            return
        if decoder.app_ping is not None and now >= next_ping:
            next_ping = now + options.ping_interval
            diag.trace("sending app-level ping", 2)
            try:
                await channel.send(decoder.app_ping)
            except Exception:  # the frame loop will see the broken link
                return


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
    ) -> None:
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
        if route.sse:
            from .sse import open_sse

            return await open_sse(self.endpoint, route.path, route.query, what=plan.what)
        if _sansio_applies(self.endpoint.server.ws_url(route.path)):
            from .sansio import Redirected, open_sansio

            try:
                return await open_sansio(
                    self.endpoint,
                    route.path,
                    route.query,
                    what=plan.what,
                    ping_interval=self.options.ping_interval,
                    ping_timeout=self.options.stale_timeout,
                )
            except Redirected:
                self.diag.trace("redirected: following it with websockets' client")
        from .transport import open_websocket

        ws = await open_websocket(
            self.endpoint,
            route.path,
            route.query,
            what=plan.what,
            ping_interval=self.options.ping_interval,
            ping_timeout=self.options.stale_timeout,
        )
        return WebSocketChannel(ws)

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
