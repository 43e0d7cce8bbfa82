"""Small HTTP requests (health probe, REST look-ups) through httpx."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson

from .errors import ForgeError, ProtocolError
from .transport import Endpoint, connect_error, status_error

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
    """GET a path; return (status, content type, body). Raises ConnectError."""
    import httpx

    url = endpoint.server.http_url(path, query)
    try:
        async with client(endpoint, timeout) as http:
            response = await http.get(endpoint.server.http_url(path, endpoint.query(query)))
            return (
                response.status_code,
                response.headers.get("content-type", ""),
                response.content,
            )
    except httpx.TransportError as exc:
        raise connect_error(url, root_cause(exc)) from None


async def peek(
    endpoint: Endpoint, path: str, *, timeout: float | None = None
) -> tuple[int, str, bytes]:
    """(status, content type, body) of a small GET, as :func:`get` gives, made on a
    stream's start-up path: without a proxy it uses the standard library's
    http.client in a thread, since importing httpx costs 60-150 ms. With a proxy
    from the environment, :func:`get` (httpx) makes it. Raises ConnectError."""
    from .stream import _sansio_applies

    if not _sansio_applies(endpoint.server.ws_url(path)):
        return await get(endpoint, path, timeout=timeout)
    shown = endpoint.server.http_url(path)
    url = endpoint.server.http_url(path, endpoint.query())
    limit = timeout or endpoint.open_timeout
    try:
        return await asyncio.wait_for(asyncio.to_thread(_blocking_get, endpoint, url, limit), limit)
    except (OSError, TimeoutError) as exc:
        raise connect_error(shown, exc) from None


def _blocking_get(endpoint: Endpoint, url: str, timeout: float) -> tuple[int, str, bytes]:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port
    conn = (
        http.client.HTTPSConnection(host, port, timeout=timeout, context=endpoint.ssl_context())
        if endpoint.server.tls
        else http.client.HTTPConnection(host, port, timeout=timeout)
    )
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", target, headers=endpoint.headers())
        response = conn.getresponse()
        ctype = response.getheader("content-type") or ""
        return response.status, ctype, response.read(1 << 20)
    except http.client.HTTPException as exc:  # not HTTP, or cut short
        raise ConnectionError(f"bad HTTP answer ({type(exc).__name__})") from None
    finally:
        conn.close()


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
        raise ForgeError(f"{url}: {payload.get('message') or 'request failed'}")
    return payload["data"]
