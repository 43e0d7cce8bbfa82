"""The root command group. Subcommands live one per module beside this file."""

from __future__ import annotations

from typing import Any

import click

from .. import __version__
from ..errors import EXIT_CODE_HELP
from .app import Application
from .diff import diff
from .login import auth, login, logout
from .logs import logs
from .monitor import monitor
from .options import connection_options

EPILOG = f"""\b
Output: JSON lines on stdout when piped or with --json (one server object per
line, unchanged); pretty output on a terminal. Diagnostics go to stderr only.

\b
Token: --token, else FORGE_TOKEN, else the profile's token_file, else the OS
keyring entry saved by `forgectl login` for the server, else the plain-text
file saved by `forgectl login --insecure-storage`.

Exit status: {EXIT_CODE_HELP}.

\b
Examples:
  forgectl logs PROCESS_ID --follow
  forgectl monitor --json | jq -c 'select(.type=="process_failed")'
  forgectl --server http://127.0.0.1:8887 diff ATTEMPT_ID --stat"""


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EPILOG,
)
@click.version_option(
    __version__, "--version", "-V", prog_name="forgectl", message="%(prog)s %(version)s"
)
@connection_options(root=True)
@click.option(
    "--verbose",
    "-v",
    count=True,
    help="Trace connections and frames on stderr (-vv: more). Tokens are redacted.",
)
@click.option(
    "--debug",
    is_flag=True,
    envvar="FORGECTL_DEBUG",
    show_envvar=True,
    help="Show a traceback on unexpected errors.",
)
@click.pass_context
def cli(ctx: click.Context, /, verbose: int, debug: bool, **connection: Any) -> None:
    """Follow Forge's real-time streams: process logs, process events, attempt diffs.

    Works with the documented WebSocket API (/ws/...) and with the real Forge
    server's JSON Patch streams (/api/...), printing the same JSON for both.
    """
    app = ctx.ensure_object(Application)
    app.verbose = verbose
    app.debug = debug
    app.override(connection)


cli.add_command(logs)
cli.add_command(monitor)
cli.add_command(diff)
cli.add_command(login)
cli.add_command(logout)
cli.add_command(auth)


def main(prog_name: str = "forgectl") -> None:
    cli.main(prog_name=prog_name)
