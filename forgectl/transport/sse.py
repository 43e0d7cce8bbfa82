"""Server-sent events (the real server's ``GET /api/events``) as a channel.

httpx with httpx-sse does the HTTP and the SSE parsing; a reader task feeds a
small bounded queue so the frame loop can wait on it with a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ..errors import StreamLost
from . import rest
from .base import QUIET, Channel, Quiet
from .endpoint import Endpoint
from .handshake import connect_error, status_error

_END = object()
#: Put by abort(): the frame loop ends, as a WebSocket channel's does when aborted.
_ABORTED = object()


class SSEChannel(Channel):
    def __init__(self, http: Any, response: Any) -> None:
        self.http = http
        self.response = response
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=256)
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        from httpx_sse import EventSource

        try:
            async for event in EventSource(self.response).aiter_sse():
                if event.event in ("json_patch", "message") and event.data:
                    await self.queue.put(event.data)
            await self.queue.put(_END)
        except Exception as exc:  # network failure: hand it to the frame loop
            await self.queue.put(exc)

    async def frames(
        self, quiet_after: float | None, first_wait: float | None = None
    ) -> AsyncIterator[bytes | str | Quiet]:
        owed = first_wait is not None
        wait = first_wait
        while True:
            try:
                if owed and wait is not None:
                    async with asyncio.timeout(wait):
                        item = await self.queue.get()
                else:
                    item = await self.queue.get()
            except TimeoutError:
                owed = False
                yield QUIET
                continue
            if item is _END or item is _ABORTED:
                return
            if isinstance(item, Exception):
                raise StreamLost(f"event stream broke: {str(item) or type(item).__name__}")
            owed = quiet_after is not None
            wait = quiet_after
            yield item

    async def send(self, data: bytes) -> None:  # SSE is one-way
        return None

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(BaseException):
            await self.reader
        with contextlib.suppress(Exception):
            await self.response.aclose()
        with contextlib.suppress(Exception):
            await self.http.aclose()

    def abort(self) -> None:
        """The watchdog gave up on the peer: stop reading and end the frame loop
        (the driver then reconnects; the server replays what was missed)."""
        self.reader.cancel()
        while True:
            try:
                self.queue.put_nowait(_ABORTED)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()  # replayed after the reconnect anyway


async def open_sse(
    endpoint: Endpoint, path: str, query: dict[str, str], *, what: str
) -> SSEChannel:
    import httpx

    http = rest.client(endpoint, stream=True)
    url = endpoint.server.http_url(path, endpoint.query(query))
    shown = endpoint.server.http_url(path, query)
    try:
        request = http.build_request("GET", url, headers={"Accept": "text/event-stream"})
        response = await asyncio.wait_for(http.send(request, stream=True), endpoint.open_timeout)
    except (httpx.TransportError, TimeoutError) as exc:
        await http.aclose()
        raise connect_error(shown, rest.root_cause(exc)) from None
    ctype = response.headers.get("content-type", "")
    if response.status_code != 200 or "text/event-stream" not in ctype:
        body = await response.aread()
        await response.aclose()
        await http.aclose()
        raise status_error(shown, response.status_code, ctype, body, what)
    return SSEChannel(http, response)
