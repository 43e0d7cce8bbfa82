"""Transports: how bytes become frames, chosen in one place.

- :mod:`.sansio` — forgectl's WebSocket client over websockets' sans-I/O
  protocol (the fast path: frames handed over in batches, one wakeup per read).
- :mod:`.wsclient` — websockets' asyncio client (proxies, redirects).
- :mod:`.sse` — server-sent events over httpx (the real server's ``/api/events``).
- :mod:`.rest` — small HTTP GETs (health probe, REST look-ups).

:class:`Transport` is the one object the stream driver opens connections through
and the dialects make their REST GETs through; pass another one (a subclass,
``ForgeClient(transport=...)``) to change how forgectl connects, the way httpx
takes a transport.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Literal

from ..constants import ENV_TRANSPORT, MAX_MESSAGE_SIZE
from .base import Channel, Route, record_close
from .endpoint import Endpoint, user_agent
from .handshake import connect_error, handshake_error, status_error
from .proxy import proxy_applies

__all__ = [
    "Channel",
    "Endpoint",
    "Route",
    "Transport",
    "connect_error",
    "default_transport",
    "handshake_error",
    "proxy_applies",
    "record_close",
    "status_error",
    "user_agent",
]

WebSocketStack = Literal["auto", "sansio", "websockets"]


class Transport:
    """Opens the channel for a route.

    ``websocket="auto"`` (the default) uses forgectl's sans-I/O client unless a
    proxy from the environment applies to the URL, or the server redirects;
    websockets' asyncio client serves those. ``"sansio"`` and ``"websockets"``
    force one. SSE routes always go through httpx. :meth:`get` makes the small
    REST GETs (the standard library's http.client, or httpx behind a proxy).
    """

    def __init__(self, websocket: WebSocketStack = "auto") -> None:
        self.websocket = websocket

    async def open(
        self,
        endpoint: Endpoint,
        route: Route,
        *,
        what: str,
        max_size: int = MAX_MESSAGE_SIZE,
        trace: Callable[[str], None] | None = None,
    ) -> Channel:
        """A channel for ``route``; raise a :class:`~forgectl.errors.ForgeError`
        (with its exit code) when it cannot be opened. Heartbeats are the
        driver's: the channel only answers pings and sends those asked for."""
        if route.sse:
            from .sse import open_sse

            return await open_sse(endpoint, route.path, route.query, what=what)
        if self._sansio(endpoint.server.ws_url(route.path)):
            from .sansio import Redirected, open_sansio

            try:
                return await open_sansio(
                    endpoint, route.path, route.query, what=what, max_size=max_size
                )
            except Redirected:
                if trace is not None:
                    trace("redirected: following it with websockets' client")
        from .wsclient import open_websocket

        return await open_websocket(endpoint, route.path, route.query, what=what, max_size=max_size)

    async def get(
        self,
        endpoint: Endpoint,
        path: str,
        query: dict[str, str] | None = None,
        *,
        what: str = "resource",
        timeout: float | None = None,
    ) -> tuple[int, str, bytes]:
        """GET ``path`` (plus ``query``) on the endpoint's server: (status, content
        type, body). Raises :class:`~forgectl.errors.ConnectError` when it cannot."""
        from .rest import fetch

        return await fetch(endpoint, path, query, what=what, timeout=timeout)

    def _sansio(self, url: str) -> bool:
        if self.websocket == "auto":
            return not proxy_applies(url)
        return self.websocket == "sansio"


def default_transport() -> Transport:
    """The transport the CLI uses: ``FORGECTL_TRANSPORT=websockets`` forces
    websockets' asyncio client (an escape hatch, and the benchmarks' baseline)."""
    forced = os.environ.get(ENV_TRANSPORT, "").strip().lower()
    return Transport("websockets" if forced == "websockets" else "auto")
