"""Options shared by several commands, spelled once.

Connection options (``--server``, ``--token``, ...) and stream tuning
(``--retry-for``, ...) never reach a command function: their callbacks fill
the one :class:`~forgectl.cli.app.Application` (``expose_value=False``), with
where each value came from (flag or environment, ``ctx.get_parameter_source``).
Connection options work before the subcommand, where the environment variables
are read, and after it, where a flag given there wins; they are described once,
in ``forgectl --help``.
"""

from __future__ import annotations

import sys
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
    ENV_DEBUG,
    ENV_PROFILE,
    ENV_SERVER,
    ENV_TOKEN,
    MAX_MESSAGE_SIZE,
)
from ..dialects import API_CHOICES
from .app import Application

F = TypeVar("F", bound=Callable[..., Any])

#: Help sections, in the order they are printed.
CONNECTION = "Connection options"
TUNING = "Connection tuning"
OUTPUT = "Output options"


class Seconds(click.ParamType):  # type: ignore[type-arg, unused-ignore]
    """A duration in seconds: a number (``inf`` included), never NaN; more than 0,
    or with ``zero`` 0 or more. Help and errors say so in words, not as ``x>0``."""

    name = "seconds"

    def __init__(self, *, zero: bool = False) -> None:
        self.zero = zero

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds.", param, ctx)
        if seconds != seconds:  # NaN passes every comparison
            self.fail(f"{value!r} is not a number of seconds.", param, ctx)
        if seconds < 0 or (seconds == 0 and not self.zero):
            wanted = "0 or more" if self.zero else "more than 0"
            self.fail(f"{value!r}: give {wanted} seconds.", param, ctx)
        return seconds


