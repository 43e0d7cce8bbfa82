"""Resolving where to connect and with what: flags, environment, profile, defaults.

Flags beat environment variables, which beat the profile, which beats defaults
(click applies flags and environment; the profile fills what is still unset).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .constants import DEFAULT_SERVER
from .transport import Endpoint
from .urls import Server, parse_server

if TYPE_CHECKING:
    from .diagnostics import Diagnostics


@dataclass(slots=True)
class Settings:
    server: Server
    token: str | None = None
    #: Where the token came from: flag, FORGE_TOKEN, keyring, file, or None.
    token_source: str | None = None
    api: str = "auto"
    cacert: str | None = None
    insecure: bool = False
    profile: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def endpoint(self, open_timeout: float | None = None) -> Endpoint:
        endpoint = Endpoint(self.server, self.token, self.cacert, self.insecure)
        if open_timeout is not None:
            endpoint.open_timeout = open_timeout
        return endpoint


def resolve(
    server: str | None = None,
    token: str | None = None,
    token_from_env: bool = False,
    api: str | None = None,
    cacert: str | None = None,
    insecure: bool = False,
    profile: str | None = None,
    diag: Diagnostics | None = None,
) -> Settings:
    """Settings from explicit values (CLI flags or library arguments)."""
    settings = Settings(parse_server(server or DEFAULT_SERVER), api=api or "auto")
    if token:
        settings.token = token
        settings.token_source = "FORGE_TOKEN" if token_from_env else "flag"
    settings.cacert = cacert
    settings.insecure = insecure
    return settings
