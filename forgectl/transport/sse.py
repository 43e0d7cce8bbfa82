"""Server-sent events (the real server's ``GET /api/events``) as a channel.

httpx does the HTTP; the event-stream lines are read here rather than through
httpx-sse because every line is a sign of life, the server's keep-alive
comments (``:`` every 15 s) included, and a quiet but alive server must not be
taken for a dead one. A reader task feeds a small bounded queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import StreamLost
from . import rest
from .base import Channel
from .endpoint import Endpoint
from .handshake import connect_error, status_error
from .proxy import refuse_plaintext_proxy

_END = object()
#: Put by abort(): the frame loop ends, as a WebSocket channel's does when aborted.
_ABORTED = object()
#: The event types whose data is a frame (the real server names its patches).
_EVENTS = ("json_patch", "message")
#: Newer upstream servers end the replay with an empty ``ready`` event: passed
#: on as the frame their WebSocket streams send for it.
_READY = "ready"
_READY_FRAME = '{"Ready":true}'


class SSEChannel(Channel):
    def __init__(self, http: Any, response: Any) -> None:
        self.http = http
        self.response = response
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=256)
        self.heard_at = asyncio.get_running_loop().time()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        event = ""
        data: list[str] = []
        try:
            async for line in self.response.aiter_lines():
                self.heard_at = loop.time()
                if not line:  # a blank line dispatches the event
                    if data and (event or "message") in _EVENTS:
                        await self.queue.put("\n".join(data))
                    elif event == _READY:
                        await self.queue.put(_READY_FRAME)
                    event, data = "", []
                    continue
                if line.startswith(":"):
                    continue  # a comment: the keep-alive
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    event = value
                elif name == "data":
                    data.append(value)
            await self.queue.put(_END)
        except Exception as exc:  # network failure: hand it to the frame loop
            await self.queue.put(exc)

    def receiver(self) -> Callable[[], Awaitable[list[bytes]]]:
        queue = self.queue

        async def receive() -> list[bytes]:
            item = await queue.get()
            batch: list[bytes] = []
            while True:
                if item is _END or item is _ABORTED:
                    if batch:  # deliver what came first; the end comes next time
                        queue.put_nowait(item)
                        return batch
                    raise StreamLost("event stream ended") if item is _ABORTED else _Ended()
                if isinstance(item, Exception):
                    if batch:
                        queue.put_nowait(item)
                        return batch
                    raise StreamLost(f"event stream broke: {str(item) or type(item).__name__}")
                batch.append(item.encode())
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return batch

        return receive

    def closed_by(self, exc: BaseException) -> None:
        if isinstance(exc, _Ended):
            return  # the server ended the response: a clean close
        if isinstance(exc, StreamLost):
            raise exc
        raise StreamLost(str(exc) or type(exc).__name__)

    def last_heard(self) -> float:
        return self.heard_at

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


class _Ended(Exception):
    """The event stream's response ended."""


async def open_sse(
    endpoint: Endpoint, path: str, query: dict[str, str], *, what: str
) -> SSEChannel:
    import httpx

    refuse_plaintext_proxy(endpoint, "http")
    http = rest.client(endpoint, stream=True)
    url = endpoint.server.http_url(path, endpoint.query(query))
    shown = endpoint.server.http_url(path, query)
    try:
        request = http.build_request("GET", url, headers={"Accept": "text/event-stream"})
        response = await asyncio.wait_for(http.send(request, stream=True), endpoint.open_timeout)
    except (httpx.TransportError, TimeoutError) as exc:
        await http.aclose()
        raise connect_error(shown, rest.root_cause(exc), endpoint.cacert) from None
    ctype = response.headers.get("content-type", "")
    if response.status_code != 200 or "text/event-stream" not in ctype:
        body = await response.aread()
        await response.aclose()
        await http.aclose()
        raise status_error(
            shown, response.status_code, ctype, body, what, response.headers.get("server")
        )
    return SSEChannel(http, response)