class Count(click.ParamType):  # type: ignore[type-arg, unused-ignore]
    """A count of things: 0 or more (no bound a person would have to read), or
    between ``low`` and ``high``, said in words."""

    name = "count"

    def __init__(self, low: int = 0, high: int = sys.maxsize) -> None:
        self.low = low
        self.high = high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int):
            count = value
        else:
            try:
                count = int(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not a whole number.", param, ctx)
        if self.high < sys.maxsize and not self.low <= count <= self.high:
            self.fail(f"{value!r}: give {self.low} to {self.high}.", param, ctx)
        if count < self.low:
            self.fail(f"{value!r}: give {self.low} or more.", param, ctx)
        if count > self.high:
            self.fail(f"{value!r} is too large.", param, ctx)
        return count


_POSITIVE = Seconds()


class SectionOption(click.Option):
    """An option printed under its own heading in ``--help`` (see :class:`Command`)."""

    def __init__(self, *args: Any, section: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.section = section


class Command(click.Command):
    """A subcommand whose help lists its own options, then output options and
    connection tuning under their headings, and the connection options in one
    line (they are described in ``forgectl --help``)."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        format_sections(self, ctx, formatter, connection_in_full=False)


def format_sections(
    command: click.Command,
    ctx: click.Context,
    formatter: click.HelpFormatter,
    *,
    connection_in_full: bool,
) -> None:
    sections: dict[str | None, list[tuple[str, str]]] = {}
    names: list[str] = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None or isinstance(param, click.Argument):
            continue
        section = getattr(param, "section", None)
        if section == CONNECTION and not connection_in_full:
            names.append(record[0].split(" ")[0].rstrip(","))
            continue
        sections.setdefault(section, []).append(record)
    for title in (None, OUTPUT, TUNING, CONNECTION):
        rows = sections.get(title)
        if rows:
            with formatter.section(title or "Options"):
                formatter.write_dl(rows)
    if names:
        with formatter.section(CONNECTION):
            formatter.write_text(
                f"{', '.join(connection_names(command))}: before or after the command, "
                "as described in `forgectl --help`."
            )


def connection_names(command: click.Command) -> list[str]:
    """The connection options' names as a user types them (``-s/--server``)."""
    out = []
    for param in command.params:
        if isinstance(param, SectionOption) and param.section == CONNECTION:
            out.append("/".join(sorted(param.opts, key=len)))
    return out


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


def _store_connection(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Fill the application object: a value given here wins over one given before
    the subcommand; where it came from (flag or environment) is kept."""
    name = param.name or ""
    if value is None or value is False or (name == "verbose" and not value):
        return
    if name in ("server", "profile") and not str(value).strip() and not ctx.resilient_parsing:
        what = "server URL" if name == "server" else "profile name"
        raise click.BadParameter(f"the {what} is empty", ctx=ctx, param=param)
    source = ctx.get_parameter_source(name)
    from_env = source is click.core.ParameterSource.ENVIRONMENT
    ctx.ensure_object(Application).set_connection(name, value, "env" if from_env else "flag")


def _store_tuning(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    ctx.ensure_object(Application).tuning[param.name or ""] = value


def connection_options(root: bool) -> Callable[[F], F]:
    """--server, --token, --api, --profile, --cacert, --insecure, -v and --debug.

    On the root group they read their environment variables and are shown in
    full; after a subcommand they are flags only, named in one line of its help.
    """

    def option(*names: str, env: str | None = None, **kwargs: Any) -> Callable[[F], F]:
        if root and env:
            kwargs.update(envvar=env, show_envvar=True)
        return click.option(
            *names,
            cls=SectionOption,
            section=CONNECTION,
            expose_value=False,
            callback=_store_connection,
            **kwargs,
        )

    def decorate(func: F) -> F:
        return _apply(
            func,
            [
                option(
                    "--server",
                    "-s",
                    env=ENV_SERVER,
                    metavar="URL",
                    help="Forge server: http(s):// or ws(s)://host:port "
                    "(default http://localhost:8887).",
                ),
                option(
                    "--token",
                    env=ENV_TOKEN,
                    metavar="TOKEN",
                    help="API token; else the profile's token_file, else the keyring entry "
                    "saved by `forgectl login`, else the plain-text file. Prefer the "
                    "environment variable: a flag shows in process listings.",
                ),
                option(
                    "--api",
                    env=ENV_API,
                    type=click.Choice(API_CHOICES),
                    help="Server dialect: the documented /ws API, the real server's /api "
                    "JSON Patch streams, or auto-detect (default).",
                ),
                option(
                    "--profile",
                    "-p",
                    env=ENV_PROFILE,
                    metavar="NAME",
                    help="Use a named profile from the config file.",
                ),
                option(
                    "--cacert",
                    env=ENV_CACERT,
                    metavar="FILE",
                    type=click.Path(exists=True, dir_okay=False),
                    help="Trust this CA bundle for https/wss (a private CA).",
                ),
                option(
                    "--insecure",
                    is_flag=True,
                    default=None,
                    help="Skip TLS certificate verification (prints a warning).",
                ),
                option(
                    "--allow-plaintext-proxy",
                    is_flag=True,
                    default=None,
                    help="Send the token through an HTTP(S)_PROXY / ALL_PROXY proxy even "
                    "to an http:// server, where the proxy can read it (refused otherwise).",
                ),
                option(
                    "--verbose",
                    "-v",
                    count=True,
                    help="Trace connections and frames on stderr (-vv: more). Tokens are redacted.",
                ),
                option(
                    "--debug",
                    env=ENV_DEBUG,
                    is_flag=True,
                    default=None,
                    help="Show a traceback on unexpected errors.",
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
                cls=SectionOption,
                section=OUTPUT,
                flag_value="json",
                help="JSON lines on stdout, one server object per line (default when piped).",
            ),
            click.option(
                "--pretty",
                "output",
                cls=SectionOption,
                section=OUTPUT,
                flag_value="pretty",
                help="Human-readable output (default on a terminal).",
            ),
            click.option(
                "--color",
                cls=SectionOption,
                section=OUTPUT,
                type=click.Choice(["auto", "always", "never"]),
                default="auto",
                show_default=True,
                help="Colour in pretty output (NO_COLOR and FORCE_COLOR are honoured).",
            ),
        ],
    )


def stream_options(func: F) -> F:
    """Reconnect and heartbeat settings: they fill the application object."""

    def option(*names: str, **kwargs: Any) -> Callable[[F], F]:
        return click.option(
            *names,
            cls=SectionOption,
            section=TUNING,
            expose_value=False,
            callback=_store_tuning,
            metavar=kwargs.pop("metavar", "SECONDS"),
            **kwargs,
        )

    return _apply(
        func,
        [
            option(
                "--no-reconnect",
                is_flag=True,
                metavar=None,
                help="Exit (status 3) when the connection drops.",
            ),
            option(
                "--retry-for",
                type=_POSITIVE,
                help="Retry a down server this long (first try too).",
            ),
            option(
                "--ping-interval",
                type=_POSITIVE,
                default=DEFAULT_PING_INTERVAL,
                help=f"Heartbeat interval (default {DEFAULT_PING_INTERVAL:g} s).",
            ),
            option(
                "--stale-timeout",
                type=_POSITIVE,
                default=DEFAULT_STALE_TIMEOUT,
                help=f"Reconnect after this long silent (default {DEFAULT_STALE_TIMEOUT:g} s).",
            ),
            option(
                "--open-timeout",
                type=_POSITIVE,
                default=DEFAULT_OPEN_TIMEOUT,
                help=f"Handshake timeout (default {DEFAULT_OPEN_TIMEOUT:g} s).",
            ),
            option(
                "--wait-start",
                type=Seconds(zero=True),
                help="Wait this long for a process or attempt to appear.",
            ),
            option(
                "--max-message-size",
                type=Count(1, 4096),
                default=MAX_MESSAGE_SIZE >> 20,
                metavar="MIB",
                help=f"Refuse a message over this many MiB (default {MAX_MESSAGE_SIZE >> 20}).",
            ),
            option(
                "--settle",
                type=_POSITIVE,
                default=DEFAULT_SETTLE,
                help=f"History ends after this long quiet (default {DEFAULT_SETTLE:g} s).",
            ),
        ],
    )
