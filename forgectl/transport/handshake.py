"""What a failed connection means: every way a handshake or a request can fail,
as one :class:`~forgectl.errors.ForgeError` with the exit code a script needs
(refused → 3, 401/403 → 4, 404 → 5, a page that is not a WebSocket → 6).

Shared by every transport, so that they fail alike. Nothing here retries: that
is the stream driver's job.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from typing import TYPE_CHECKING

from ..errors import (
    AuthError,
    ConnectError,
    FatalConnectError,
    ForgeError,
    Hint,
    NotFoundError,
    ProtocolError,
    ServerError,
    UsageError,
)
from ..escape import escape_line

if TYPE_CHECKING:
    from .endpoint import Endpoint

#: OpenSSL's verify codes that no CA file can cure.
_NOT_YET_VALID = 9
_EXPIRED = 10
_HOSTNAME_MISMATCH = 62
_IP_ADDRESS_MISMATCH = 64


def describe_os_error(exc: BaseException, cacert: str | None = None) -> str:
    """What went wrong, in a few words; ``cacert``: the CA file in use, if any."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host ({exc.strerror or exc})"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _certificate(exc, cacert)
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or exc})"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _certificate(exc: ssl.SSLCertVerificationError, cacert: str | None) -> str:
    """Why the server's certificate was refused, given what was already tried (the
    flags that can help are the command line's: see :func:`_trust_hint`)."""
    why = exc.verify_message or exc.reason or str(exc)
    code = exc.verify_code
    if code in (_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH):
        return f"TLS certificate is not for this host ({why}); connect with a name it lists"
    if code in (_NOT_YET_VALID, _EXPIRED):
        return (
            f"TLS certificate not valid now ({why}); check the server's certificate "
            "and this machine's clock"
        )
    if cacert:
        return (
            f"TLS certificate not trusted ({why}): it is not signed by the CA in "
            f"{cacert}; check that file"
        )
    return f"TLS certificate not trusted ({why})"


def _trust_hint(exc: BaseException, cacert: str | None) -> Hint | None:
    """A CA file cures an unknown issuer (unless one was given), never a wrong
    name or date: then only skipping verification helps."""
    if not isinstance(exc, ssl.SSLCertVerificationError):
        return None
    unknown_issuer = exc.verify_code not in (
        _HOSTNAME_MISMATCH,
        _IP_ADDRESS_MISMATCH,
        _NOT_YET_VALID,
        _EXPIRED,
    )
    return Hint.TRUST if unknown_issuer and not cacert else Hint.INSECURE


def connect_error(url: str, exc: BaseException, cacert: str | None = None) -> ConnectError:
    reason = describe_os_error(exc, cacert)
    hint = " — is Forge running?" if isinstance(exc, ConnectionRefusedError) else ""
    tls = url.startswith(("wss:", "https:"))
    if (
        tls
        and isinstance(exc, (ConnectionResetError, ssl.SSLError))
        and not isinstance(exc, ssl.SSLCertVerificationError)
    ):
        hint = " during the TLS handshake — does the server speak plain http? (try http://)"
    if isinstance(exc, (ssl.SSLCertVerificationError, socket.gaierror)):
        cls: type[ConnectError] = FatalConnectError
    else:
        cls = ConnectError
    return cls(f"cannot connect to {url}: {reason}{hint}", url=url, hint=_trust_hint(exc, cacert))


def status_error(
    url: str,
    status: int,
    content_type: str,
    body: bytes,
    what: str,
    server: str | None = None,
) -> ForgeError:
    """The error for an HTTP answer where a WebSocket (or JSON) was expected;
    ``server``: the answer's ``Server`` header, if any (named in ``answered``)."""
    by = f" from {escape_line(server[:60])}" if server else ""
    if status in (401, 403):
        verb = (
            "rejected the token"
            if status == 403
            else "requires a valid token (none was given, or it was refused)"
        )
        return AuthError(
            f"{url}: HTTP {status}: the server {verb}", url=url, status=status, hint=Hint.TOKEN
        )
    if status == 404:
        return NotFoundError(
            f"{what} not found (HTTP 404 from {url})",
            url=url,
            status=status,
            answered=f"HTTP 404{by}",
        )
    if status == 400 and "html" not in content_type.lower():
        # The real server answers an id it cannot parse (not a UUID) with 400 text.
        return UsageError(
            f"{what}: the server rejected the request (HTTP 400{_snippet(body, content_type)})",
            url=url,
            status=status,
        )
    if status >= 500:
        return ServerError(
            f"{url}: server error HTTP {status}{_snippet(body, content_type)}",
            url=url,
            status=status,
        )
    if "html" in content_type.lower():
        return ProtocolError(
            f"{url}: expected a WebSocket, got an HTML page (HTTP {status}): a web "
            "UI, such as the real Forge server's",
            url=url,
            status=status,
            hint=Hint.DIALECT,
            answered=f"an HTML page (HTTP {status}){by}",
        )
    snippet = _snippet(body, content_type)
    return ProtocolError(
        f"{url}: expected a WebSocket, got HTTP {status}{snippet}",
        url=url,
        status=status,
        answered=f"HTTP {status}{snippet}{by}",
    )


