"""forgectl login / logout / auth status: tokens in the OS keyring, per server."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

from ..constants import ENV_TOKEN
from ..errors import ExitCode, ForgeError, UsageError
from .app import Application, pass_app
from .options import Command, connection_options

if TYPE_CHECKING:
    from ..settings import Settings

T = TypeVar("T")

TOKEN_ORDER = """\b
Where commands find the token, first match wins:
  1. --token (avoid: a flag shows in process listings)
  2. the FORGE_TOKEN environment variable
  3. the profile's token_file (config.toml)
  4. the OS keyring entry saved by `forgectl login` for the server
  5. the plain-text file saved by `forgectl login --insecure-storage`
Tokens are stored per server (its normalized URL) under the keyring service
"forgectl". Without a usable keyring (headless machines, CI), use FORGE_TOKEN
or --insecure-storage ($XDG_CONFIG_HOME/forgectl/tokens.json, mode 0600).
Keyring calls give up after FORGECTL_KEYRING_TIMEOUT seconds (default 3)."""


def _guard(app: Application, call: Callable[[], T]) -> T:
    """Report a ForgeError as one line with its exit status."""
    try:
        return call()
    except ForgeError as error:
        sys.exit(app.fail(error))


def _read_token(with_token: bool) -> str:
    if with_token:
        token = sys.stdin.readline().strip()
        if not token:
            raise UsageError("no token on standard input (--with-token reads one line)")
        return token
    if not sys.stdin.isatty():
        raise UsageError(
            "no terminal to prompt for the token on; pipe it in with --with-token "
            '(echo "$TOKEN" | forgectl login --with-token)'
        )
    try:
        token = click.prompt("Token", hide_input=True, err=True).strip()
    except click.Abort:  # Ctrl-C or end of input at the prompt
        click.echo(err=True)
        sys.exit(int(ExitCode.INTERRUPTED))
    if not token:
        raise UsageError("the token is empty")
    return token


@click.command(
    "login",
    cls=Command,
    epilog=f"""{TOKEN_ORDER}

\b
Examples:
  forgectl login --server https://forge.example.com
  echo "$FORGE_CI_TOKEN" | forgectl login --with-token -s https://forge.example.com
  forgectl login --with-token --insecure-storage < token.txt   # no keyring here""",
)
@click.option(
    "--with-token",
    is_flag=True,
    help='Read the token from standard input (CI: echo "$T" | forgectl login --with-token).',
)
@click.option(
    "--insecure-storage",
    is_flag=True,
    help="Store the token in a plain-text file (mode 0600) in the config directory "
    "instead of the OS keyring.",
)
@click.option(
    "--no-verify",
    is_flag=True,
    help="Store the token without checking it against the server (e.g. while it is down).",
)
@connection_options(root=False)
@pass_app
def login(app: Application, /, with_token: bool, insecure_storage: bool, no_verify: bool) -> None:
    """Save a token for a server, so later commands need no --token.

    Prompts for the token without echoing it (or reads it from standard input
    with --with-token), checks it against the server when the server can tell
    (a rejected token exits 4 and nothing is stored), and stores it in the OS
    keyring under the server's URL. The real Forge server has no
    authentication: its token cannot be checked and is stored anyway.
    """
    from ..credentials import keyring_available

    if app.sources.get("token") == "flag":
        _guard(app, _no_token_flag)
    settings = _guard(app, lambda: app.resolve(stored=False, token=False))
    if not insecure_storage:
        _guard(app, keyring_available)
    token = _guard(app, lambda: _read_token(with_token))
    app.diag.add_secret(token)
    for line in _transport_warnings(settings, token):
        app.diag.warning(line)

    async def body() -> int:
        if not no_verify:
            await _verify(settings, token, app)
        _store(app, settings.server.url, token, insecure_storage)
        return 0

    from .runner import run

    run(app, body)


def _no_token_flag() -> None:
    raise UsageError(
        "login reads the token from a prompt or from standard input (--with-token), "
        "not from --token: a flag shows in process listings"
    )


def _transport_warnings(settings: Settings, token: str) -> list[str]:
    from ..settings import transport_warnings

    if settings.token:  # already warned about while resolving
        return []
    return transport_warnings(settings.server, token, False)


