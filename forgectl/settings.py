"""Resolving where to connect and with what: flags, environment, profile, defaults.

Flags beat environment variables, which beat the profile, which beats defaults
(click applies flags and environment; the profile fills what is still unset).

The token comes from the first of: ``--token``, ``FORGE_TOKEN``, the profile's
``token_file``, the keyring entry for the server (``forgectl login``), the
plain-text file (``forgectl login --insecure-storage``); else there is none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .constants import DEFAULT_SERVER, ENV_TOKEN
from .errors import UsageError
from .transport import Endpoint
from .urls import Server, parse_server

if TYPE_CHECKING:
    from .diagnostics import Diagnostics

#: How each token source is shown to users (``forgectl auth status``).
TOKEN_SOURCES = {
    "flag": "the --token flag",
    ENV_TOKEN: f"the {ENV_TOKEN} environment variable",
    "token_file": "the profile's token_file",
    "keyring": "the OS keyring",
    "file": "the plain-text token file",
}

TOKEN_ORDER_HELP = (
    "--token, then FORGE_TOKEN, then the profile's token_file, then the keyring entry "
    "saved by `forgectl login` for the server, then the plain-text file written by "
    "`forgectl login --insecure-storage`"
)


@dataclass(slots=True)
class Settings:
    server: Server
    token: str | None = None
    #: Where the token came from: flag, FORGE_TOKEN, token_file, keyring, file, or None.
    token_source: str | None = None
    api: str = "auto"
    cacert: str | None = None
    insecure: bool = False
    profile: str | None = None
    #: The profile's default output (json or pretty), if it sets one.
    output: str | None = None
    #: Send the token through a proxy that would read it (see transport/proxy.py).
    plaintext_proxy: bool = False
    extras: dict[str, Any] = field(default_factory=dict)

    def endpoint(self, open_timeout: float | None = None) -> Endpoint:
        endpoint = Endpoint(
            self.server,
            self.token,
            self.cacert,
            self.insecure,
            plaintext_proxy=self.plaintext_proxy,
        )
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
    *,
    stored: bool = True,
    plaintext_proxy: bool = False,
) -> Settings:
    """Settings from explicit values (CLI flags or library arguments), the profile,
    then defaults. ``stored=False`` skips the keyring and the token file;
    ``plaintext_proxy`` lets the token cross a proxy unencrypted."""
    from .config import permission_warnings, select_profile

    if diag is None:
        from .diagnostics import Diagnostics

        diag = Diagnostics()
    chosen = select_profile(profile)
    for line in permission_warnings():
        diag.warning(line)
    settings = Settings(
        parse_server(server or (chosen.server if chosen else None) or DEFAULT_SERVER),
        api=api or (chosen.api if chosen else None) or "auto",
        cacert=cacert or (chosen.cacert if chosen else None),
        insecure=insecure or bool(chosen and chosen.insecure),
        profile=chosen.name if chosen else None,
        output=chosen.output if chosen else None,
        plaintext_proxy=plaintext_proxy,
    )
    if token:
        settings.token = token
        settings.token_source = ENV_TOKEN if token_from_env else "flag"
    elif chosen is not None and chosen.token_file:
        from .credentials import read_token_file

        settings.token = read_token_file(chosen.token_file, diag.warning)
        settings.token_source = "token_file"
    elif stored:
        from .credentials import stored_token

        settings.token, settings.token_source = stored_token(settings.server.url, diag.warning)
    diag.add_secret(settings.token)
    if settings.token:
        check_token(settings.token, settings.token_source)
    if settings.cacert:
        check_cacert(settings.cacert)
    for line in transport_warnings(settings.server, settings.token, settings.insecure):
        diag.warning(line)
    if settings.token:
        diag.trace(
            f"token for {settings.server.url}: from {TOKEN_SOURCES[settings.token_source or '']}"
        )
    return settings


def check_token(token: str, source: str | None) -> None:
    """Fail clearly on a token no Cookie header can carry (it is never shown)."""
    for char in token:
        if not ("!" <= char <= "~") or char in ';,"\\':
            what = "a space" if char == " " else f"the character {char!a}"
            if char in "\r\n":
                what = "a line break (a stray newline from a file or variable?)"
            where = TOKEN_SOURCES.get(source or "", "somewhere")
            raise UsageError(f"the token (from {where}) contains {what}: it cannot be sent")


def check_cacert(path: str) -> None:
    """Fail early and clearly on a CA file that cannot be used."""
    import ssl

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        raise UsageError(f"cannot use CA file {path}: not a PEM CA bundle ({reason})") from None
    except OSError as exc:
        raise UsageError(f"cannot use CA file {path}: {exc.strerror or exc}") from None


def plaintext_warning(server: Server, token: str | None) -> str | None:
    """The warning due when a token would cross the network unencrypted, else None."""
    if not token or server.tls or server.is_loopback:
        return None
    return (
        f"the token travels unencrypted (ws:// and http://) to {server.host}, which is not "
        "this machine; use an https:// server URL if the server supports TLS"
    )


def transport_warnings(server: Server, token: str | None, insecure: bool) -> list[str]:
    lines = []
    plain = plaintext_warning(server, token)
    if plain:
        lines.append(plain)
    if insecure and server.tls:
        lines.append(
            f"TLS certificate verification is disabled for {server.host} (insecure): "
            "anyone on the path can read the traffic and the token"
        )
    return lines
