"""The process stream: execution-process records as lifecycle events."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ...events import Event
from ..patch import ops_of, split
from .base import PROCESSES, PatchDecoder
from .schema import _state, process_events

if TYPE_CHECKING:
    from ...diagnostics import Diagnostics
    from ..patch import Frame


class ForgeMonitorDecoder(PatchDecoder):
    """Execution-process records → process_started / _completed / _failed / _stopped.

    The initial snapshot (the first frame of the attempt stream, or everything the
    SSE stream replays before it goes quiet) reports processes that are running as
    ``process_started``; processes that already ended stay silent unless
    ``history`` is set. After a reconnect the snapshot is compared with what was
    seen, so only what changed meanwhile is reported.
    """

    def __init__(self, diag: Diagnostics, *, history: bool, sse: bool, attempt: str | None) -> None:
        super().__init__(diag)
        self.history = history
        self.sse = sse
        self.attempt = attempt
        self.known: dict[str, tuple[Any, ...]] = {}
        self.first = True
        self.in_snapshot = False
        self.pending: dict[str, dict[str, Any]] = {}
        self.opened = 0.0
        self.fed = False
        if sse:
            self.quiet_after = 1.0

    def connected(self) -> None:
        self.in_snapshot = True
        self.pending = {}
        self.opened = time.monotonic()
        self.fed = False

    def apply(self, frame: Frame) -> list[Event]:
        out: list[Event] = []
        if self.sse and not self.fed:
            self.fed = True
            # The replay is written as soon as the stream opens; a first frame that
            # comes later is live: the replay was empty (a fresh server).
            if time.monotonic() - self.opened > (self.quiet_after or 0):
                self.end_snapshot(out)
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

    def transition(self, record: dict[str, Any], out: list[Event]) -> None:
        pid = record["id"]
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

    def quiet(self) -> list[Event]:
        out: list[Event] = []
        self.end_snapshot(out)
        return out
