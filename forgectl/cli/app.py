"""The application object: built by the root group, passed to every command."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from ..constants import ENV_DEBUG, ENV_TOKEN
from ..errors import ExitCode, ForgeError

if TYPE_CHECKING:
    from ..diagnostics import Diagnostics
    from ..output.base import Renderer
    from ..settings import Settings
    from ..stream import StreamOptions


class Application:
    """What the root group learnt (verbosity, connection options), and the settings
    and diagnostics every command shares, built on first use."""

    def __init__(self) -> None:
        # A plain class: dataclasses would cost --help a millisecond of imports.
        self.verbose = 0
        self.debug = False
        self.connection: dict[str, Any] = {}
        self._settings: Settings | None = None
        self._diag: Diagnostics | None = None

    def override(self, values: dict[str, Any]) -> None:
        """Connection options given after the subcommand win over the root's."""
        for key, value in values.items():
            if key == "verbose":
                self.verbose = max(self.verbose, value or 0)
            elif key == "debug":
                self.debug = self.debug or bool(value)
            elif value is not None:
                self.connection[key] = value

    @property
    def diag(self) -> Diagnostics:
        if self._diag is None:
            from ..diagnostics import Diagnostics, stderr_emitter

            self._diag = Diagnostics(stderr_emitter(), verbose=self.verbose)
        return self._diag

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from ..settings import resolve

            conn = self.connection
            token = conn.get("token")
            from_env = bool(token) and token == os.environ.get(ENV_TOKEN)
            self._settings = resolve(
                server=conn.get("server"),
                token=token,
                token_from_env=from_env,
                api=conn.get("api"),
                cacert=conn.get("cacert"),
                insecure=bool(conn.get("insecure")),
                profile=conn.get("profile"),
                diag=self.diag,
                plaintext_proxy=bool(conn.get("allow_plaintext_proxy")),
            )
            self.diag.add_secret(self._settings.token)
        return self._settings

    def stream_options(self, kwargs: dict[str, Any]) -> StreamOptions:
        from ..stream import StreamOptions

        return StreamOptions(
            reconnect=not kwargs.get("no_reconnect", False),
            retry_for=kwargs.get("retry_for"),
            ping_interval=kwargs["ping_interval"],
            stale_timeout=kwargs["stale_timeout"],
            settle=kwargs["settle"],
            wait_start=kwargs.get("wait_start"),
            max_message_size=kwargs["max_message_size"] << 20,
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

    def renderer(self, mode: str, color: str, **pretty: Any) -> Renderer:
        verbatim = bool(pretty.pop("verbatim", False))
        if mode == "json":
            from ..output.jsonl import JsonLinesRenderer

            return JsonLinesRenderer()
        if mode == "raw":
            from ..output.raw import RawRenderer

            return RawRenderer(
                timestamps=bool(pretty.get("timestamps")),
                sanitize=not verbatim and _is_terminal(sys.stdout),
                notice=self.diag.note,
            )
        from ..output.pretty import PrettyRenderer

        return PrettyRenderer(color=color, **pretty)

    def fail(self, error: ForgeError) -> int:
        _stderr(f"forgectl: error: {error}", *self.secrets())
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


def silence(fd: int) -> None:
    """Point ``fd`` at /dev/null, so the final flush of buffered output is silent."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
