"""``forgectl monitor`` on a terminal: one short line per event, in the order the
events happened, and how long each running process has been at it.

- **Short ids**: a process or attempt id is shown by its first 8 characters, more
  when another id seen so far starts the same way (git's abbreviated hashes).
- **Fits the width**: a line is cut (``…``) at the window's width, at most 100
  columns, so two ids and an error never wrap.
- **Event-time order**: the real server's event stream can deliver records out of
  order (each change is read back by a task of its own), and a history replay comes
  process by process. Events are held until the stream has been quiet for
  :data:`HOLD` seconds (at most :data:`MAX_HOLD`) and printed sorted by the time
  each says it happened; an event without a time keeps its place.
- **Elapsed time**: on a terminal, a last line that is rewritten every second lists
  the running processes and how long each has run (as ``gh run watch`` does). It is
  erased before anything else is printed, on stdout or (through
  :meth:`MonitorView.interject`) on stderr, and never drawn into a pipe or a file.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..escape import escape
from ..times import duration_text, parse_time

if TYPE_CHECKING:
    from rich.text import Text

    from ..events import ProcessEvent

#: Events are printed once the stream has been quiet this long...
HOLD = 0.25
#: ...or once the oldest held one has waited this long.
MAX_HOLD = 1.0
#: The widest a line gets, whatever the window.
MAX_WIDTH = 100
#: The shortest id shown (a UUID's first group).
SHORT_ID = 8

EVENT_STYLES = {
    "process_started": ("▶", "cyan", "started"),
    "process_progress": ("…", "blue", "progress"),
    "process_completed": ("✔", "green", "completed"),
    "process_failed": ("✖", "bold red", "failed"),
    "process_stopped": ("■", "yellow", "stopped"),
}
_TIME_KEYS = ("startedAt", "completedAt", "failedAt", "stoppedAt", "timestamp")


class ShortIds:
    """Unique prefixes of the ids seen so far (at least :data:`SHORT_ID` long)."""

    def __init__(self) -> None:
        self._sorted: list[str] = []

    def __call__(self, ident: str) -> str:
        ids = self._sorted
        at = bisect.bisect_left(ids, ident)
        if at == len(ids) or ids[at] != ident:
            ids.insert(at, ident)
        # The longest prefix shared with a neighbour in sorted order, plus one.
        shared = 0
        for other in (ids[at - 1] if at else None, ids[at + 1] if at + 1 < len(ids) else None):
            if other is not None:
                n = 0
                while n < len(ident) and n < len(other) and ident[n] == other[n]:
                    n += 1
                shared = max(shared, n)
        return ident[: max(SHORT_ID, shared + 1)]


def _elapsed(seconds: float) -> str:
    """``12s``, ``4m05s``, ``2h03m``: the running line's short form."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def event_time(data: dict[str, Any]) -> datetime | None:
    for key in _TIME_KEYS:
        moment = parse_time(data.get(key))
        if moment is not None:
            return moment
    return None


