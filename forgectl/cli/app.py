"""The application object: built by the root group, passed to every command."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

import click

from ..constants import ENV_DEBUG
from ..errors import ExitCode, ForgeError

if TYPE_CHECKING:
    from ..client import ForgeClient
    from ..diagnostics import Diagnostics
    from ..output.base import Renderer
    from ..settings import Settings
    from ..stream import StreamOptions


class Application:
    """What the command line said (connection options, verbosity, stream tuning),
    filled by the options' callbacks, and the settings, diagnostics and library
    client every command shares, built on first use."""

    def __init__(self) -> None:
        # A plain class: dataclasses would cost --help a millisecond of imports.
        self.verbose = 0
        self.debug = False
        #: Connection option name → value, as given (the innermost flag wins).
        self.connection: dict[str, Any] = {}
        #: Connection option name → where its value came from: "flag" or "env".
        self.sources: dict[str, str] = {}
        #: Stream tuning (--retry-for, --settle, ...) → value.
        self.tuning: dict[str, Any] = {}
        self._settings: Settings | None = None
        self._diag: Diagnostics | None = None

    def set_connection(self, name: str, value: Any, source: str) -> None:
        if name == "verbose":
            self.verbose = max(self.verbose, int(value))
        elif name == "debug":
            self.debug = self.debug or bool(value)
        else:
            self.connection[name] = value
            self.sources[name] = source

    @property
    def diag(self) -> Diagnostics:
        if self._diag is None:
            from ..diagnostics import Diagnostics, stderr_emitter

            self._diag = Diagnostics(stderr_emitter(), verbose=self.verbose)
        return self._diag

    def resolve(self, *, stored: bool = True, token: bool = True) -> Settings:
        """Settings from the connection options (``token=False``: ignore the given
        token; ``stored=False``: skip the keyring and the token file)."""
        from ..settings import resolve

        conn = self.connection
        given = conn.get("token") if token else None
        return resolve(
            server=conn.get("server"),
            token=given,
            token_from_env=bool(given) and self.sources.get("token") == "env",
            api=conn.get("api"),
            cacert=conn.get("cacert"),
            insecure=bool(conn.get("insecure")),
            profile=conn.get("profile"),
            diag=self.diag,
            stored=stored,
            plaintext_proxy=bool(conn.get("allow_plaintext_proxy")),
        )

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = self.resolve()
            self.diag.add_secret(self._settings.token)
        return self._settings

    def stream_options(self) -> StreamOptions:
        from ..stream import StreamOptions

        tuning = self.tuning
        return StreamOptions(
            reconnect=not tuning.get("no_reconnect", False),
            retry_for=tuning.get("retry_for"),
            ping_interval=tuning["ping_interval"],
            stale_timeout=tuning["stale_timeout"],
            settle=tuning["settle"],
            wait_start=tuning.get("wait_start"),
            max_message_size=tuning["max_message_size"] << 20,
        )

    def client(self) -> ForgeClient:
        """The library client, over the settings and stream tuning given."""
        from ..client import ForgeClient

        with usage_guard(self):
            settings = self.settings
        return ForgeClient(
            settings=settings,
            options=self.stream_options(),
            open_timeout=self.tuning.get("open_timeout"),
            diagnostics=self.diag,
        )

    def output_mode(self, requested: str | None) -> str:
        """--json/--pretty, else the profile's ``output``, else by what stdout is."""
        if requested:
            return requested
        with usage_guard(self):
            profile_output = self.settings.output
        if profile_output:
            return profile_output
        try:
            return "pretty" if sys.stdout.isatty() else "json"
        except (AttributeError, ValueError):
            return "json"

    def renderer(
        self, mode: str, color: str, *, out: BinaryIO | None = None, **pretty: Any
    ) -> Renderer:
        """The renderer for an output mode (json, raw, pretty), writing to stdout
        (or ``out``: one process's share of it, see ``logs --attempt``)."""
        verbatim = bool(pretty.pop("verbatim", False))
        if mode == "json":
            from ..output.jsonl import JsonLinesRenderer

            return JsonLinesRenderer(out)
        if mode == "raw":
            from ..output.raw import RawRenderer

            return RawRenderer(
                out,
                timestamps=bool(pretty.get("timestamps")),
                sanitize=not verbatim and _is_terminal(sys.stdout),
                notice=self.diag.note,
            )
        from ..output.pretty import PrettyRenderer

        return PrettyRenderer(out, color=color, **pretty)

    def message(self, error: ForgeError) -> str:
        """The error's line for a person at a shell: its facts, then the flags that help."""
        from .hints import phrase

        return phrase(error, self.connection.get("api") or self._api())

    def _api(self) -> str:
        return self._settings.api if self._settings is not None else "auto"

    def fail(self, error: ForgeError) -> int:
        _stderr(f"forgectl: error: {self.message(error)}", *self.secrets())
        return int(error.exit_code)

    def secrets(self) -> tuple[str | None, ...]:
        """Every token this run holds, for redacting what it prints."""
        known = self._diag.secrets if self._diag is not None else ()
        return (*known, self.connection.get("token"))


@contextlib.contextmanager
def usage_guard(app: Application) -> Iterator[None]:
    """Turn a usage problem found while preparing a command into exit 2."""
    try:
        yield
    except ForgeError as error:
        sys.exit(app.fail(error))


def _stderr(line: str, *secrets: str | None) -> None:
    """One line on stderr, through the core's gate (tokens hidden, control
    characters escaped: error lines carry server text)."""
    from ..diagnostics import printable

    try:
        sys.stderr.write(printable(line, *secrets) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def debug_enabled(app: Application | None) -> bool:
    return bool(app and app.debug) or bool(os.environ.get(ENV_DEBUG))


pass_app = click.make_pass_decorator(Application, ensure=True)

__all__ = ["Application", "ExitCode", "pass_app"]


class Signalled(SystemExit):
    """A command ended by a signal: exit status 128 + signum where forgectl is
    embedded (CliRunner), death by the signal itself in the ``forgectl`` program
    (:func:`forgectl.cli.main.main` calls :func:`die_by`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


def die_by(signum: int) -> NoReturn:
    """Die by ``signum`` once the output is flushed: the default handler restored and
    the signal raised again, so the parent (a shell loop, make) sees the signal, not
    an exit status, and stops too. Exits 128 + signum if the signal does not kill."""
    import signal

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    with contextlib.suppress(OSError, ValueError, AttributeError):
        silence(sys.stdout.fileno())  # nothing left to write: no error at exit
    with contextlib.suppress(OSError, ValueError):
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    sys.exit(128 + signum)


def silence(fd: int) -> None:
    """Point ``fd`` at /dev/null, so the final flush of buffered output is silent."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