async def _verify(settings: Settings, token: str, app: Application) -> None:
    """Raise AuthError when the server rejects ``token``; say so when it cannot tell."""
    from ..dialects.forge import probe_forge
    from ..errors import AuthError, ConnectError, NotFoundError, ProtocolError
    from ..transport import Endpoint
    from ..transport.wsclient import open_websocket

    diag = app.diag
    url = settings.server.url
    no_auth = f"{url} is a Forge server, which has no authentication: the token was not checked"
    anonymous = Endpoint(settings.server, None, settings.cacert, settings.insecure)
    if settings.api == "forge":
        diag.note(no_auth)
        return
    path = "/ws/execution-processes"
    try:
        diag.trace(f"checking the token: handshake on {settings.server.ws_url(path)}")
        try:
            ws = await open_websocket(anonymous, path, what="monitor stream")
        except AuthError:
            pass  # the server wants a token: it can tell ours
        else:
            await ws.close()
            diag.note(f"{url} accepts connections without a token: the token was not checked")
            return
        try:
            ws = await open_websocket(
                Endpoint(
                    settings.server,
                    token,
                    settings.cacert,
                    settings.insecure,
                    plaintext_proxy=settings.plaintext_proxy,
                ),
                path,
                what="monitor stream",
            )
        except AuthError as exc:
            raise AuthError(
                f"{url} rejected the token ({_reason(exc)}); nothing was stored"
            ) from None
        await ws.close()
        diag.note(f"{url} accepted the token")
    except (ProtocolError, NotFoundError) as exc:
        if settings.api == "auto":
            try:
                is_forge, _ = await probe_forge(anonymous)
            except ForgeError:
                is_forge = False
            if is_forge:
                diag.note(no_auth)
                return
        raise exc.again(
            f"cannot check the token: {app.message(exc)} (--no-verify stores it unchecked)"
        ) from None
    except ConnectError as exc:
        raise exc.again(f"{app.message(exc)} (--no-verify stores the token unchecked)") from None


def _reason(exc: ForgeError) -> str:
    return f"HTTP {exc.status}" if exc.status in (401, 403) else "refused"


def _store(app: Application, server_url: str, token: str, insecure_storage: bool) -> None:
    from ..credentials import (
        KeyringUnavailable,
        check_stored,
        file_delete,
        file_set,
        keyring_delete,
        keyring_indexed,
        keyring_set,
    )

    diag = app.diag
    if insecure_storage:
        path = file_set(server_url, token)
        if keyring_indexed(server_url):
            # The keyring comes first: an old entry there would shadow the new token.
            try:
                keyring_delete(server_url)
            except KeyringUnavailable as exc:
                diag.warning(f"an older token in the keyring takes precedence: {exc.reason}")
        check_stored(server_url, token)
        diag.warning(f"the token for {server_url} is stored in plain text in {path}")
    else:
        keyring_set(server_url, token)
        removed = file_delete(server_url)
        check_stored(server_url, token)  # before saying so: commands must find it
        diag.note(f"token for {server_url} stored in the OS keyring")
        if removed:
            diag.note("removed its plain-text copy")
    if os.environ.get(ENV_TOKEN):
        diag.note(f"{ENV_TOKEN} is set in this environment and takes precedence")


@click.command(
    "logout",
    cls=Command,
    epilog="""\b
Examples:
  forgectl logout --server https://forge.example.com
  forgectl logout --profile work""",
)
@connection_options(root=False)
@pass_app
def logout(app: Application, /) -> None:
    """Remove the stored token for a server.

    From the keyring and from the plain-text file. Exits 0 also when there was nothing to remove, saying so.
    """
    from ..credentials import KeyringUnavailable, file_delete, keyring_delete, keyring_indexed

    settings = _guard(app, lambda: app.resolve(stored=False, token=False))
    url = settings.server.url
    diag = app.diag
    places = []
    indexed = keyring_indexed(url)
    try:
        if keyring_delete(url):
            places.append("the OS keyring")
    except KeyringUnavailable as exc:
        if indexed:
            sys.exit(app.fail(exc))
    if file_delete(url):
        places.append("the plain-text token file")
    if places:
        diag.note(f"removed the token for {url} from {' and '.join(places)}")
    else:
        diag.note(f"no token stored for {url}: nothing to remove")
    if os.environ.get(ENV_TOKEN):
        diag.note(f"{ENV_TOKEN} is still set in this environment")


@click.command(
    "status",
    cls=Command,
    epilog=f"""{TOKEN_ORDER}

\b
Examples:
  forgectl auth status
  forgectl auth status --profile work --json | jq -r .token_source""",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@connection_options(root=False)
@pass_app
def status(app: Application, /, as_json: bool) -> None:
    """Show the server, whether a token is set and where it comes from.

    Never prints the token itself. Exits 0 whether or not a token is set.
    """
    from ..settings import TOKEN_SOURCES

    settings = _guard(app, lambda: app.resolve(stored=True))
    source = settings.token_source
    if settings.insecure:
        tls = "verification disabled (insecure)"
    elif settings.cacert:
        tls = f"CA file {settings.cacert}"
    else:
        tls = "system trust store"
    if as_json:
        import orjson

        info = {
            "server": settings.server.url,
            "profile": settings.profile,
            "api": settings.api,
            "token": bool(settings.token),
            "token_source": source,
            "tls": tls if settings.server.tls else None,
        }
        click.echo(orjson.dumps(info).decode())
        return
    token = f"set, from {TOKEN_SOURCES[source]}" if settings.token and source else "not set"
    lines = [
        ("server", settings.server.url),
        ("profile", settings.profile or "none"),
        ("api", settings.api),
        ("token", token),
    ]
    if settings.server.tls:
        lines.append(("tls", tls))
    for key, value in lines:
        click.echo(f"{key + ':':9}{value}")


@click.group(
    "auth",
    epilog=f"""{TOKEN_ORDER}

\b
Examples:
  forgectl auth login --server https://forge.example.com
  forgectl auth status
  forgectl auth logout""",
)
def auth() -> None:
    """Manage stored tokens: login, logout, status."""


auth.add_command(login)
auth.add_command(logout)
auth.add_command(status)
