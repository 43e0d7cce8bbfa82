"""The process stream: execution-process records as lifecycle events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...events import BACKLOG_END, Event
from ...times import parse_time
from ..patch import ops_of, split
from .base import PROCESSES, PatchDecoder
from .schema import _state, process_events

if TYPE_CHECKING:
    from ...diagnostics import Diagnostics
    from ..patch import Frame


class ForgeMonitorDecoder(PatchDecoder):
    """Execution-process records → process_started / _completed / _failed / _stopped.

    The initial snapshot (the first frame of the attempt stream; on the SSE
    stream, the replay of every change since the server started, which the
    driver tells from live events by the early rule of
    :class:`~forgectl.stream.history.TailHistory`: a process that starts a moment
    after monitor does is live, however short its life) reports processes that
    are running as ``process_started``; processes that already ended stay silent
    unless ``history`` is set — or unless the attempt did not exist yet when
    monitor started (``--wait-start``): all of its processes are new. After a
    reconnect the snapshot is compared with what was seen, so only what changed
    meanwhile is reported; a record older than one already seen (by
    ``updated_at``) changes nothing.
    """

    def __init__(self, diag: Diagnostics, *, history: bool, sse: bool, attempt: str | None) -> None:
        super().__init__(diag)
        self.history = history
        self.sse = sse
        self.attempt = attempt
        self.known: dict[str, tuple[Any, ...]] = {}
        self.updated: dict[str, str] = {}
        self.first = True
        self.in_snapshot = False
        self.pending: dict[str, dict[str, Any]] = {}
        if sse:
            # One change of a process is several table ops at once (its task, its
            # attempt, the process): live events come in bursts
            self.history_rule = "events"
        else:
            self.knows_history = True  # the attempt stream's first frame is its snapshot

    def connected(self) -> None:
        self.in_snapshot = True
        self.pending = {}

    def appeared(self) -> None:
        self.history = True  # it did not exist when we started: nothing of it is old

    def history_over(self) -> list[Event]:
        out: list[Event] = []
        self.end_snapshot(out)
        return out

    def apply(self, frame: Frame) -> list[Event]:
        out: list[Event] = []
        for op, path, value in ops_of(frame):
            if path == PROCESSES and op in ("add", "replace"):
                if type(value) is not dict:
                    self.diag.bad_frame("unexpected process snapshot", "not an object")
                    continue
                for record in value.values():
                    self.record(record, out)
                self.end_snapshot(out)
                continue
            pid = split(path, PROCESSES + "/")
            if pid is None or "/" in pid:
                if self.sse:  # the event stream carries every table; only processes matter
                    self.diag.trace(f"ignored event-stream op {op} {path}", 2)
                else:
                    self.unknown_path(op, path)
                continue
            if op == "remove":
                self.pending.pop(pid, None)
                continue  # removals (often of other attempts' ids) say nothing of a run
            if op in ("add", "replace"):
                self.record(value, out)
            else:
                self.unknown_path(op, path)
        if not self.sse:
            self.end_snapshot(out)
        return out

    def record(self, record: Any, out: list[Event]) -> None:
        if type(record) is not dict or type(record.get("id")) is not str:
            self.diag.bad_frame("unexpected process record", "no id")
            return
        if self.attempt and record.get("task_attempt_id") != self.attempt:
            return
        if self.in_snapshot:
            self.pending[record["id"]] = record
        else:
            self.transition(record, out)

    def end_snapshot(self, out: list[Event]) -> None:
        if not self.in_snapshot:
            return
        self.in_snapshot = False
        for record in self.pending.values():
            self.transition(record, out)
        self.pending = {}
        self.first = False
        if not self.sse:
            out.append(BACKLOG_END)

    def transition(self, record: dict[str, Any], out: list[Event]) -> None:
        pid = record["id"]
        updated = record.get("updated_at")
        if type(updated) is str:
            newest = self.updated.get(pid)
            if newest is not None and _later(newest, updated):
                return  # older than what was seen: arrived late, says nothing new
            self.updated[pid] = updated
        state = _state(record)
        before = self.known.get(pid)
        if before == state:
            return  # identical repeat
        self.known[pid] = state
        running = state[0] == "running"
        was_running = before is not None and before[0] == "running"
        if before is None:
            if running:
                out.extend(process_events(record, True, False))
            elif not (self.in_snapshot_silence()):
                out.extend(process_events(record, True, True))
        elif running and not was_running:
            out.extend(process_events(record, True, False))
        elif not running and before[0] != state[0]:
            out.extend(process_events(record, False, True))

    def in_snapshot_silence(self) -> bool:
        return self.first and not self.history


def _later(a: str, b: str) -> bool:
    """Whether time ``a`` is after time ``b`` (server timestamps; unparsable: no)."""
    ta, tb = parse_time(a), parse_time(b)
    return ta is not None and tb is not None and ta > tb
