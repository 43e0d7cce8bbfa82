"""Whether a proxy from the environment applies to a URL, and what it may see.

websockets' client and httpx both honour ``*_PROXY`` / ``NO_PROXY``; forgectl's
own transports (the sans-I/O WebSocket, the standard library's HTTP) do not
speak proxies, so a URL a proxy applies to goes to those libraries instead.

A proxy reads everything that is not encrypted: to an ``http://`` / ``ws://``
server the token (``?token=`` and the ``token`` cookie) would reach it in clear,
through a CONNECT tunnel or in an absolute-URI GET its access log keeps.
:func:`refuse_plaintext_proxy` stops that before anything is sent, unless the
endpoint allows it (``--allow-plaintext-proxy``).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Literal

from ..errors import UsageError

if TYPE_CHECKING:
    from ..urls import Server
    from .endpoint import Endpoint


def _no_proxy_variables() -> bool:
    # Linux has no system proxy settings: without a variable there is no proxy,
    # and the exact check (which imports urllib.request, 10-20 ms) can be skipped.
    return sys.platform.startswith("linux") and not any(
        value and name.lower().endswith("_proxy") and name.lower() != "no_proxy"
        for name, value in os.environ.items()
    )


def proxy_applies(url: str) -> bool:
    """Whether a proxy from the environment (``*_proxy``, minus ``no_proxy``)
    applies to ``url``, decided exactly as websockets' client decides it."""
    if _no_proxy_variables():
        return False
    from websockets.proxy import get_proxy
    from websockets.uri import parse_uri

    try:
        return get_proxy(parse_uri(url)) is not None
    except Exception:  # a URL websockets rejects: its client reports it
        return True


Stack = Literal["websocket", "http"]


def plaintext_proxy(server: Server, via: Stack) -> str | None:
    """The proxy that would carry an unencrypted connection to ``server`` (its URL,
    without credentials), or None: always None for an ``https`` server.

    Each stack is asked as it decides: websockets' client for WebSocket streams
    (``ws`` proxies, then SOCKS, ``HTTPS_PROXY`` and ``HTTP_PROXY``, minus
    ``NO_PROXY``), and for httpx (REST look-ups, event streams) ``HTTP_PROXY``,
    else ``ALL_PROXY``, minus ``NO_PROXY``."""
    if server.tls or _no_proxy_variables():
        return None
    import urllib.request

    proxy: str | None = None
    if via == "websocket":
        from websockets.proxy import get_proxy
        from websockets.uri import parse_uri

        try:
            proxy = get_proxy(parse_uri(server.ws_url("/")))
        except Exception:
            proxy = None
    else:
        proxies = urllib.request.getproxies()
        candidate = proxies.get("http") or proxies.get("all")
        host = f"[{server.host}]" if ":" in server.host else server.host
        if candidate and not urllib.request.proxy_bypass(f"{host}:{server.port}"):
            proxy = candidate
    return _without_credentials(proxy) if proxy else None


def _without_credentials(proxy: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        netloc = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "a proxy from the environment"
    return f"{parts.scheme}://{netloc}"


def refuse_plaintext_proxy(endpoint: Endpoint, via: Stack) -> None:
    """Raise :class:`UsageError` (exit 2) when ``endpoint``'s token would cross a
    proxy unencrypted on ``via`` and the endpoint does not allow it."""
    if not endpoint.token or endpoint.plaintext_proxy:
        return
    proxy = plaintext_proxy(endpoint.server, via)
    if proxy is None:
        return
    raise UsageError(
        f"refusing to send the token to {endpoint.server.url} through the proxy {proxy} "
        "(from the environment): the server URL is not https, so the proxy would read "
        "the token; use an https:// server, list the server in NO_PROXY, or allow it "
        "with --allow-plaintext-proxy"
    )
