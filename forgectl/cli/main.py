"""The root command group. Subcommands live one per module beside this file."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import Any, NoReturn

import click

from .. import __version__
from ..errors import ExitCode, ForgeError
from .app import Application, Signalled, _stderr, die_by, silence
from .options import connection_options, format_sections

#: Subcommand name → (module beside this one, attribute). A command's module is
#: imported only when that command runs (or --help lists them all).
COMMANDS = {
    "logs": ("logs", "logs"),
    "monitor": ("monitor", "monitor"),
    "diff": ("diff", "diff"),
    "ps": ("ps", "ps"),
    "login": ("login", "login"),
    "logout": ("login", "logout"),
    "auth": ("login", "auth"),
}


class HelpFormatter(click.HelpFormatter):
    """click's, sized to the terminal as shutil.get_terminal_size() would, without
    importing shutil (and with it bz2, lzma and zlib): 2.5 ms of `forgectl --help`."""

    def __init__(
        self, indent_increment: int = 2, width: int | None = None, max_width: int | None = None
    ) -> None:
        if width is None and click.formatting.FORCED_WIDTH is None:
            width = max(min(terminal_columns(), max_width or 80) - 2, 50)
        super().__init__(indent_increment, width, max_width)


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: $COLUMNS, else stdout's terminal, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class ForgectlContext(click.Context):
    formatter_class = HelpFormatter


class ForgectlGroup(click.Group):
    """The root group: subcommands load on first use."""

    context_class = ForgectlContext

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        format_sections(self, ctx, formatter, connection_in_full=True)
        self.format_commands(ctx, formatter)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module = importlib.import_module(f".{spec[0]}", __package__)
        command: click.Command = getattr(module, spec[1])
        return command


EPILOG = f"""\b
Output: JSON lines on stdout when piped or with --json (one server object per
line, unchanged); pretty output on a terminal. Diagnostics go to stderr only.

\b
Token: --token, else FORGE_TOKEN, else the profile's token_file, else the OS
keyring entry saved by `forgectl login` for the server, else the plain-text
file saved by `forgectl login --insecure-storage`.

Exit status: {ExitCode.summary()}.

\b
Examples:
  forgectl ps                                   # find an id: processes, newest first
  forgectl logs PROCESS_ID --follow             # or the start of one: 3f2a
  forgectl logs --attempt ATTEMPT_ID --follow   # all of an attempt's processes
  forgectl monitor --json | jq -c 'select(.type=="process_failed")'
  forgectl --server http://127.0.0.1:8887 diff ATTEMPT_ID --stat"""


@click.group(
    cls=ForgectlGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EPILOG,
)
@click.version_option(
    __version__, "--version", "-V", prog_name="forgectl", message="%(prog)s %(version)s"
)
@connection_options(root=True)
@click.pass_context
def cli(ctx: click.Context, /) -> None:
    """Follow Forge's real-time streams: process logs, process events, attempt diffs.

    `forgectl ps` lists the processes (and their ids: a unique start of one will do).

    Works with the documented WebSocket API (/ws/...) and with the real Forge
    server's JSON Patch streams (/api/...), printing the same JSON for both.
    The connection options below also work after the command
    (`forgectl logs ID --server URL`), where they win.
    """
    ctx.ensure_object(Application)


#: A group run without a command (click 8.2 and later; 8.1 prints the help and exits 0).
_NO_ARGS: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _output_failed(error: OSError) -> NoReturn:
    """stdout failed under click's own writes: a gone reader ends quietly, a full
    or failing stdout is exit 8; either way the interpreter's last flush is silenced."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        silence(sys.stdout.fileno())
    if isinstance(error, BrokenPipeError):
        sys.exit(int(ExitCode.OK))
    _stderr(f"forgectl: error: cannot write the output: {error.strerror or error}")
    sys.exit(int(ExitCode.OUTPUT))


def main(prog_name: str = "forgectl") -> None:
    """Run the CLI; every failure is one ``forgectl: error:`` line and an exit code."""
    try:
        cli.main(prog_name=prog_name, standalone_mode=False)
    except Signalled as ended:  # the socket is closed, the output flushed: die by it
        die_by(ended.signum)
    except click.exceptions.Exit as done:  # --help, --version
        sys.exit(done.exit_code)
    except click.UsageError as error:
        ctx = error.ctx
        where = ctx.command_path if ctx is not None else prog_name
        message = error.format_message()
        if isinstance(error, _NO_ARGS) and ctx is not None:  # click's message is all the help
            command = ctx.command
            names = command.list_commands(ctx) if isinstance(command, click.Group) else []
            message = f"missing command: one of {', '.join(names)}"
        _stderr(f"forgectl: error: {message} (see `{where} --help`)")
        sys.exit(int(ExitCode.USAGE))
    except OSError as error:  # writing --help or --version
        _output_failed(error)
    except ForgeError as error:  # found while a command was being set up
        sys.exit(Application().fail(error))
    except click.exceptions.Abort:
        _stderr("forgectl: interrupted")
        sys.exit(int(ExitCode.INTERRUPTED))
    except click.ClickException as error:
        _stderr(f"forgectl: error: {error.format_message()}")
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        import signal

        die_by(signal.SIGINT)
    sys.exit(0)
