"""What every transport gives the stream driver: a channel of frames.

A :class:`Channel` is one open connection. The driver takes frames from it in
batches (:meth:`Channel.receiver`), and closes or aborts it. Transports never
decode frames and never retry: decoding is the dialects' job, retrying the
driver's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import MessageTooBig, StreamLost
from ..escape import escape_line

if TYPE_CHECKING:
    from websockets.exceptions import ConnectionClosed


@dataclass(slots=True)
class Route:
    """One stream to open: a WebSocket path, or an SSE path when ``sse`` is true."""

    path: str
    query: dict[str, str] = field(default_factory=dict)
    sse: bool = False


class Channel:
    """One open connection delivering frames.

    The driver takes frames in batches from :meth:`receiver`, asks
    :meth:`last_heard` whether the peer is alive and :meth:`ping` to find out,
    and ends with :meth:`close` (a normal close) or :meth:`abort`.
    """

    close_code: int | None = None
    close_reason: str = ""

    def receiver(self) -> Callable[[], Awaitable[list[bytes]]]:
        """A coroutine function returning the next frames: every complete message
        buffered, waiting only when there is none (one await per network read,
        not per message). The driver calls :meth:`closed_by` with what it raises."""
        raise NotImplementedError

    def closed_by(self, exc: BaseException) -> None:
        """Record how the link closed; raise :class:`StreamLost` unless cleanly."""
        raise StreamLost(str(exc))

    def last_heard(self) -> float:
        """When the peer last said anything (loop time): a frame, a pong, a keep-alive.
        Bytes of a frame still arriving do not count."""
        raise NotImplementedError

    async def ping(self) -> None:
        """Ask the peer for a sign of life (a protocol ping), if the protocol has one."""

    def progress(self) -> int:
        """Bytes of a frame not yet complete (0 when none is arriving)."""
        return 0

    def received(self) -> int:
        """Bytes received so far (0 when the transport cannot tell)."""
        return 0

    async def send(self, data: bytes) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


def record_close(channel: Channel, exc: BaseException) -> None:
    """Record how a WebSocket closed (``exc``, websockets' ``ConnectionClosed``);
    raise :class:`StreamLost` unless cleanly. Any other exception is re-raised."""
    from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

    if not isinstance(exc, ConnectionClosed):
        raise exc
    rcvd = exc.rcvd
    channel.close_code = rcvd.code if rcvd is not None else None
    channel.close_reason = rcvd.reason if rcvd is not None else ""
    sent = exc.sent
    if sent is not None and sent.code == 1009:  # we refused a message over the limit
        cause = exc.__cause__
        raise MessageTooBig(getattr(cause, "size", None), getattr(cause, "max_size", None))
    if not isinstance(exc, ConnectionClosedOK):
        raise StreamLost(_close_text(exc)) from None


def _close_text(exc: ConnectionClosed) -> str:
    rcvd = exc.rcvd
    if rcvd is None:
        return "connection closed without a close frame"
    reason = f" ({escape_line(rcvd.reason)})" if rcvd.reason else ""
    return f"server closed the connection with code {rcvd.code}{reason}"
