"""monitor's terminal view in itself: event-time order, short ids, width, the running
line. (On the real server, on a pseudo-terminal: tests/test_terminal_manners.py.)"""

from __future__ import annotations

import os
import pty
import random
import re
import shlex
import sys
from collections.abc import Callable
from typing import Any

from forgectl.events import ProcessEvent
from forgectl.output.monitor import MAX_WIDTH, MonitorView, ShortIds
from forgectl.output.pretty import in_foreground


class Clockless:
    """A scheduler the test runs by hand: ``due()`` runs what was scheduled."""

    def __init__(self) -> None:
        self.pending: list[Callable[[], None]] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> Callable[[], None]:
        self.pending.append(callback)
        return lambda: self.pending.remove(callback) if callback in self.pending else None

    def due(self) -> None:
        pending, self.pending = self.pending, []
        for callback in pending:
            callback()


def event(kind: str, pid: str, second: int, **more: Any) -> ProcessEvent:
    key = {"process_started": "startedAt", "process_completed": "completedAt"}.get(kind, "failedAt")
    return ProcessEvent(
        {"type": kind, "processId": pid, key: f"2026-12-01T10:00:{second:02d}Z", **more}
    )


def view(
    width: int = 200, live: bool = False, foreground: Callable[[], bool] = lambda: True
) -> tuple[MonitorView, list[str], list[str]]:
    printed: list[str] = []
    written: list[str] = []
    monitor = MonitorView(
        lambda line: printed.append(line.plain),
        lambda: width,
        Clockless(),
        live=live,
        write=written.append,
        foreground=foreground,
    )
    return monitor, printed, written


def test_events_held_are_printed_in_event_time_order() -> None:
    monitor, printed, _ = view()
    ids = [f"{n:08x}-0000-4000-8000-{n:012x}" for n in range(1, 4)]
    # A history replay comes process by process; live records can swap.
    arrivals = [
        event("process_started", ids[0], 1),
        event("process_completed", ids[0], 9, exitCode=0),
        event("process_started", ids[1], 2),
        event("process_failed", ids[1], 5, exitCode=1),
        event("process_started", ids[2], 3),
    ]
    for item in arrivals:
        monitor.show(item)
    assert printed == []  # held until the stream is quiet
    monitor.flush()
    seconds = [line[6:8] for line in printed]  # HH:MM:SS in local time: the seconds
    assert seconds == sorted(seconds), printed
    assert len(printed) == 5


def test_short_ids_are_unique_prefixes() -> None:
    short = ShortIds()
    assert short("abcdef0123456789") == "abcdef01"
    assert short("abcdef0199999999") == "abcdef019"
    assert short("abcdef0123456789") == "abcdef012"  # longer now that a neighbour exists
    ids = [f"{random.Random(n).getrandbits(128):032x}" for n in range(300)]
    shown = {short(i) for i in ids}
    assert all(len(s) >= 8 for s in shown)
    final = [short(i) for i in ids]
    assert len(set(final)) == len(ids)


def test_lines_never_exceed_100_columns() -> None:
    monitor, printed, _ = view(width=300)
    long = "x" * 300
    monitor.show(
        event(
            "process_failed",
            "f" * 36,
            4,
            error={"message": long},
            runReason="codingagent",
            exitCode=1,
        )
    )
    monitor.flush()
    assert printed and all(len(line) <= MAX_WIDTH for line in printed), printed
    assert printed[0].endswith("…")


def test_the_running_line_is_erased_before_anything_else_is_written() -> None:
    monitor, _, written = view(live=True)
    pid = "0" * 8 + "-0000-4000-8000-" + "0" * 12
    monitor.show(event("process_started", pid, 1, runReason="setupscript"))
    monitor.flush()
    assert written and written[-1].startswith("⏱ running: 00000000 setupscript ")
    seen: list[str] = []
    monitor.interject(lambda: seen.append(written[-1]))  # a stderr line, say
    assert seen == ["\r\x1b[2K"]  # the running line was erased before it...
    assert written[-1].startswith("⏱ running: ")  # ...and drawn again after it
    monitor.show(event("process_completed", pid, 4, exitCode=0))
    monitor.close()
    assert written[-1] == "\r\x1b[2K"  # nothing running: no line left behind


def test_no_running_line_while_in_the_background() -> None:
    """``forgectl monitor &`` shares the terminal with the shell and the commands run
    after it: a line it rewrote every second would land in the middle of theirs."""
    ours = [False]
    monitor, printed, written = view(live=True, foreground=lambda: ours[0])
    pid = "1" * 8 + "-0000-4000-8000-" + "0" * 12
    monitor.show(event("process_started", pid, 1, runReason="devserver"))
    monitor.flush()
    assert printed and written == []  # events still print; no running line
    ours[0] = True  # fg: the job has the terminal again
    monitor.show(event("process_started", "2" * 36, 2, runReason="setupscript"))
    monitor.flush()
    assert written and written[-1].startswith("⏱ running: ")


FOREGROUND_PROBE = (
    "import sys; from forgectl.output.pretty import in_foreground; "
    "print('probe:', 'fg' if in_foreground(sys.stdout) else 'bg')"
)


def on_a_terminal(argv: list[str]) -> str:
    """What ``argv`` prints with a new pseudo-terminal as its controlling terminal."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    out = bytearray()
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the child's side is closed
            break
        if not data:
            break
        out += data
    os.close(fd)
    os.waitpid(pid, 0)
    return out.decode(errors="replace")


def probe(out: str) -> str | None:
    found = re.search(r"^probe: (fg|bg)\r?$", out, re.M)
    return found.group(1) if found else out


def test_in_foreground_tells_a_background_job_on_a_real_terminal() -> None:
    assert probe(on_a_terminal([sys.executable, "-c", FOREGROUND_PROBE])) == "fg"
    # bash with job control (as at a prompt) runs `&` jobs in a group of their own
    script = f"set -m; {shlex.quote(sys.executable)} -c {shlex.quote(FOREGROUND_PROBE)} & wait"
    assert probe(on_a_terminal(["bash", "-c", script])) == "bg"
    # a stream that is no terminal of ours: cannot tell, so the line is drawn
    with open(os.devnull, "w") as devnull:
        assert in_foreground(devnull)


def test_the_running_line_fits_whatever_runs() -> None:
    monitor, _, _ = view(width=300, live=True)
    for n in range(20):
        pid = f"{n:08x}-0000-4000-8000-000000000000"
        monitor.show(event("process_started", pid, n, runReason="セットアップ" * 3))
    monitor.flush()
    from rich.cells import cell_len

    status = monitor.status()
    assert status is not None and status.endswith("…")
    assert cell_len(status) <= MAX_WIDTH - 1  # never the last column


def test_a_scripts_executor_is_not_said_twice() -> None:
    monitor, printed, _ = view()
    for pid, reason, executor in (
        ("3f2a9c1e-0", "setupscript", "SetupScript"),
        ("4f2a9c1e-0", "codingagent", "CLAUDE_CODE"),
    ):
        monitor.show(
            event("process_started", pid, 1, runReason=reason, executor=executor, taskAttemptId="a")
        )
    monitor.flush()
    assert [line[9:] for line in printed] == [
        "▶ started   3f2a9c1e  setupscript · attempt a",
        "▶ started   4f2a9c1e  codingagent · CLAUDE_CODE · attempt a",
    ]
