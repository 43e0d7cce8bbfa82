"""Options shared by several commands, spelled once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..constants import (
    DEFAULT_OPEN_TIMEOUT,
    DEFAULT_PING_INTERVAL,
    DEFAULT_SETTLE,
    DEFAULT_STALE_TIMEOUT,
    ENV_API,
    ENV_CACERT,
    ENV_PROFILE,
    ENV_SERVER,
    ENV_TOKEN,
    MAX_MESSAGE_SIZE,
)
from ..dialects import API_CHOICES

F = TypeVar("F", bound=Callable[..., Any])


class Seconds(click.FloatRange):
    """A duration in seconds: a number (``inf`` included), never NaN."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if seconds != seconds:  # NaN passes every range check
            self.fail(f"{value!r} is not a number of seconds.", param, ctx)
        return seconds


_POSITIVE = Seconds(min=0, min_open=True)


def nonempty_id(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """An id argument or option (repeatable too) that can be one (the core's rule)."""
    from ..errors import UsageError
    from ..urls import check_id

    for one in value if isinstance(value, tuple) else (value,):
        if one is None:
            continue
        try:
            check_id(one)
        except UsageError as error:
            raise click.BadParameter(str(error), ctx=ctx, param=param) from None
    return value


def _apply(func: F, options: list[Callable[[F], F]]) -> F:
    for option in reversed(options):
        func = option(func)
    return func


CONNECTION_OPTIONS = (
    "server",
    "token",
    "api",
    "profile",
    "cacert",
    "insecure",
    "allow_plaintext_proxy",
    "verbose",
    "debug",
)


def connection_options(root: bool) -> Callable[[F], F]:
    """--server, --token, --api, --profile, --cacert, --insecure (and after the
    subcommand, -v and --debug).

    They work before the subcommand (``forgectl --server URL logs ...``, where the
    environment variables are read) and after it (``forgectl logs ID --server URL``,
    where a flag given there wins).
    """

    def env(name: str) -> dict[str, Any]:
        if root:
            return {"envvar": name, "show_envvar": True}
        return {}

    def shown(text: str, name: str) -> str:
        return text if root else f"{text} [env var: {name}]"

    def decorate(func: F) -> F:
        return _apply(
            func,
            [
                click.option(
                    "--server",
                    "-s",
                    metavar="URL",
                    **env(ENV_SERVER),
                    help=shown(
                        "Forge server: http(s):// or ws(s)://host:port "
                        "(default http://localhost:8887).",
                        ENV_SERVER,
                    ),
                ),
                click.option(
                    "--token",
                    metavar="TOKEN",
                    **env(ENV_TOKEN),
                    help=shown(
                        "API token; else the profile's token_file, else the keyring entry "
                        "saved by `forgectl login`, else the plain-text file. Prefer the "
                        "environment variable: a flag shows in process listings.",
                        ENV_TOKEN,
                    ),
                ),
                click.option(
                    "--api",
                    type=click.Choice(API_CHOICES),
                    **env(ENV_API),
                    help=shown(
                        "Server dialect: the documented /ws API, the real server's /api "
                        "JSON Patch streams, or auto-detect (default).",
                        ENV_API,
                    ),
                ),
                click.option(
                    "--profile",
                    "-p",
                    metavar="NAME",
                    **env(ENV_PROFILE),
                    help=shown("Use a named profile from the config file.", ENV_PROFILE),
                ),
                click.option(
                    "--cacert",
                    metavar="FILE",
                    **env(ENV_CACERT),
                    type=click.Path(exists=True, dir_okay=False),
                    help=shown("Trust this CA bundle for https/wss (a private CA).", ENV_CACERT),
                ),
                click.option(
                    "--insecure",
                    is_flag=True,
                    default=None,
                    help="Skip TLS certificate verification (prints a warning).",
                ),
                click.option(
                    "--allow-plaintext-proxy",
                    is_flag=True,
                    default=None,
                    help="Send the token through an HTTP(S)_PROXY / ALL_PROXY proxy even "
                    "to an http:// server, where the proxy can read it (refused otherwise).",
                ),
                *(
                    []
                    if root
                    else [
                        click.option(
                            "--verbose",
                            "-v",
                            count=True,
                            help="Trace connections and frames on stderr (-vv: more).",
                        ),
                        click.option(
                            "--debug",
                            is_flag=True,
                            default=None,
                            help="Show a traceback on unexpected errors [env var: FORGECTL_DEBUG].",
                        ),
                    ]
                ),
            ],
        )

    return decorate


def output_options(func: F) -> F:
    """--json / --pretty and --color."""
    return _apply(
        func,
        [
            click.option(
                "--json",
                "output",
                flag_value="json",
                help="JSON lines on stdout, one server object per line (default when piped).",
            ),
            click.option(
                "--pretty",
                "output",
                flag_value="pretty",
                help="Human-readable output (default on a terminal).",
            ),
            click.option(
                "--color",
                type=click.Choice(["auto", "always", "never"]),
                default="auto",
                show_default=True,
                help="Colour in pretty output (NO_COLOR and FORCE_COLOR are honoured).",
            ),
        ],
    )


def stream_options(func: F) -> F:
    """Reconnect and heartbeat settings."""
    return _apply(
        func,
        [
            click.option(
                "--no-reconnect",
                is_flag=True,
                help="Exit (status 3) when an established connection drops, instead of reconnecting.",
            ),
            click.option(
                "--retry-for",
                type=_POSITIVE,
                metavar="SECONDS",
                help="Keep retrying a server that is down for up to this long (first connection "
                "included; without it a refused first connection fails at once).",
            ),
            click.option(
                "--ping-interval",
                type=_POSITIVE,
                default=DEFAULT_PING_INTERVAL,
                show_default=True,
                metavar="SECONDS",
                help="Heartbeat interval.",
            ),
            click.option(
                "--stale-timeout",
                type=_POSITIVE,
                default=DEFAULT_STALE_TIMEOUT,
                show_default=True,
                metavar="SECONDS",
                help="Reconnect when nothing arrives for this long (dead peer).",
            ),
            click.option(
                "--open-timeout",
                type=_POSITIVE,
                default=DEFAULT_OPEN_TIMEOUT,
                show_default=True,
                metavar="SECONDS",
                help="Give up on a connection handshake after this long.",
            ),
            click.option(
                "--wait-start",
                type=Seconds(min=0),
                metavar="SECONDS",
                help="If the process or attempt does not exist yet (404), keep polling "
                "for it this long (CI often starts following before the job exists).",
            ),
            click.option(
                "--max-message-size",
                type=click.IntRange(min=1, max=4096),
                default=MAX_MESSAGE_SIZE >> 20,
                show_default=True,
                metavar="MIB",
                help="Refuse a message larger than this many MiB (exit 6).",
            ),
            click.option(
                "--settle",
                type=_POSITIVE,
                default=DEFAULT_SETTLE,
                show_default=True,
                metavar="SECONDS",
                help="Without --follow: the backlog is complete once the server is quiet this long.",
            ),
        ],
    )
