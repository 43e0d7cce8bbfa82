"""The one bridge from click to asyncio, with signals and exit codes.

Ctrl-C (SIGINT) and SIGTERM cancel the running command; it closes its socket
with a normal close, flushes its output, and then forgectl dies by the same
signal (the default handler restored, the signal raised again), so that a shell
loop or make stops too; the shell reports 130 or 143. A signal that was already
ignored when forgectl started (SIGINT in a script's background job) stays
ignored, as Python itself leaves it.
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
from .app import Application, Signalled, _stderr, debug_enabled, silence

#: The signals that end a command, and the status reported if dying by one fails.
SIGNALS: dict[int, ExitCode] = {
    int(signal.SIGINT): ExitCode.INTERRUPTED,
    int(signal.SIGTERM): ExitCode.TERMINATED,
}


def run(app: Application, body: Callable[[], Awaitable[int]]) -> NoReturn:
    """Run ``body`` in an event loop and exit with its status (or with
    :class:`Signalled`, for the signal that ended it)."""
    received: list[int] = []
    code = _run(app, body, received)
    with contextlib.suppress(BrokenPipeError, ValueError, OSError):
        sys.stdout.flush()
    if received and received[0] in SIGNALS:
        raise Signalled(received[0])
    sys.exit(code)


def _run(app: Application, body: Callable[[], Awaitable[int]], received: list[int]) -> int:
    from ..diagnostics import guard_last_resort

    guard_last_resort()  # asyncio's own error reports pass the same gate
    failed: list[ForgeError] = []

    async def main() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_signal(signum: int) -> None:
            if not received:
                received.append(signum)
                task.cancel()

        for signum in SIGNALS:
            if signal.getsignal(signum) == signal.SIG_IGN:
                continue  # ignored by whoever started us: stays ignored
            # Not in the main thread (tests) or no signals here: Ctrl-C still ends it.
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, on_signal, signum)
        _watch_stdout(loop, lambda: on_signal(0))  # the reader left: end, status 0

        def on_output_failure(error: ForgeError) -> None:
            # stdout failing while the stream is idle ends the command now (exit 8).
            failed.append(error)
            if not received:
                task.cancel()

        on_idle_failure(on_output_failure)
        try:
            return await body()
        except asyncio.CancelledError:
            if failed:  # the renderer was not closed, which would have said so
                return app.fail(failed[0])
            if received:
                return int(SIGNALS.get(received[0], ExitCode.OK))
            raise
        finally:
            on_idle_failure(None)

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        received[:] = [int(signal.SIGINT)]
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
