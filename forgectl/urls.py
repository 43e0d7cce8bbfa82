"""Server URLs: parsing what users type, building stream URLs, hiding tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from .errors import UsageError

_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


@dataclass(frozen=True, slots=True)
class Server:
    """A Forge server, normalized: ``http``/``https``, lower-case host, explicit port."""

    scheme: str
    host: str
    port: int
    base_path: str = ""

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def url(self) -> str:
        """The canonical form, used as the keyring key and in messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.base_path}"

    def http_url(self, path: str, query: dict[str, str] | None = None) -> str:
        return self._build(self.scheme, path, query)

    def ws_url(self, path: str, query: dict[str, str] | None = None) -> str:
        return self._build("wss" if self.tls else "ws", path, query)

    def _build(self, scheme: str, path: str, query: dict[str, str] | None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        url = f"{scheme}://{host}:{self.port}{self.base_path}{path}"
        if query:
            url += "?" + urlencode(query)
        return url

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost" or self.host.endswith(".localhost"):
            return True
        import ipaddress

        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_server(text: str) -> Server:
    """Accept ``http``, ``https``, ``ws``, ``wss`` or a bare ``host[:port]``."""
    raw = text.strip()
    if not raw:
        raise UsageError("the server URL is empty")
    if "://" not in raw:
        raw = "http://" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"invalid server URL {text!r}: {exc}") from None
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise UsageError(f"invalid server URL {text!r}: scheme must be http, https, ws or wss")
    if not parts.hostname:
        raise UsageError(f"invalid server URL {text!r}: no host")
    if port is None:
        port = 443 if scheme == "https" else 80
    base = parts.path.rstrip("/")
    # A URL copied from the spec (".../ws") or a stream URL is still the server.
    base = re.sub(r"/(ws|api)(/.*)?$", "", base)
    # Non-ASCII in the path is percent-encoded (as typed, under any locale).
    base = quote(base.encode("utf-8", "surrogateescape"), safe="/%:@!$&'()*+,;=-._~")
    host = parts.hostname.lower()
    if ":" not in host:  # a name or an IPv4 address (IPv6 came in brackets)
        # Empty or over-long labels ("a..b") would fail later, deep in the
        # resolver, as a UnicodeError: say so now.
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UsageError(f"invalid server URL {text!r}: not a valid host name") from None
    return Server(scheme, host, port, base)


_ID_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def check_id(value: str, noun: str = "an id") -> str:
    """``value``, if it can name a process or an attempt in a URL path; else
    :class:`UsageError` (exit 2), before anything is sent. ``noun`` names what
    it should be (``"a process id"``).

    ``.`` and ``..`` would be resolved by HTTP libraries and proxies into another
    route (``/ws/task-attempts/../diff``); an empty id names the collection; a
    control character is nobody's id and could only end up in a terminal."""
    if not value.strip():
        raise UsageError(f"{noun} cannot be empty")
    if value in (".", ".."):
        raise UsageError(f"{value!r} is not {noun} (it would name another URL path)")
    if _ID_CONTROL.search(value):
        raise UsageError(f"{value!r} is not {noun}: it contains a control character")
    return value


def segment(value: str) -> str:
    """Quote one path segment (an id typed by the user) for a URL, after
    :func:`check_id`. Bytes that are not UTF-8 (an argument under a non-UTF-8
    locale) are quoted as they were typed. ``""`` stays ``""`` (dialects build
    their paths before knowing whether the request has a target at all; where
    ids enter, :class:`~forgectl.dialects.base.StreamRequest`, empty ones are refused)."""
    if value:
        check_id(value)
    return quote(value.encode("utf-8", "surrogateescape"), safe="")


_TOKEN_QUERY = re.compile(r"(token=)[^&\s#'\"]+")


#: Shorter secrets are hidden only where they stand alone, so that a toy token
#: such as "x" does not mangle every word of a message.
_SHORT_SECRET = 8


#: Every secret forgectl has held in this process (tokens resolved, read or typed):
#: :func:`redact` hides them all, whatever path the text takes to an output.
_KNOWN_SECRETS: set[str] = set()


def remember_secret(secret: str | None) -> None:
    """Hide ``secret`` from everything :func:`redact` sees from now on."""
    if secret:
        _KNOWN_SECRETS.add(secret)


def redact(text: str, *secrets: str | None) -> str:
    """Hide every secret (those given and those remembered), and any ``token=``
    query or cookie value, in a message."""
    # Longest first: a secret that contains another is hidden whole.
    for secret in sorted({s for s in (*secrets, *_KNOWN_SECRETS) if s}, key=len, reverse=True):
        for form in {secret, quote(secret, safe="")}:
            if len(form) >= _SHORT_SECRET:
                text = text.replace(form, "***")
            else:
                text = re.sub(rf"(?<![\w-]){re.escape(form)}(?![\w-])", "***", text)
    return _TOKEN_QUERY.sub(r"\1***", text)