class MonitorView:
    """Process events as lines (see the module docstring).

    ``print_line`` prints one line; ``width()`` is the window's width; ``schedule
    (delay, callback)`` runs ``callback`` later and returns a cancel function (None
    without an event loop: then every event prints at once); ``live`` writes the
    running line with ``write`` (raw text: ``\\r``, erase, the line, no newline).
    """

    def __init__(
        self,
        print_line: Callable[[Text], None],
        width: Callable[[], int],
        schedule: Callable[[float, Callable[[], None]], Callable[[], None] | None],
        *,
        live: bool = False,
        write: Callable[[str], None] | None = None,
        style: Callable[[str, str], str] | None = None,
        foreground: Callable[[], bool] = lambda: True,
    ) -> None:
        self.print_line = print_line
        self.width = width
        self.schedule = schedule
        self.live = live and write is not None
        self.write = write or (lambda text: None)
        self.style = style or (lambda text, style: text)
        #: whether the terminal is ours now (a job sent to the background with ``&``
        #: or Ctrl-Z + ``bg`` shares it: a line it rewrites would garble the others')
        self.foreground = foreground
        self.short = ShortIds()
        self.held: list[tuple[float, int, ProcessEvent]] = []
        self.seq = 0
        self.last_key = -math.inf
        self.first_held = 0.0
        self.last_held = 0.0
        self._flush_cancel: Callable[[], None] | None = None
        #: process id → (its short label, when it started: epoch seconds)
        self.running: dict[str, tuple[str, float]] = {}
        self.started_at: dict[str, float] = {}
        self._tick_cancel: Callable[[], None] | None = None
        self._drawn = False

    # -- events in, in time order out ------------------------------------------------

    def show(self, event: ProcessEvent) -> None:
        data = event.to_dict()
        moment = event_time(data)
        key = moment.timestamp() if moment is not None else self.last_key
        self.last_key = key
        self._track(event, moment)
        now = time.monotonic()
        if not self.held:
            self.first_held = now
        self.last_held = now
        self.seq += 1
        self.held.append((key, self.seq, event))
        if self._flush_cancel is None:
            self._flush_cancel = self.schedule(HOLD, self._due)
            if self._flush_cancel is None:  # no event loop: nothing to wait for
                self.flush()

    def _due(self) -> None:
        self._flush_cancel = None
        now = time.monotonic()
        quiet_at = self.last_held + HOLD
        if now < quiet_at and now < self.first_held + MAX_HOLD:
            wait = min(quiet_at, self.first_held + MAX_HOLD) - now
            self._flush_cancel = self.schedule(wait, self._due)
            return
        self.flush()

    def flush(self) -> None:
        if self._flush_cancel is not None:
            self._flush_cancel()
            self._flush_cancel = None
        held, self.held = self.held, []
        if not held:
            return
        held.sort(key=lambda item: (item[0], item[1]))
        self._erase()
        for _, _, event in held:
            self.print_line(self.line(event))
        self._draw()

    def close(self) -> None:
        self.flush()
        self._erase()
        if self._tick_cancel is not None:
            self._tick_cancel()
            self._tick_cancel = None
        self.live = False

    # -- one line per event --------------------------------------------------------------

    def line(self, event: ProcessEvent) -> Text:
        from rich.text import Text

        kind = event.type
        icon, style, label = EVENT_STYLES.get(kind, ("•", "default", escape(kind)))
        data = event.to_dict()
        line = Text()
        moment = event_time(data)
        if moment is not None:
            line.append(moment.astimezone().strftime("%H:%M:%S") + " ", style="dim")
        line.append(f"{icon} {label:<9}", style=style)
        line.append(f" {self._id(event.process_id)}", style="bold")
        width = self._width()
        if kind == "process_progress":
            line.append("  ")
            line.append_text(progress_text(data.get("progress")))
            line.truncate(width, overflow="ellipsis")
            return line
        details = self._details(event, data)
        if details:
            line.append("  " + escape(" · ".join(details)), style="dim")
        line.truncate(width, overflow="ellipsis")
        return line

    def _width(self) -> int:
        return min(self.width(), MAX_WIDTH)

    def _id(self, ident: str | None) -> str:
        return escape(self.short(ident)) if ident else "?"

    def _details(self, event: ProcessEvent, data: dict[str, Any]) -> list[str]:
        kind = event.type
        details = [str(event.run_reason)] if event.run_reason else []
        if kind == "process_started":
            executor = str(event.executor or "")
            # the real server names a script's executor after its run reason: said once
            if executor and executor.lower().replace("_", "") != str(event.run_reason).lower():
                details.append(executor)
            if event.task_attempt_id:
                details.append(f"attempt {self.short(event.task_attempt_id)}")
            return details
        if kind == "process_failed":
            error = event.error
            message = str(error.get("message") or "") if error else ""
            if message and details and message.startswith(details[0]):
                details.pop()  # "setupscript failed (...)" names the run reason itself
            if message:
                details.append(message)
            if event.exit_code is not None and str(event.exit_code) not in message:
                details.append(f"exit {event.exit_code}")
        elif kind == "process_completed":
            if event.exit_code is not None:
                details.append(f"exit {event.exit_code}")
        elif kind == "process_stopped":
            if event.reason:
                details.append(str(event.reason))
        elif kind not in EVENT_STYLES:  # a type the spec does not list: show it all
            shown = ("type", "processId", "runReason", "executor", "taskAttemptId")
            details.append(", ".join(f"{k}={v}" for k, v in data.items() if k not in shown))
            return details
        took = self._took(event)
        if took is not None:
            details.append(duration_text(took))
        return details

    def _took(self, event: ProcessEvent) -> float | None:
        """How long an ended process ran: the server's duration, else from the times."""
        if event.duration is not None:
            return event.duration / 1000
        end = event_time(event.to_dict())
        begun = self.started_at.get(event.process_id or "")
        if end is None or begun is None:
            return None
        return max(0.0, end.timestamp() - begun)

    # -- the running line --------------------------------------------------------------

    def _track(self, event: ProcessEvent, moment: datetime | None) -> None:
        pid = event.process_id
        if not pid:
            return
        if event.type == "process_started":
            begun = moment.timestamp() if moment is not None else time.time()
            self.started_at[pid] = begun
            label = str(event.run_reason or event.executor or "")
            self.running[pid] = (label, begun)
            self._start_ticking()
        elif event.is_terminal:
            self.running.pop(pid, None)

    def _start_ticking(self) -> None:
        if self.live and self._tick_cancel is None:
            self._tick_cancel = self.schedule(1.0, self._tick)

    def _tick(self) -> None:
        self._tick_cancel = None
        if not self.live:
            return
        self._erase()
        self._draw()
        if self.running:
            self._tick_cancel = self.schedule(1.0, self._tick)

    def status(self) -> str | None:
        """The running line's text (None: nothing runs)."""
        if not self.running:
            return None
        now = datetime.now(UTC).timestamp()
        parts = [
            f"{self.short(pid)} {escape(label)} {_elapsed(now - begun)}".replace("  ", " ")
            for pid, (label, begun) in sorted(self.running.items(), key=lambda kv: kv[1][1])
        ]
        from rich.cells import cell_len, set_cell_size

        text = "⏱ running: " + " · ".join(parts)
        width = max(10, self._width() - 1)  # never the last column: no wrap
        return text if cell_len(text) <= width else set_cell_size(text, width - 1) + "…"

    def _draw(self) -> None:
        if not self.live or not self.foreground():
            return
        text = self.status()
        if text is None:
            return
        self.write(self.style(text, "dim"))
        self._drawn = True

    def _erase(self) -> None:
        if self._drawn:
            self.write("\r\x1b[2K")
            self._drawn = False

    def interject(self, emit: Callable[[], None]) -> None:
        """Run ``emit`` (a line on stderr) with the running line out of its way."""
        drawn = self._drawn
        self._erase()
        try:
            emit()
        finally:
            if drawn:
                self._draw()


def progress_text(progress: Any) -> Text:
    """A ``process_progress`` event's progress: a bar, its stage and message."""
    from rich.text import Text

    line = Text()
    if not isinstance(progress, dict):
        if isinstance(progress, (int, float)):
            progress = {"percentage": progress}
        else:
            return Text(escape(str(progress)))
    pct = progress.get("percentage")
    if isinstance(pct, (int, float)):
        pct = max(0.0, min(100.0, float(pct)))
        width = 20
        filled = round(width * pct / 100)
        line.append("█" * filled, style="blue")
        line.append("░" * (width - filled), style="dim")
        line.append(f" {pct:3.0f}%")
    for key in ("stage", "message"):
        if progress.get(key):
            line.append(f"  {escape(str(progress[key]))}", style="dim" if key == "stage" else "")
    remaining = progress.get("estimatedRemaining")
    if isinstance(remaining, (int, float)):
        line.append(f"  ~{remaining / 1000:.0f} s left", style="dim")
    return line