#: A status line websockets refused for its protocol version (a plain HTTP/1.0
#: server: ``python3 -m http.server``, an old proxy), as its error quotes it.
_OLD_HTTP = re.compile(r"expected HTTP/1\.1: (HTTP/\d(?:\.\d)? (\d{3})\b.*)$")


def _snippet(body: bytes, content_type: str) -> str:
    text = body[:200].decode("utf-8", "replace").strip()
    if not text or "html" in content_type.lower():
        return ""
    return ": " + escape_line(" ".join(text.split()))


def handshake_error(
    exc: BaseException,
    shown: str,
    what: str,
    open_timeout: float,
    cacert: str | None = None,
) -> ForgeError | None:
    """The :class:`ForgeError` for a failed WebSocket opening (None: not a known
    failure, let it propagate). Shared by both transports, so that they fail alike."""
    from websockets.exceptions import (
        InvalidHandshake,
        InvalidMessage,
        InvalidStatus,
        InvalidURI,
    )

    if isinstance(exc, InvalidStatus):
        response = exc.response
        return status_error(
            shown,
            response.status_code,
            response.headers.get("content-type", ""),
            bytes(response.body or b""),
            what,
            response.headers.get("server"),
        )
    if isinstance(exc, InvalidURI):
        return FatalConnectError(f"invalid URL {shown}: {exc}", url=shown)
    if isinstance(exc, InvalidMessage):
        # The peer closed or garbled the handshake: a restarting server, a proxy,
        # or something that does not speak HTTP. Worth a retry.
        # A garbage status line is quoted in the reason: the server's bytes.
        cause = exc.__cause__
        old_http = _OLD_HTTP.search(str(cause)) if isinstance(cause, ValueError) else None
        if old_http is not None:
            # An HTTP server, and one that cannot speak WebSocket (it needs HTTP/1.1).
            said = escape_line(old_http.group(1)[:80])
            return ProtocolError(
                f"{shown}: expected a WebSocket, got {said}: a plain HTTP server",
                url=shown,
                status=int(old_http.group(2)),
                hint=Hint.SERVER,
                answered=f"{said} (a plain HTTP/1.0 server)",
            )
        reason = escape_line(describe_os_error(cause) if cause else str(exc))
        return ConnectError(f"cannot connect to {shown}: bad handshake ({reason})", url=shown)
    if isinstance(exc, InvalidHandshake):
        return ProtocolError(
            f"{shown}: WebSocket handshake failed: {escape_line(str(exc))}", url=shown
        )
    if isinstance(exc, TimeoutError):
        # Connected, but the handshake never completed (a stuck proxy or server).
        return ConnectError(
            f"cannot connect to {shown}: no handshake answer within {open_timeout:g} s",
            url=shown,
            hint=Hint.OPEN_TIMEOUT,
        )
    if isinstance(exc, OSError):
        return connect_error(shown, exc, cacert)
    return None


async def speaks_tls_instead(endpoint: Endpoint, shown: str) -> ForgeError | None:
    """For a plain ``http://`` server whose answer was not HTTP (or none at all):
    the error to give if that port completes a TLS handshake, else None.

    A TLS server given plain HTTP just hangs up (or sends an alert), which reads
    as a bad handshake; one TLS handshake, certificate unchecked (nothing is sent
    over it), tells which it is."""
    server = endpoint.server
    if server.tls:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(min(endpoint.open_timeout, 1.0)):
            transport, _ = await loop.create_connection(
                asyncio.Protocol, server.host, server.port, ssl=ctx, server_hostname=server.host
            )
    except (OSError, TimeoutError):
        return None
    transport.abort()
    https = "https://" + server.url.split("://", 1)[1]
    return FatalConnectError(
        f"cannot connect to {shown}: the server speaks TLS on port {server.port}; use {https}"
    )
