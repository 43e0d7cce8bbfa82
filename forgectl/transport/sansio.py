"""WebSocket streams over websockets' sans-I/O protocol, driven by an asyncio.Protocol.

websockets' asyncio client pays, per message, a future, a queue hop and a task
switch (its ``Assembler``); a log stream is hundreds of thousands of small
messages. Here ``data_received`` parses every frame a network read brought
(the common frame in bulk, :mod:`.frames`) and the driver takes them as one
batch: one await per read, not per message.

Same wire behaviour as :func:`forgectl.transport.wsclient.open_websocket`: the same
request headers, permessage-deflate offered, the same message size limit, the
same handshake errors (the mapping is shared), answers to the server's pings,
pings when the driver asks, a 2 s close handshake. Reading pauses while more than
:data:`HIGH_WATER` bytes of complete messages wait for the consumer, so a slow
stdout keeps memory bounded. Frames are never decoded: bad UTF-8 is the
decoder's business, not a reason to drop the link.

Not used through a proxy (websockets' client speaks HTTP and SOCKS proxies):
:class:`forgectl.transport.Transport` picks the transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidMessage, InvalidStatus
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.protocol import State
from websockets.uri import parse_uri

from ..constants import MAX_MESSAGE_SIZE
from .base import Channel, record_close
from .endpoint import Endpoint, user_agent
from .frames import FrameReader
from .handshake import handshake_error, speaks_tls_instead

#: Pause reading while this many bytes of complete messages await the consumer.
HIGH_WATER = 1 << 20
#: How long a closing handshake may take before the connection is dropped.
CLOSE_TIMEOUT = 2.0

_CONNECTING = State.CONNECTING
_OPEN = State.OPEN


class Redirected(Exception):
    """The handshake was answered with a redirect: websockets' client follows those."""


