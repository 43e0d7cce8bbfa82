"""Where and how to connect: a server, its credentials and TLS settings."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..constants import DEFAULT_OPEN_TIMEOUT
from ..errors import FatalConnectError
from ..urls import Server, remember_secret

if TYPE_CHECKING:
    from . import Transport


@dataclass(slots=True)
class Endpoint:
    """Where and how to connect: a server plus credentials and TLS settings, and
    the :class:`~forgectl.transport.Transport` that carries the requests (None: the
    default one)."""

    server: Server
    token: str | None = None
    cacert: str | None = None
    insecure: bool = False
    open_timeout: float = DEFAULT_OPEN_TIMEOUT
    transport: Transport | None = field(default=None, repr=False, compare=False)
    #: Send the token even through a proxy that would read it (an unencrypted
    #: server URL with a proxy variable that applies): refused otherwise.
    plaintext_proxy: bool = False
    _ssl: ssl.SSLContext | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        remember_secret(self.token)  # whatever prints, this token is hidden from it

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.server.tls:
            return None
        if self._ssl is None:
            try:
                ctx = ssl.create_default_context(cafile=self.cacert)
            except (OSError, ssl.SSLError) as exc:
                raise FatalConnectError(f"cannot use CA file {self.cacert}: {exc}") from None
            if self.insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._ssl = ctx
        return self._ssl

    def query(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        query = dict(extra or {})
        if self.token:
            query["token"] = self.token
        return query

    def headers(self) -> dict[str, str]:
        return {"Cookie": f"token={self.token}"} if self.token else {}


def user_agent() -> str:
    from .. import __version__

    return f"forgectl/{__version__}"
