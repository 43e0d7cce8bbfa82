"""Small HTTP requests (health probe, REST look-ups), and httpx clients for streams."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from ..errors import ProtocolError
from ..escape import escape_line
from .endpoint import Endpoint, user_agent
from .handshake import connect_error, speaks_tls_instead, status_error
from .proxy import proxy_applies, refuse_plaintext_proxy

if TYPE_CHECKING:
    import httpx


def client(
    endpoint: Endpoint, timeout: float | None = None, *, stream: bool = False
) -> httpx.AsyncClient:
    """An HTTP client for ``endpoint``; a ``stream`` one never times out a read
    (the stream's watchdog tells a dead peer from a quiet one)."""
    import httpx

    ctx = endpoint.ssl_context()
    limit = timeout or endpoint.open_timeout
    return httpx.AsyncClient(
        headers={"Cookie": f"token={endpoint.token}"} if endpoint.token else {},
        timeout=httpx.Timeout(limit, read=None) if stream else httpx.Timeout(limit),
        verify=ctx if ctx is not None else True,
        trust_env=True,
    )


async def get(
    endpoint: Endpoint,
    path: str,
    query: dict[str, str] | None = None,
    *,
    what: str = "resource",
    timeout: float | None = None,
) -> tuple[int, str, bytes]:
    """GET a path; return (status, content type, body). Raises ConnectError.

    Made by the endpoint's transport (:meth:`forgectl.transport.Transport.get`),
    so an injected transport carries the REST look-ups too."""
    if endpoint.transport is not None:
        return await endpoint.transport.get(endpoint, path, query, what=what, timeout=timeout)
    return await fetch(endpoint, path, query, what=what, timeout=timeout)


async def fetch(
    endpoint: Endpoint,
    path: str,
    query: dict[str, str] | None = None,
    *,
    what: str = "resource",
    timeout: float | None = None,
) -> tuple[int, str, bytes]:
    """The default transport's GET.

    These small GETs sit on start-up paths (auto-detection, telling a script from
    an agent), and importing httpx costs 60-150 ms: without a proxy they are made
    here, over asyncio with h11, so that Ctrl-C and the time limit end them at
    once, however slowly the answer trickles in. httpx makes them when a proxy
    from the environment applies."""
    refuse_plaintext_proxy(endpoint, "http")
    shown = endpoint.server.http_url(path, query)
    url = endpoint.server.http_url(path, endpoint.query(query))
    limit = timeout or endpoint.open_timeout
    if not proxy_applies(endpoint.server.http_url(path)):
        try:
            async with asyncio.timeout(limit):
                return await _get(endpoint, url)
        except (OSError, TimeoutError) as exc:
            error = connect_error(shown, exc, endpoint.cacert)
            if isinstance(exc, _BadAnswer):  # not HTTP: perhaps TLS, spoken to in plain
                raise await speaks_tls_instead(endpoint, shown) or error from None
            raise error from None
    import httpx

    try:
        async with client(endpoint, timeout) as http:
            response = await http.get(url)
            return (
                response.status_code,
                response.headers.get("content-type", ""),
                response.content,
            )
    except httpx.TransportError as exc:
        raise connect_error(shown, root_cause(exc), endpoint.cacert) from None


class _BadAnswer(ConnectionError):
    """The server's answer was not HTTP, or was cut short."""


#: The most of a REST answer read (a look-up's answer is small; an error page is cut).
MAX_BODY = 1 << 20


async def _get(endpoint: Endpoint, url: str) -> tuple[int, str, bytes]:
    import h11

    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port
    ctx = endpoint.ssl_context()
    reader, writer = await asyncio.open_connection(
        host, port, ssl=ctx, server_hostname=host if ctx is not None else None
    )
    try:
        conn = h11.Connection(h11.CLIENT)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = [
            ("Host", parts.netloc.rpartition("@")[2]),
            ("User-Agent", user_agent()),
            ("Accept", "*/*"),
            ("Connection", "close"),
            *endpoint.headers().items(),
        ]
        writer.write(conn.send(h11.Request(method="GET", target=target, headers=headers)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        status, ctype, body = 0, "", bytearray()
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                raise _BadAnswer("bad HTTP answer (not HTTP, or cut short)") from None
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                for name, value in event.headers:
                    if name == b"content-type":
                        ctype = value.decode("latin-1")
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) >= MAX_BODY:
                    break
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
        if not status:
            raise _BadAnswer("bad HTTP answer (no status line)")
        return status, ctype, bytes(body[:MAX_BODY])
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(0.2):
                await writer.wait_closed()


def root_cause(exc: BaseException) -> BaseException:
    """The OSError (refused, DNS, TLS) behind an httpx error, or a timeout."""
    import httpx

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, httpx.TimeoutException):
        return TimeoutError()
    return OSError(str(exc) or type(exc).__name__)


async def get_data(
    endpoint: Endpoint,
    path: str,
    query: dict[str, str] | None = None,
    *,
    what: str = "resource",
) -> Any:
    """GET a Forge REST path and unwrap its ``{success, data, ...}`` envelope."""
    status, ctype, body = await get(endpoint, path, query, what=what)
    url = endpoint.server.http_url(path, query)
    if status != 200:
        raise status_error(url, status, ctype, body, what)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProtocolError(f"{url}: expected JSON, got {ctype or 'no content type'}") from None
    if not isinstance(payload, dict) or "data" not in payload:
        raise ProtocolError(f"{url}: unexpected answer (not a Forge REST envelope)")
    if payload.get("success") is False:
        # The server answered, and said no: not a bug of ours (exit 1), a protocol-level
        # refusal (exit 6), with the server's words (escaped where they are printed).
        said = payload.get("message")
        said = escape_line(" ".join(str(said).split())[:200]) if said else "no reason given"
        raise ProtocolError(f"{url}: the server reported a failure: {said}")
    return payload["data"]
