"""Small HTTP requests (health probe, REST look-ups), and httpx clients for streams."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import ForgeError, ProtocolError
from .endpoint import Endpoint
from .handshake import connect_error, status_error
from .proxy import proxy_applies

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

    These small GETs sit on start-up paths (auto-detection, telling a script from
    an agent), and importing httpx costs 60-150 ms: without a proxy the standard
    library's http.client makes them, in a thread. httpx makes them when a proxy
    from the environment applies."""
    shown = endpoint.server.http_url(path, query)
    url = endpoint.server.http_url(path, endpoint.query(query))
    limit = timeout or endpoint.open_timeout
    if not proxy_applies(endpoint.server.http_url(path)):
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(_blocking_get, endpoint, url, limit), limit
            )
        except (OSError, TimeoutError) as exc:
            raise connect_error(shown, exc) from None
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
        raise connect_error(shown, root_cause(exc)) from None


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
