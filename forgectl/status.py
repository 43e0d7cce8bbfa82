"""--exit-status: turning a process's end into forgectl's exit status.

A completed process gives its exit code (0 when the server gives none). A
process that failed gives its exit code, or 125 when it has none; a process that
was killed or stopped gives 137 (128 + SIGKILL, as shells report it). Process
exit codes 1-6 coincide with forgectl's own error codes: forgectl's own errors
always print a ``forgectl: error:`` line on stderr, the process's never do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import ExitCode
from .events import ProcessEvent

if TYPE_CHECKING:
    from .diagnostics import Diagnostics
    from .stream import Stream
    from .transport import Endpoint


def exit_status(event: ProcessEvent) -> int:
    """The status to exit with; codes outside 0-255 wrap as a shell's would
    (``& 0xFF``), and a failure never wraps to 0."""
    code = event.exit_code
    if event.type == "process_completed":
        return (code & 0xFF) if code is not None else 0
    if event.type == "process_failed":
        wrapped = (code & 0xFF) if code is not None else 0
        return wrapped or int(ExitCode.PROCESS_FAILED)
    return int(ExitCode.PROCESS_STOPPED)


class ExitWatcher:
    """Learns how a process ended, alongside its log stream.

    It follows the process-event stream (the only place the documented API tells
    an exit code) from the start; on the real server it asks REST at the end,
    which knows even when the event stream has forgotten.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        process_id: str,
        diag: Diagnostics,
        make_stream: Callable[[], Stream],
    ) -> None:
        self.process_id = process_id
        self.endpoint = endpoint
        self.diag = diag
        self.event: ProcessEvent | None = None
        self._found = asyncio.Event()
        self._make_stream = make_stream
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        stream = self._make_stream()
        try:
            async for event in stream:
                if (
                    isinstance(event, ProcessEvent)
                    and event.process_id == self.process_id
                    and event.is_terminal
                ):
                    self.event = event
                    self._found.set()
                    return
        except Exception as exc:  # the log stream still decides; say why status may be unknown
            self.diag.trace(f"exit-status watcher stopped: {exc}")
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()

    async def result(self, forge: bool, timeout: float = 10.0) -> int:
        """The exit status, waiting up to ``timeout`` s for the server to tell it."""
        try:
            if forge:
                event = await self._from_rest(timeout)
                if event is not None:
                    return exit_status(event)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._found.wait(), 1.0)
            if self.event is None:
                self.diag.note(
                    f"waiting up to {timeout:g} s for the server to tell how process "
                    f"{self.process_id} ended"
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._found.wait(), timeout)
            if self.event is not None:
                return exit_status(self.event)
            self.diag.warning(
                f"process {self.process_id} ended but the server did not report its exit status"
            )
            return int(ExitCode.STATUS_UNKNOWN)
        finally:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(BaseException):
                    await self._task

    async def _from_rest(self, timeout: float) -> ProcessEvent | None:
        from .dialects.forge.schema import process_events
        from .transport.rest import get_data
        from .urls import segment

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            record = await get_data(
                self.endpoint,
                f"/api/execution-processes/{segment(self.process_id)}",
                what=f"process {self.process_id}",
            )
            if isinstance(record, dict) and record.get("status") != "running":
                events = process_events(record, False, True)
                if events and isinstance(events[-1], ProcessEvent):
                    return events[-1]
                return None
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(0.2)
