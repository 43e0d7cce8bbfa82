"""What every transport gives the stream driver: a channel of frames.

A :class:`Channel` is one open connection. The driver takes frames from it in
batches (:meth:`Channel.receiver`) or one by one with silence markers
(:meth:`Channel.frames`), and closes or aborts it. Transports never decode
frames and never retry: decoding is the dialects' job, retrying the driver's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import StreamLost

if TYPE_CHECKING:
    from websockets.exceptions import ConnectionClosed


@dataclass(slots=True)
class Route:
    """One stream to open: a WebSocket path, or an SSE path when ``sse`` is true."""

    path: str
    query: dict[str, str] = field(default_factory=dict)
    sse: bool = False


class Quiet:
    """Marker yielded by a channel when the stream has been silent a while."""


QUIET = Quiet()


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


def _close_text(exc: ConnectionClosed) -> str:
    rcvd = exc.rcvd
    if rcvd is None:
        return "connection closed without a close frame"
    reason = f" ({rcvd.reason})" if rcvd.reason else ""
    return f"server closed the connection with code {rcvd.code}{reason}"
