"""``ps`` on a terminal: one process per line, newest first, short ids.

Ids are cut to the shortest prefix that stays unique among those listed (at
least 8 characters, see :func:`forgectl.ids.short_ids`): every command takes
such a prefix back. Server text (run reasons, executors, statuses) is escaped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, BinaryIO

from ..escape import escape_line
from ..events import Event, ProcessRecord
from ..ids import short_ids
from ..times import parse_time
from .base import Renderer
from .pretty import make_console

if TYPE_CHECKING:
    from rich.text import Text

STATUS_STYLES = {
    "running": "cyan",
    "completed": "green",
    "failed": "bold red",
    "killed": "yellow",
}
HEADERS = ("ID", "ATTEMPT", "REASON", "EXECUTOR", "STATUS", "EXIT", "STARTED", "DURATION")


class ProcessTable(Renderer):
    """Collects the records, then prints them as a table when closed (short ids
    need every id). ``now``: the time durations of running processes run to."""

    def __init__(
        self, out: BinaryIO | None = None, *, color: str = "auto", now: datetime | None = None
    ) -> None:
        super().__init__(out)
        self.console = make_console(self.out, color)
        self.console.on_broken_pipe = self._closed  # type: ignore[method-assign]
        self.now = now
        self.records: list[ProcessRecord] = []

    def render(self, event: Event) -> None:
        if isinstance(event, ProcessRecord):
            self.records.append(event)

    def write(self, data: bytes) -> None:  # rich writes through its own file
        raise NotImplementedError

    def flush(self) -> None:
        try:
            self.console.file.flush()
        except BrokenPipeError:
            self._closed()
        except ValueError:
            pass
        except OSError as exc:
            self._failed(exc)

    def close(self) -> None:
        self.print_table()
        super().close()

    def rows(self) -> list[tuple[str, ...]]:
        """The table's cells, header first (plain text, escaped)."""
        now = self.now or datetime.now(UTC)
        ids = short_ids(r.process_id for r in self.records)
        attempts = short_ids(r.task_attempt_id for r in self.records if r.task_attempt_id)
        out = [HEADERS]
        for record in self.records:
            exit_code = record.exit_code
            out.append(
                (
                    ids.get(record.process_id, record.process_id),
                    attempts.get(record.task_attempt_id or "", "-"),
                    record.run_reason or "-",
                    record.executor or "-",
                    record.status,
                    "-" if exit_code is None else str(exit_code),
                    started(record.started_at, now),
                    duration(record, now),
                )
            )
        return [tuple(escape_line(cell) for cell in row) for row in out]

    def print_table(self) -> None:
        from rich.text import Text

        rows = self.rows()
        if len(rows) == 1:
            return  # nothing listed: no header alone (stderr says why, if anything)
        widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
        for n, row in enumerate(rows):
            line = Text()
            for i, cell in enumerate(row):
                last = i == len(row) - 1
                text = cell if last else cell.ljust(widths[i]) + "  "
                line.append(text, style=_style(n, i, cell))
            self._print(line)

    def _print(self, text: Text) -> None:
        try:
            self.console.print(text)
        except BrokenPipeError:
            self._closed()
        except OSError as exc:
            self._failed(exc)


def _style(row: int, column: int, cell: str) -> str:
    if row == 0:
        return "bold"
    if column == 0:
        return "bold"
    if column == 4:
        return STATUS_STYLES.get(cell, "")
    if column == 5 and cell not in ("-", "0"):
        return "red"
    return "dim" if column in (1, 6) else ""


def started(value: str | None, now: datetime) -> str:
    """When a process started, in local time: ``HH:MM:SS`` today, else the date too."""
    moment = parse_time(value)
    if moment is None:
        return "-"
    local = moment.astimezone()
    if local.date() == now.astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M")


def duration(record: ProcessRecord, now: datetime) -> str:
    """How long it ran; for a running process, how long it has been running."""
    begin = parse_time(record.started_at)
    end = parse_time(record.completed_at) if not record.running else now
    if begin is None or end is None:
        return "-"
    return span((end - begin).total_seconds())


def span(seconds: float) -> str:
    """``850ms``, ``12.3s``, ``4m05s``, ``1h02m``, ``3d04h``."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


class IdList(Renderer):
    """``ps -q``: each process's whole id on a line of its own."""

    def render(self, event: Event) -> None:
        if isinstance(event, ProcessRecord):
            self.write(escape_line(event.process_id).encode() + b"\n")
