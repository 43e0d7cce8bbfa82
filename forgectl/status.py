"""--exit-status: turning a process's end into forgectl's exit status.

A completed process gives its exit code (0 when the server gives none). A
process that failed gives its exit code, or 125 when it has none; a process that
was killed or stopped gives 137 (128 + SIGKILL, as shells report it). Process
exit codes 1-6 coincide with forgectl's own error codes: forgectl's own errors
always print a ``forgectl: error:`` line on stderr, the process's never do.
"""

from __future__ import annotations

from .errors import ExitCode
from .events import ProcessEvent


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
