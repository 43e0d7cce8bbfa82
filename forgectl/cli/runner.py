"""The one bridge from click to asyncio, with signals and exit codes.

Ctrl-C and SIGTERM cancel the running command; it closes its socket with a
normal close and the process exits 130 or 143, without a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import sys
from collections.abc import Awaitable, Callable
from typing import NoReturn

from ..errors import ExitCode, ForgeError
from ..output.base import OutputClosed, on_idle_failure
from .app import Application, _stderr, debug_enabled, silence


def run(app: Application, body: Callable[[], Awaitable[int]]) -> NoReturn:
    """Run ``body`` in an event loop and exit with its status."""
    code = _run(app, body)
    with contextlib.suppress(BrokenPipeError, ValueError, OSError):
        sys.stdout.flush()
    sys.exit(code)


def _run(app: Application, body: Callable[[], Awaitable[int]]) -> int:
    from ..diagnostics import guard_last_resort

    guard_last_resort()  # asyncio's own error reports pass the same gate
    received: list[int] = []
    failed: list[ForgeError] = []

    async def main() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_signal(code: int) -> None:
            if not received:
                received.append(code)
                task.cancel()

        for signum, code in (
            (signal.SIGINT, ExitCode.INTERRUPTED),
            (signal.SIGTERM, ExitCode.TERMINATED),
        ):
            # Not in the main thread (tests) or no signals here: Ctrl-C still ends it.
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, on_signal, int(code))
        _watch_stdout(loop, lambda: on_signal(int(ExitCode.OK)))

        def on_output_failure(error: ForgeError) -> None:
            # stdout failing while the stream is idle ends the command now (exit 8).
            failed.append(error)
            on_signal(int(error.exit_code))

        on_idle_failure(on_output_failure)
        try:
            return await body()
        except asyncio.CancelledError:
            if failed:  # the renderer was not closed, which would have said so
                return app.fail(failed[0])
            if received:
                return received[0]
            raise
        finally:
            on_idle_failure(None)

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)
    except OutputClosed:
        return int(ExitCode.OK)
    except ForgeError as error:
        if debug_enabled(app):
            _traceback(app, error)
        return app.fail(error)
    except Exception as error:  # a bug: one line, unless debugging
        if debug_enabled(app):
            _traceback(app, error)
        _stderr(
            f"forgectl: error: unexpected {type(error).__name__}: {error} "
            "(set FORGECTL_DEBUG=1 for a traceback)",
            *app.secrets(),
        )
        return int(ExitCode.ERROR)


def _traceback(app: Application, error: BaseException) -> None:
    from ..diagnostics import printable_traceback

    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(printable_traceback(error, *app.secrets()))
        sys.stderr.flush()


def _watch_stdout(loop: asyncio.AbstractEventLoop, on_gone: Callable[[], None]) -> None:
    """End the command when the reader of a stdout pipe goes away (``| head``).

    A follower whose stream is idle never writes, so it would never notice;
    epoll reports an error on a pipe's write end once its reader has closed it.
    """
    try:
        fd = sys.stdout.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return
    except (AttributeError, OSError, ValueError):
        return

    def gone() -> None:
        loop.remove_reader(fd)
        silence(fd)
        on_gone()

    with contextlib.suppress(OSError, ValueError, NotImplementedError, PermissionError):
        loop.add_reader(fd, gone)