class _Link(asyncio.Protocol):
    """The asyncio side: bytes in, complete messages out, protocol replies sent."""

    def __init__(self, ws: ClientProtocol, headers: dict[str, str]) -> None:
        self.ws = ws
        self.headers = headers
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = self.loop.create_future()
        self.lost: asyncio.Future[None] = self.loop.create_future()
        #: Frames in, messages out: the common frame parsed here, the rest by ``ws``.
        self.reader = FrameReader(ws)
        #: Complete messages not yet taken by :meth:`receive`, and their size.
        self.messages: list[bytes] = []
        self.buffered = 0
        #: When the peer last said anything whole: a frame, a pong (loop time).
        self.heard_at = self.loop.time()
        #: Bytes received so far.
        self.received = 0
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False
        self.closing = False
        self.close_timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        ws = self.ws
        request = ws.connect()
        request.headers.update(self.headers)
        request.headers.setdefault("User-Agent", user_agent())
        ws.send_request(request)
        self.flush()

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        self._read(data)

    def eof_received(self) -> bool:
        # A handshake answer without Content-Length ends at EOF.
        self._read(None)
        return False  # the transport closes itself: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._read(None, send=False)  # idempotent: the protocol is CLOSED afterwards
        if not self.opened.done():
            self.opened.set_exception(
                self.ws.handshake_exc
                or ConnectionResetError("connection lost during the handshake")
            )
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if not self.lost.done():
            self.lost.set_result(None)

    # -- our side ------------------------------------------------------------------

    def _read(self, data: bytes | None, *, send: bool = True) -> None:
        """Bytes (None: the end of the stream) through the reader: settle the
        handshake, hand over the messages, then send the protocol's answers
        (pongs, the close echo, EOF).

        Sending comes last: closing a TLS transport can call :meth:`eof_received`
        (or :meth:`data_received`) back at once, and that nested call must find
        this one's work done, the handshake's answer included."""
        reader = self.reader
        messages = self.messages
        count = len(messages)
        frames = reader.frames
        size = reader.feed(data, messages) if data is not None else reader.feed_eof(messages)
        added = len(messages) - count
        if added or reader.frames != frames:  # whole frames (pongs too), not bytes of one
            self.heard_at = self.loop.time()
        opened = self.opened
        if not opened.done():
            ws = self.ws
            if ws.handshake_exc is not None:
                opened.set_exception(ws.handshake_exc)
            elif ws.state is not _CONNECTING:  # open, or already closing
                opened.set_result(None)
        if added:
            self.buffered += size
            waiter = self.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            if self.buffered > HIGH_WATER and not self.paused and not self.closing:
                self.paused = True
                assert self.transport is not None
                self.transport.pause_reading()
        if not send:  # the connection is gone: nothing to answer, nothing to time
            return
        if self.ws.close_expected() and self.close_timer is None:
            self.close_timer = self.loop.call_later(CLOSE_TIMEOUT, self.abort)
        self.flush()

    def flush(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for data in self.ws.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                with contextlib.suppress(Exception):
                    transport.write_eof()
            else:
                transport.close()

    def abort(self) -> None:
        self.close_timer = None
        if self.transport is not None:
            self.transport.abort()

    async def receive(self) -> list[bytes]:
        """Every complete message buffered, waiting for one if there are none.

        Raises ``ConnectionClosed`` once the connection is closed and drained.
        """
        if not self.messages:
            if self.lost.done():
                raise self.ws.close_exc
            waiter = self.waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                self.waiter = None
            if not self.messages:
                raise self.ws.close_exc
        batch = self.messages
        self.messages = []
        self.buffered = 0
        if self.paused:
            self.paused = False
            assert self.transport is not None
            self.transport.resume_reading()
        return batch

    def fail(self, code: int, reason: str) -> None:
        ws = self.ws
        if ws.state is _OPEN:
            ws.fail(code, reason)
            self.flush()
            if self.close_timer is None:
                self.close_timer = self.loop.call_later(CLOSE_TIMEOUT, self.abort)


class SansIOChannel(Channel):
    """A :class:`~forgectl.transport.base.Channel` over :class:`_Link`."""

    def __init__(self, link: _Link) -> None:
        self.link = link

    def receiver(self) -> Callable[[], Awaitable[list[bytes]]]:
        return self.link.receive

    def closed_by(self, exc: BaseException) -> None:
        record_close(self, exc)

    def last_heard(self) -> float:
        return self.link.heard_at

    def received(self) -> int:
        return self.link.received

    async def ping(self) -> None:
        link = self.link
        if link.ws.state is _OPEN:
            link.ws.send_ping(os.urandom(4))
            link.flush()

    async def send(self, data: bytes) -> None:
        link = self.link
        link.ws.send_text(data)  # raises InvalidState unless open
        link.flush()

    async def close(self) -> None:
        link = self.link
        link.closing = True
        if link.paused and link.transport is not None:
            link.paused = False
            link.transport.resume_reading()
        with contextlib.suppress(Exception):
            if link.ws.state is _OPEN:
                link.ws.send_close(1000)
                link.flush()
        if link.lost.done():
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await asyncio.shield(link.lost)
        except TimeoutError:
            link.abort()
            await asyncio.shield(link.lost)

    def abort(self) -> None:
        self.link.abort()

    def progress(self) -> int:
        # Bytes of a message not yet complete: a 64 MiB frame on a slow link is
        # not silence (complete messages are counted by the driver).
        return self.link.reader.pending()


async def open_sansio(
    endpoint: Endpoint,
    path: str,
    query: dict[str, str] | None = None,
    *,
    what: str = "stream",
    max_size: int = MAX_MESSAGE_SIZE,
) -> SansIOChannel:
    """Open ``path`` like :func:`~forgectl.transport.open_websocket` does, failing
    with the same :class:`~forgectl.errors.ForgeError`; :class:`Redirected` for a
    3xx answer (the caller retries with websockets' client, which follows it)."""
    url = endpoint.server.ws_url(path, endpoint.query(query))
    shown = endpoint.server.ws_url(path, query)
    ctx = endpoint.ssl_context()
    loop = asyncio.get_running_loop()
    link: _Link | None = None
    try:
        uri = parse_uri(url)
        ws = ClientProtocol(
            uri,
            extensions=enable_client_permessage_deflate(None),
            max_size=max_size,
        )
        link = _Link(ws, endpoint.headers())
        made = link
        async with asyncio.timeout(endpoint.open_timeout):
            if ctx is None:
                await loop.create_connection(lambda: made, uri.host, uri.port)
            else:
                await loop.create_connection(
                    lambda: made, uri.host, uri.port, ssl=ctx, server_hostname=uri.host
                )
            await link.opened
    except BaseException as exc:
        if link is not None:
            link.abort()
        if not isinstance(exc, Exception):
            raise
        if isinstance(exc, InvalidStatus) and 300 <= exc.response.status_code < 400:
            raise Redirected(str(exc)) from None
        error = handshake_error(exc, shown, what, endpoint.open_timeout, endpoint.cacert)
        if error is None:
            raise
        if isinstance(exc, InvalidMessage) and error.answered is None:  # not HTTP: TLS?
            error = await speaks_tls_instead(endpoint, shown) or error
        raise error from None
    return SansIOChannel(link)
