"""WebSocket streams over websockets' asyncio client: the fallback transport.

forgectl's own sans-I/O transport (:mod:`.sansio`) is faster; this one serves
what it does not: HTTP and SOCKS proxies, and redirects. Same wire behaviour
and the same errors (the mapping in :mod:`.handshake` is shared).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..constants import MAX_MESSAGE_SIZE
from .base import Channel, record_close
from .endpoint import Endpoint, user_agent
from .handshake import handshake_error, speaks_tls_instead
from .proxy import proxy_applies, refuse_plaintext_proxy

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection


class WebSocketChannel(Channel):
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.heard_at = asyncio.get_running_loop().time()

    def receiver(self) -> Callable[[], Awaitable[list[bytes]]]:
        # websockets' asyncio API has no public way to take what it has buffered
        # without waiting: one message per batch.
        recv = self.ws.recv
        loop = asyncio.get_running_loop()

        async def receive() -> list[bytes]:
            message = await recv(False)
            self.heard_at = loop.time()
            return [message]

        return receive

    def last_heard(self) -> float:
        return self.heard_at

    async def ping(self) -> None:
        pong = asyncio.ensure_future(await self.ws.ping())
        pong.add_done_callback(self._ponged)

    def _ponged(self, pong: asyncio.Future[float]) -> None:
        if not pong.cancelled() and pong.exception() is None:
            self.heard_at = asyncio.get_running_loop().time()

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


async def open_websocket(
    endpoint: Endpoint,
    path: str,
    query: dict[str, str] | None = None,
    *,
    what: str = "stream",
    max_size: int = MAX_MESSAGE_SIZE,
) -> WebSocketChannel:
    """Open a WebSocket to ``path``; raise a :class:`ForgeError` on any failure."""
    from websockets.asyncio.client import connect

    refuse_plaintext_proxy(endpoint, "websocket")
    url = endpoint.server.ws_url(path, endpoint.query(query))
    shown = endpoint.server.ws_url(path, query)
    kwargs: dict[str, Any] = {}
    ctx = endpoint.ssl_context()
    if ctx is not None:
        kwargs["ssl"] = ctx
    try:
        ws = await connect(
            url,
            additional_headers=endpoint.headers(),
            max_size=max_size,
            open_timeout=endpoint.open_timeout,
            ping_interval=None,  # the driver's watchdog pings (it asks ping())
            close_timeout=2,
            compression="deflate",
            user_agent_header=user_agent(),
            **kwargs,
        )
    except Exception as exc:
        error = handshake_error(exc, shown, what, endpoint.open_timeout, endpoint.cacert)
        if error is None:
            raise
        from websockets.exceptions import InvalidMessage

        if isinstance(exc, InvalidMessage) and error.answered is None and not proxy_applies(url):
            error = await speaks_tls_instead(endpoint, shown) or error
        raise error from None
    return WebSocketChannel(ws)
