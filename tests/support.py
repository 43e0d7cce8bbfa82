"""What every test shares: the console script, a free port, forgectl in-process or as
a child, and the transcript a failure report prints.

* :data:`EXE` is the ``forgectl`` console script of the interpreter running the tests.
* :func:`invoke` runs the click application in-process (``CliRunner``), :func:`run`
  the console script in a subprocess; both take the server first (a URL, anything
  with a ``url``, or None) and note forgectl's stderr in the transcript.
* The transcript: :func:`note` records what forgectl said on stderr (or a callable
  that tells it when asked, for a child that is still running); ``tests/conftest.py``
  clears it before each test and, when the test fails, adds every non-empty entry to
  the report, with the log tail of each real Forge server the test used. A test need
  not print stderr in its asserts for it to be seen.

Imports nothing from pytest, so the libraries (``forge_bed.py``, ``hostile.py``) and
the scripts beside them can use it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from click.testing import CliRunner, Result

#: The installed console script (a child process runs what a user runs).
EXE = str(Path(sys.executable).with_name("forgectl"))

#: How much of one entry a failure report shows (its last lines).
TRANSCRIPT_LINES = 60
#: How many entries a failure report shows (the last ones).
TRANSCRIPT_ENTRIES = 12

_transcript: list[tuple[str, Callable[[], str]]] = []


class HasUrl(Protocol):
    """A server a test runs (ForgeServer, ThreadedReferenceServer, HostileServer...)."""

    @property
    def url(self) -> str: ...


Server = str | HasUrl | None


def server_args(server: Server) -> list[str]:
    """``--server URL`` for a server or a URL; nothing for None."""
    if server is None:
        return []
    return ["--server", server if isinstance(server, str) else server.url]


def note(title: str, text: str | Callable[[], str]) -> None:
    """Remember what forgectl said (``text``, or a callable asked at report time)."""
    _transcript.append((title, text if callable(text) else lambda: text))


def clear_transcript() -> None:
    _transcript.clear()


def transcript() -> list[tuple[str, str]]:
    """The non-empty entries, last ones last, each cut to its last lines."""
    out: list[tuple[str, str]] = []
    for title, text in _transcript:
        try:
            said = text()
        except Exception as exc:  # a report must not fail for one entry
            said = f"(could not be read: {exc!r})"
        if said.strip():
            lines = said.splitlines()
            if len(lines) > TRANSCRIPT_LINES:
                lines = [
                    f"... {len(lines) - TRANSCRIPT_LINES} lines before",
                    *lines[-TRANSCRIPT_LINES:],
                ]
            out.append((title, "\n".join(lines)))
    return out[-TRANSCRIPT_ENTRIES:]


def command_line(args: Sequence[str | bytes]) -> str:
    shown = [a.decode("utf-8", "replace") if isinstance(a, bytes) else a for a in args]
    return "forgectl " + " ".join(shown)


def free_port() -> int:
    """A port nothing listens on at the moment (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def invoke(
    server: Server,
    *args: str,
    api: str | None = None,
    env: Mapping[str, str | None] | None = None,
    input: str | None = None,
    catch_exceptions: bool = True,
    runner: CliRunner | None = None,
) -> Result:
    """``forgectl [--server URL] [--api NAME] ARGS...`` in-process, stdout and stderr
    apart. ``env`` is set for the run only (None unsets a variable)."""
    from forgectl.cli.main import cli

    argv = [*server_args(server), *(("--api", api) if api else ()), *args]
    result = (runner or CliRunner()).invoke(
        cli, argv, env=env, input=input, catch_exceptions=catch_exceptions
    )
    note(f"{command_line(argv)} (in-process, exit {result.exit_code}): stderr", result.stderr)
    return result


def child_env(env: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """This process's environment (the test's isolated one) with ``env`` applied:
    a value sets a variable, None unsets it."""
    merged = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def run(
    server: Server,
    *args: str | bytes,
    env: Mapping[str, str | None] | None = None,
    input: str | None = None,
    timeout: float = 30,
    **popen: Any,
) -> subprocess.CompletedProcess[str]:
    """``forgectl [--server URL] ARGS...`` as a child, stdout and stderr apart (text,
    bad UTF-8 replaced); ``env`` as in :func:`child_env`. ``stdout=`` may send the
    output elsewhere (``subprocess.DEVNULL``); stdin is empty unless ``input``."""
    argv = [*server_args(server), *args]
    popen.setdefault("stdin", None if input is not None else subprocess.DEVNULL)
    popen.setdefault("stdout", subprocess.PIPE)
    try:
        done = subprocess.run(
            [EXE, *argv],
            input=input,
            stderr=subprocess.PIPE,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            env=child_env(env),
            check=False,
            **popen,
        )
    except subprocess.TimeoutExpired as exc:
        got: str | bytes = exc.stderr or b""  # bytes, text mode or not
        said = got.decode("utf-8", "replace") if isinstance(got, bytes) else got
        note(f"{command_line(argv)} (still running after {timeout} s): stderr", said)
        raise
    note(f"{command_line(argv)} (exit {done.returncode}): stderr", done.stderr)
    return done
