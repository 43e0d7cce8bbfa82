"""The stream driver: connect, read frames, keep the link alive, reconnect.

One loop serves every command and every dialect::

    socket → channel (transport) → Connection: decoder.feed() → events
           (→ pipeline → renderer)

Reconnects follow the spec's strategy (1 s doubling to 30 s, with jitter, reset
once a connection delivers). The decoder decides what a resent history means,
so output stays exactly-once across reconnects.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING

from ..constants import BACKOFF_INITIAL
from ..errors import ConnectError, ForgeError, NotFoundError, StreamLost
from ..events import Event
from ..transport import Channel, Transport, default_transport
from .backoff import Backoff
from .connection import Connection, Outcome
from .history import Boundary, SettledHistory, TailHistory
from .options import StreamOptions
from .verify import read_history
from .watchdog import Watch, watchdog

#: When a stream ends while its connection is still being checked (see .verify),
#: how long to wait for that check before ending anyway.
CHECK_TIMEOUT = 10.0

if TYPE_CHECKING:
    from ..diagnostics import Diagnostics
    from ..dialects.base import Dialect, Plan, StreamRequest, Verifier
    from ..transport import Endpoint


async def _close_quickly(channel: Channel, timeout: float = 0.5) -> None:
    try:
        async with asyncio.timeout(timeout):
            await channel.close()
    except TimeoutError:
        channel.abort()


def _deliver(batch: list[Event], sink: Callable[[Event], object]) -> None:
    """``sink`` each event, then let go of them all: nothing delivered is held while
    the next read is awaited (a 64 MiB entry would be, by a loop variable)."""
    for event in batch:
        sink(event)
    batch.clear()


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
        #: A connection has opened: what fails from now on failed after a start.
        self.opened = False
        #: The form the consumer prints events in, when it takes them pre-encoded
        #: (see :meth:`pump`).
        self.fused: str | None = None

    async def _open(self, plan: Plan) -> Channel:
        route = plan.route
        self.diag.trace(f"connecting to {self.endpoint.server.http_url(route.path, route.query)}")
        return await self.transport.open(
            self.endpoint,
            route,
            what=plan.what,
            max_size=self.options.max_message_size,
            trace=self.diag.trace,
        )

    async def _check(self, plan: Plan, verifier: Verifier) -> Verifier:
        """Read ``plan``'s history once more, on a connection of its own."""
        return await read_history(
            lambda: self._open(plan),
            verifier,
            self.options.settle,
            self.options.first_frame_wait,
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
        return self._events()

    async def _events(self) -> AsyncGenerator[Event, None]:
        async for batch in self._batches():
            for event in batch:
                yield event
            batch.clear()

    async def pump(self, sink: Callable[[Event], object], fused: str | None = None) -> None:
        """Deliver every event to ``sink`` until the stream ends: iteration minus
        a generator hop per event (the CLI's path when nothing stops it early).

        ``fused``: ``sink`` prints events in that form (``"json"``, ``"raw"``) and
        needs nothing else of them, so decoders that can write it straight from
        the frames deliver runs of events already in it (see ``Decoder.fuse``)."""
        self.fused = fused
        async for batch in self._batches():
            _deliver(batch, sink)

    async def _batches(self) -> AsyncGenerator[list[Event], None]:
        """The one path from connections to events: each connection's batches,
        over reconnects."""
        loop = asyncio.get_running_loop()
        options = self.options
        if options.wait_start:
            self._start_deadline = loop.time() + options.wait_start
        plan = self.plan = await self._plan(self._start_deadline)
        backoff = Backoff(options.backoff_initial)
        first = True
        retry_for = options.retry_for
        deadline = None if retry_for is None else loop.time() + retry_for
        settle = not self.request.follow
        history_owed = settle or options.mark_backlog
        resync = False
        connections = 0
        while True:
            if resync:  # at once: the decoder asked for the history again
                channel = await self._open(plan)
            else:
                channel, plan = await self._connect(plan, backoff, first, deadline)
            if plan is not self.plan:
                self.plan = plan
            decoder = plan.decoder
            if self.fused is not None:
                decoder.fuse(self.fused)
            first = False
            deadline = None
            self.dialect.connected(self.diag)
            self._channel = channel
            decoder.connected()
            opened_at = loop.time()
            history: Boundary | None = None
            if (history_owed or decoder.history_rule) and not decoder.knows_history:
                # A process that had ended sends nothing live: all of it is history.
                rule_name = decoder.history_rule
                early = not decoder.ended and (
                    rule_name in ("early", "events") or (options.tail_history and not settle)
                )
                if early:
                    history = TailHistory(
                        opened_at,
                        options.settle,
                        options.first_frame_wait,
                        bursts=rule_name == "events",
                    )
                else:
                    history = SettledHistory(opened_at, options.settle, options.first_frame_wait)
            if self._waiting_said and connections == 0:
                decoder.appeared()
            connections += 1
            self.opened = True
            connection = Connection(
                channel,
                decoder,
                self.diag,
                history=history,
                settle=settle,
                mark=options.mark_backlog,
                check=functools.partial(self._check, plan),
            )
            watch = Watch()
            dog = asyncio.create_task(watchdog(channel, decoder, options, self.diag, watch))
            lost: StreamLost | None = None
            try:
                async for batch in connection.batches():
                    yield batch
            except StreamLost as exc:
                lost = exc
            except ForgeError:
                # A fatal error (a message over the limit...): what the decoder
                # holds was received, so it is printed before the error ends it.
                dog.cancel()
                held = [*connection.cancel_check(), *decoder.quiet()]
                if held:
                    yield held
                await _close_quickly(channel)
                raise
            except BaseException:
                # Ctrl-C, SIGTERM, or a consumer that stopped iterating: leave the
                # server a normal close (1000), without waiting long for it.
                dog.cancel()
                connection.cancel_check()
                await _close_quickly(channel)
                raise
            finally:
                dog.cancel()
                self._channel = None
            outcome = connection.outcome
            if lost is None and outcome is Outcome.DONE:
                await _close_quickly(channel)
                healed = await connection.settle_check(CHECK_TIMEOUT)
                if healed:
                    yield healed
                return
            held = connection.cancel_check()
            if held:
                yield held
            if lost is None and outcome is Outcome.SETTLED:
                await _close_quickly(channel)
                tail = list(decoder.settled())
                if tail:
                    yield tail
                return
            resync = lost is None and outcome is Outcome.RESYNC
            if resync:
                self.diag.trace(f"{decoder.resync}: reading the history again")
                decoder.resync = None
                await _close_quickly(channel)
                history_owed = settle or options.mark_backlog
                continue
            if lost is None:
                code = channel.close_code
                if decoder.end_on_close and code == 1000:
                    return
                lost = StreamLost(
                    f"server closed the connection with code {code}"
                    if code is not None
                    else "connection closed"
                )
            if watch.stale:
                lost = StreamLost(f"nothing heard for {options.stale_timeout:g} s (dead peer)")
            if not options.reconnect:
                raise StreamLost(f"connection lost: {lost}")
            # The spec resets the delay once a connection opens; a connection that
            # delivered nothing and died at once does not count (a server that
            # accepts and drops must not be hammered every second).
            if connection.frames or loop.time() - opened_at >= BACKOFF_INITIAL:
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
