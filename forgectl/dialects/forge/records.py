"""An attempt's process stream as records: what runs, what ended, what comes next.

``/api/execution-processes/stream/ws?task_attempt_id=`` starts with the whole map
of the attempt's processes (one ``replace /execution_processes``), then sends each
record again whenever it changes. This decoder yields a
:class:`~forgectl.events.ProcessRecord` for each record whose state is new, and
:data:`~forgectl.events.BACKLOG_END` after each snapshot: ``logs --attempt -f``
learns from it which processes to follow and when the attempt is idle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...events import BACKLOG_END, Event
from ..patch import ops_of, split
from .base import PROCESSES, PatchDecoder
from .processes import _later
from .schema import _state, process_record

if TYPE_CHECKING:
    from ...diagnostics import Diagnostics
    from ..patch import Frame


class ForgeRecordsDecoder(PatchDecoder):
    """Execution-process records of one attempt, each time its state changes.

    Every connection starts with a snapshot, so after a reconnect only the
    records that changed meanwhile are yielded again; a record older (by
    ``updated_at``) than one already seen changes nothing.
    """

    #: The first frame of each connection is its snapshot: the history.
    knows_history = True

    def __init__(self, diag: Diagnostics, attempt: str) -> None:
        super().__init__(diag)
        self.attempt = attempt
        self.known: dict[str, tuple[Any, ...]] = {}
        self.updated: dict[str, str] = {}

    def apply(self, frame: Frame) -> list[Event]:
        out: list[Event] = []
        for op, path, value in ops_of(frame):
            if path == PROCESSES and op in ("add", "replace"):
                if type(value) is not dict:
                    self.diag.bad_frame("unexpected process snapshot", "not an object")
                    continue
                for record in value.values():
                    self.record(record, out)
                out.append(BACKLOG_END)
                continue
            pid = split(path, PROCESSES + "/")
            if pid is None or "/" in pid:
                self.unknown_path(op, path)
            elif op in ("add", "replace"):
                self.record(value, out)
            elif op != "remove":  # removals (of other attempts' ids, too) end nothing
                self.unknown_path(op, path)
        return out

    def record(self, record: Any, out: list[Event]) -> None:
        if type(record) is not dict or type(record.get("id")) is not str:
            self.diag.bad_frame("unexpected process record", "no id")
            return
        if record.get("task_attempt_id") != self.attempt:
            return
        pid = record["id"]
        updated = record.get("updated_at")
        if type(updated) is str:
            newest = self.updated.get(pid)
            if newest is not None and _later(newest, updated):
                return
            self.updated[pid] = updated
        state = (*_state(record), record.get("started_at"))
        if self.known.get(pid) == state:
            return
        self.known[pid] = state
        out.append(process_record(record))
