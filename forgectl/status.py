"""--exit-status: turning a process's end into forgectl's exit status.

A completed process gives its exit code (0 when the server gives none). A
process that failed gives its exit code, or 125 when it has none; a process that
was killed or stopped gives 137 (128 + SIGKILL, as shells report it). Process
exit codes 1-6 coincide with forgectl's own error codes: forgectl's own errors
always print a ``forgectl: error:`` line on stderr, the process's never do.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ExitCode
from .events import ProcessEvent
from .times import duration_text, parse_time


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


@dataclass(frozen=True)
class Outcome:
    """How a process ended: its start and end events as the server reported them
    (``ended`` None: the stream ended without saying)."""

    started: ProcessEvent | None
    ended: ProcessEvent | None

    @property
    def exit_status(self) -> int:
        """What ``--exit-status`` exits with (7 when the end is unknown)."""
        return exit_status(self.ended) if self.ended is not None else int(ExitCode.STATUS_UNKNOWN)

    @property
    def seconds(self) -> float | None:
        """How long it ran: the server's duration, else from its start and end times."""
        ended = self.ended
        if ended is None:
            return None
        if ended.duration is not None:
            return ended.duration / 1000
        begun = parse_time(self.started.started_at) if self.started is not None else None
        end = parse_time(ended.completed_at or ended.failed_at or ended.stopped_at)
        if begun is None or end is None:
            return None
        return max(0.0, (end - begun).total_seconds())

    def describe(self) -> str:
        """``completed, exit code 0, after 12.3 s`` (``failed, no exit code``,
        ``stopped (killed)``...; ``ended; the server did not say how``)."""
        ended = self.ended
        if ended is None:
            return "ended; the server did not say how"
        kind = (
            ended.type.removeprefix("process_") if ended.type.startswith("process_") else ended.type
        )
        said = [kind]
        if ended.type == "process_stopped":
            said = [f"stopped ({ended.reason})" if ended.reason else "stopped"]
        elif ended.exit_code is not None:
            said.append(f"exit code {ended.exit_code}")
        elif ended.type == "process_failed":
            said.append("no exit code")
        seconds = self.seconds
        if seconds is not None:
            said.append(f"after {duration_text(seconds)}")
        return ", ".join(said)
