"""The real Forge server (``@automagik/forge``): JSON Patch streams under ``/api/...``.

Every stream is translated into the documented event model, so a script sees
the same JSON whichever server it talks to. The server resends each stream from
the start on every connection; decoders skip what they already emitted (by entry
index for logs, by record state for processes, by content for diffs).
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson
from orjson import JSONDecodeError, loads

from ..errors import ConnectError, NotFoundError, ProtocolError, UsageError
from ..events import DiffUpdate, Event, LogEntry, ProcessEvent, RawChunk, deep_json
from ..times import now_iso, parse_time
from ..urls import segment
from .base import Decoder, Dialect, Plan, Route, StreamRequest
from .patch import BadFrame, Frame, load, ops_of, shape, split

if TYPE_CHECKING:
    from ..diagnostics import Diagnostics
    from ..transport import Endpoint

ENTRIES = "/entries/"
_ENTRIES_LEN = len(ENTRIES)
PROCESSES = "/execution_processes"


class _PatchDecoder(Decoder):
    """Shared frame parsing and bad-frame reporting."""

    def __init__(self, diag: Diagnostics) -> None:
        self.diag = diag

    def feed(self, frame: bytes | str) -> Iterable[Event]:
        try:
            obj = load(frame)
        except BadFrame as bad:
            self.diag.bad_frame(bad.kind, bad.detail)
            return ()
        return self.feed_object(obj)

    def feed_object(self, obj: Any) -> Iterable[Event]:
        """The general path, for a frame already parsed."""
        try:
            parsed = shape(obj)
            if parsed.finished:
                self.done = True
                return self.finish()
            return self.apply(parsed)
        except BadFrame as bad:
            self.diag.bad_frame(bad.kind, bad.detail)
            return ()

    def apply(self, frame: Frame) -> list[Event]:
        raise NotImplementedError

    def finish(self) -> list[Event]:
        return []

    def unknown_path(self, op: str, path: str) -> None:
        self.diag.bad_frame("JSON Patch op on an unknown path", f"{op} {path}")


#: An entry index further than this past the next one is not applied: the server
#: numbers entries in order, and a gap costs memory for every index skipped.
MAX_AHEAD = 1_000_000


def _index(rest: str | None) -> int | None:
    """An entry index in decimal ASCII digits (``"²"`` is a digit to str.isdigit)."""
    if rest is None or len(rest) > 15 or not (rest.isascii() and rest.isdigit()):
        return None
    return int(rest)


class _EntriesDecoder(_PatchDecoder):
    """Log streams: ``add /entries/<n>``; history resent from 0 on reconnect."""

    def __init__(self, diag: Diagnostics) -> None:
        super().__init__(diag)
        self.emitted = 0  # entries 0 .. emitted-1 have been emitted
        self.next_path = f"{ENTRIES}0"  # and this is where the next one goes

    def emitted_to(self, count: int) -> None:
        self.emitted = count
        self.next_path = f"{ENTRIES}{count}"

    def feed(self, frame: bytes | str) -> Iterable[Event]:
        # The hot path: the next entry, added whole by a one-op frame, as the
        # server sends logs, live or replayed. next_added() takes it if the entry
        # has its usual shape; anything else (replacements, resends, malformed
        # frames) takes the general path, parsed once.
        try:
            obj = loads(frame)
        except JSONDecodeError:
            return _PatchDecoder.feed(self, frame)  # reports it
        try:
            (op,) = obj["JsonPatch"]
            value = op["value"]
            hot = op["path"] == self.next_path and op["op"] == "add"
        except (LookupError, TypeError, ValueError):
            hot = False
        if hot:
            events = self.next_added(value)
            if events is not None:
                return events
        return self.feed_entry(obj)

    def next_added(self, value: Any) -> tuple[Event, ...] | None:
        """The events for the next entry, added whole, if it has the usual shape;
        otherwise None, having changed nothing (the general path takes it)."""
        return None

    def feed_entry(self, obj: Any) -> Iterable[Event]:
        # One ``add``/``replace`` of a known or the next entry per frame. Anything
        # else takes the general path.
        ops = obj.get("JsonPatch") if type(obj) is dict else None
        if type(ops) is list and len(ops) == 1:
            op = ops[0]
            if type(op) is dict:
                path = op.get("path")
                value = op.get("value")
                name = op.get("op")
                if (
                    (name == "add" or name == "replace")
                    and type(path) is str
                    and path.startswith(ENTRIES)
                    and type(value) is dict
                ):
                    index = _index(path[_ENTRIES_LEN:])
                    if index is not None and index <= self.emitted:
                        out: list[Event] = []
                        self.entry(index, value, name == "replace", out)
                        if index == self.emitted:
                            self.emitted_to(index + 1)
                        return out
        return self.feed_object(obj)

    def apply(self, frame: Frame) -> list[Event]:
        out: list[Event] = []
        for op, path, value in ops_of(frame):
            index = _index(split(path, ENTRIES))
            if index is None or op not in ("add", "replace", "remove"):
                self.unknown_path(op, path)
                continue
            if op == "remove":
                continue
            if type(value) is not dict:
                self.diag.bad_frame("unexpected log entry", f"{path}: not an object")
                continue
            if index > self.emitted + MAX_AHEAD:
                self.diag.bad_frame(
                    "log entry far past the last one", f"{op} {path}: next is {self.emitted}"
                )
                continue
            if index > self.emitted:
                self.diag.warning(
                    f"log entries {self.emitted}..{index - 1} never arrived; output has a gap there"
                )
            self.entry(index, value, op == "replace", out)
            if index >= self.emitted:
                self.emitted_to(index + 1)
        return out

    def entry(self, index: int, value: dict[str, Any], replace: bool, out: list[Event]) -> None:
        raise NotImplementedError


#: The raw entry types, and the stream each names.
_STREAMS = {"STDOUT": "stdout", "STDERR": "stderr"}


class ForgeRawDecoder(_EntriesDecoder):
    """``{"type":"STDOUT"|"STDERR","content":...}`` → the bytes, verbatim."""

    def next_added(self, value: Any) -> tuple[Event, ...] | None:
        try:
            content = value["content"]
            stream = _STREAMS.get(value["type"]) if type(content) is str else None
        except (LookupError, TypeError):
            return None
        if stream is None:
            return None
        self.emitted_to(self.emitted + 1)
        return (RawChunk(content.encode(), stream),)

    def entry(self, index: int, value: dict[str, Any], replace: bool, out: list[Event]) -> None:
        if index < self.emitted:
            return  # already written: raw output is never rewritten
        content = value.get("content")
        if type(content) is not str:
            self.diag.bad_frame("unexpected log entry", f"entry {index}: no text content")
            return
        kind = value.get("type")
        out.append(RawChunk(content.encode(), kind.lower() if type(kind) is str else None))


class ForgeRawAsLogsDecoder(ForgeRawDecoder):
    """Raw output shown as normalized entries (script processes have no normalized
    stream once finished): one entry per line, stderr lines at level ``warn``."""

    def __init__(self, diag: Diagnostics) -> None:
        super().__init__(diag)
        self.partial: dict[str, str] = {}
        self.lines = 0  # lines emitted: each one's metadata.index, as entries have

    next_added = _EntriesDecoder.next_added  # every entry is split into lines by entry()

    def entry(self, index: int, value: dict[str, Any], replace: bool, out: list[Event]) -> None:
        if index < self.emitted:
            return
        content = value.get("content")
        kind = value.get("type")
        if type(content) is not str or type(kind) is not str:
            self.diag.bad_frame("unexpected log entry", f"entry {index}: no text content")
            return
        stream = kind.lower()
        text = self.partial.pop(stream, "") + content
        lines = text.split("\n")
        if lines[-1]:
            self.partial[stream] = lines[-1]
        for line in lines[:-1]:
            out.append(self._line(line, stream))

    def _line(self, line: str, stream: str) -> LogEntry:
        self.lines += 1
        return _raw_line(line, stream, self.lines - 1)

    def finish(self) -> list[Event]:
        out: list[Event] = [self._line(rest, stream) for stream, rest in self.partial.items()]
        self.partial.clear()
        return out

    def settled(self) -> list[Event]:
        return self.finish()


def _raw_line(line: str, stream: str, index: int) -> LogEntry:
    return LogEntry(
        {
            "level": "warn" if stream == "stderr" else "info",
            "message": line,
            "timestamp": None,
            "source": stream,
            "metadata": {"entryType": stream.upper(), "index": index},
        }
    )


#: entry_type.type → (level, source)
_ENTRY_KINDS: dict[str, tuple[str, str]] = {
    "user_message": ("info", "user"),
    "user_feedback": ("info", "user"),
    "assistant_message": ("info", "assistant"),
    "system_message": ("info", "system"),
    "thinking": ("debug", "assistant"),
    "loading": ("debug", "executor"),
    "error_message": ("error", "executor"),
    "next_action": ("info", "executor"),
    "tool_use": ("info", "tool"),
}
_TOOL_LEVELS = {
    "success": "success",
    "failed": "error",
    "denied": "error",
    "timed_out": "error",
    "created": "info",
    "pending_approval": "warn",
}


def normalize_entry(index: int, value: dict[str, Any], revision: int = 0) -> dict[str, Any] | None:
    """A ``NORMALIZED_ENTRY`` as the documented ``{level, message, timestamp, source, metadata}``."""
    content = value.get("content")
    if type(content) is not dict or value.get("type") != "NORMALIZED_ENTRY":
        return None
    entry_type = content.get("entry_type")
    kind = entry_type.get("type") if type(entry_type) is dict else None
    if type(kind) is not str:
        kind = "unknown"
    level, source = _ENTRY_KINDS.get(kind, _DEFAULT_KIND)
    metadata: dict[str, Any] = {"entryType": kind, "index": index, "revision": revision}
    if kind == "tool_use" or kind == "error_message":
        level, source = _detail(kind, entry_type, metadata, level, source)  # type: ignore[arg-type]
    extra = content.get("metadata")
    if extra is not None:
        metadata["details"] = extra
    message = content.get("content")
    timestamp = content.get("timestamp")
    return {
        "level": level,
        "message": message if type(message) is str else "",
        "timestamp": timestamp if type(timestamp) is str else None,
        "source": source,
        "metadata": metadata,
    }


_DEFAULT_KIND = ("info", "executor")
#: The kinds whose level and source follow from the kind alone (no tool or error details).
_PLAIN_KINDS = {
    kind: where for kind, where in _ENTRY_KINDS.items() if kind not in ("tool_use", "error_message")
}


def _detail(
    kind: str, entry_type: dict[str, Any], metadata: dict[str, Any], level: str, source: str
) -> tuple[str, str]:
    """Tool calls and errors: their status, tool and error type in ``metadata``."""
    if kind == "tool_use":
        tool = entry_type.get("tool_name")
        if type(tool) is str:
            metadata["toolName"] = tool
            source = f"tool:{tool}"
        status = entry_type.get("status")
        status_name = status.get("status") if type(status) is dict else status
        if type(status_name) is str:
            metadata["status"] = status_name
            level = _TOOL_LEVELS.get(status_name, level)
        action = entry_type.get("action_type")
        if type(action) is dict and type(action.get("action")) is str:
            metadata["action"] = action["action"]
    else:
        error_type = entry_type.get("error_type")
        if type(error_type) is dict and type(error_type.get("type")) is str:
            metadata["errorType"] = error_type["type"]
    return level, source


def _version_mark(doc: dict[str, Any]) -> int:
    """Identifies one version of a normalized entry, within this process, by what
    changes between versions: its text, level, source (tool) and status (hashing
    them costs a fraction of serializing the server's entry)."""
    meta = doc["metadata"]
    details = meta.get("details")
    mark = hash((doc["message"], doc["level"], doc["source"], meta.get("status")))
    if details is None:
        return mark
    try:
        text = orjson.dumps(details, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # nested deeper than orjson writes
        text = deep_json(details, sort_keys=True)
    return hash((mark, text))


#: Version marks of entries that never arrived, and of entries that were not normalized.
_GAP, _BAD = 0, 1


class ForgeLogsDecoder(_EntriesDecoder):
    """Normalized entries, each printed once it stops changing, or again as a new revision.

    The server rewrites entries in place (``replace /entries/<n>``: streaming
    assistant text, an error message read in two chunks), and a finished process's
    history replays every version, the first ones included. So the newest entry is
    held back until a later entry arrives, the stream ends or goes quiet
    (:attr:`quiet_after`, only with ``follow``: without it the backlog settles
    anyway): versions replaced meanwhile are never printed. A version replacing one
    already printed is printed again, with the same ``metadata.index`` and the next
    ``metadata.revision`` (0 first). A version seen before (the history resent after
    a reconnect) is skipped.
    """

    def __init__(self, diag: Diagnostics, follow: bool = True) -> None:
        super().__init__(diag)
        #: mark of the first version seen of each entry (_GAP, _BAD for none), so
        #: ``len(crcs) == emitted``; later versions' marks in ``more``
        self.crcs = array("q")
        self.more: dict[int, set[int]] = {}
        #: 1 for each entry printed; revisions past 0 in ``revisions`` (memory stays
        #: a byte per entry for the common case, an entry printed once)
        self.printed = bytearray()
        self.revisions: dict[int, int] = {}
        #: the newest entry, normalized, held until it stops changing
        self.pending: tuple[int, dict[str, Any]] | None = None
        self.quiet_after = 0.25 if follow else None

    def next_added(self, value: Any) -> tuple[Event, ...] | None:
        # normalize_entry() and entry() inlined, for an entry of a kind whose level
        # and source follow from the kind alone (most of an agent's output).
        try:
            content = value["content"]
            kind = content["entry_type"]["type"]
            message = content["content"]
            timestamp = content["timestamp"]
            plain = (
                _PLAIN_KINDS.get(kind)
                if value["type"] == "NORMALIZED_ENTRY"
                and content.get("metadata") is None
                and type(message) is str
                and (timestamp is None or type(timestamp) is str)
                else None
            )
        except (LookupError, TypeError):
            return None
        if plain is None:
            return None
        level, source = plain
        crcs = self.crcs
        index = self.emitted
        if len(crcs) != index:
            return None
        crcs.append(hash((message, level, source, None)))  # _version_mark(doc)
        self.emitted_to(index + 1)
        pending = self.pending
        self.pending = (
            index,
            {
                "level": level,
                "message": message,
                "timestamp": timestamp,
                "source": source,
                "metadata": {"entryType": kind, "index": index, "revision": 0},
            },
        )
        if pending is None:
            return ()
        printed = self.printed
        if pending[0] == len(printed):  # the usual order: printed once, in turn
            printed.append(1)
            return (LogEntry(pending[1]),)
        return (self._release(pending),)

    def entry(self, index: int, value: dict[str, Any], replace: bool, out: list[Event]) -> None:
        doc = normalize_entry(index, value)
        mark = _BAD if doc is None else _version_mark(doc)
        crcs = self.crcs
        if index >= len(crcs):  # a new entry
            while len(crcs) < index:
                crcs.append(_GAP)
            crcs.append(mark)
        elif doc is None:
            if crcs[index] == _BAD:
                return  # reported when it first came: this is a resend
        elif not self._new_version(index, mark):
            return  # a version already seen: resent after a reconnect
        if doc is None:
            self.diag.bad_frame("unexpected log entry", f"entry {index}: not a NORMALIZED_ENTRY")
            return
        pending = self.pending
        if pending is not None and pending[0] != index:
            out.append(self._release(pending))
        self.pending = (index, doc)

    def _new_version(self, index: int, mark: int) -> bool:
        if self.crcs[index] == mark:
            return False
        seen = self.more.setdefault(index, set())
        if mark in seen:
            return False
        seen.add(mark)
        return True

    def _release(self, held: tuple[int, dict[str, Any]]) -> LogEntry:
        """A held entry, to print: revision 0 the first time, the next one after."""
        index, doc = held
        printed = self.printed
        if index < len(printed) and printed[index]:
            revision = self.revisions[index] = self.revisions.get(index, 0) + 1
            doc["metadata"]["revision"] = revision
        else:
            if index >= len(printed):
                printed.extend(bytes(index + 1 - len(printed)))
            printed[index] = 1
        return LogEntry(doc)

    def quiet(self) -> list[Event]:
        pending = self.pending
        if pending is None:
            return []
        self.pending = None
        return [self._release(pending)]

    def finish(self) -> list[Event]:
        return self.quiet()


# -- processes -------------------------------------------------------------------


def _executor(record: dict[str, Any]) -> str | None:
    action = record.get("executor_action")
    typ = action.get("typ") if type(action) is dict else None
    if type(typ) is not dict:
        return None
    profile = typ.get("executor_profile_id")
    if type(profile) is dict and type(profile.get("executor")) is str:
        return str(profile["executor"])
    for key in ("context", "type"):
        if type(typ.get(key)) is str:
            return str(typ[key])
    return None


def _state(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record.get("status"), record.get("exit_code"), record.get("completed_at"))


def process_events(record: dict[str, Any], started: bool, ended: bool) -> list[Event]:
    """The documented events for a record: started and/or its terminal event."""
    pid = record.get("id")
    base = {"processId": pid, "taskAttemptId": record.get("task_attempt_id")}
    reason = record.get("run_reason")
    out: list[Event] = []
    if started:
        out.append(
            ProcessEvent(
                {
                    "type": "process_started",
                    **base,
                    "executor": _executor(record),
                    "startedAt": record.get("started_at"),
                    "runReason": reason,
                }
            )
        )
    if not ended:
        return out
    status = record.get("status")
    exit_code = record.get("exit_code")
    done_at = record.get("completed_at") or record.get("updated_at")
    if status == "completed":
        begin, end = parse_time(record.get("started_at")), parse_time(done_at)
        duration = round((end - begin).total_seconds() * 1000) if begin and end else None
        out.append(
            ProcessEvent(
                {
                    "type": "process_completed",
                    **base,
                    "completedAt": done_at,
                    "duration": duration,
                    "exitCode": exit_code,
                    "runReason": reason,
                }
            )
        )
    elif status == "failed":
        code = f"exit code {exit_code}" if exit_code is not None else "no exit code"
        out.append(
            ProcessEvent(
                {
                    "type": "process_failed",
                    **base,
                    "failedAt": done_at,
                    "error": {
                        "code": "EXECUTION_ERROR",
                        "message": f"{reason or 'process'} failed ({code})",
                    },
                    "exitCode": exit_code,
                    "runReason": reason,
                }
            )
        )
    elif status == "killed":
        out.append(
            ProcessEvent(
                {
                    "type": "process_stopped",
                    **base,
                    "stoppedAt": done_at,
                    "reason": "killed",
                    "exitCode": exit_code,
                    "runReason": reason,
                }
            )
        )
    return out


class ForgeMonitorDecoder(_PatchDecoder):
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


# -- diffs -----------------------------------------------------------------------


def _fix_counts(content: dict[str, Any]) -> dict[str, Any]:
    """The server's counts (sent when contents are omitted) give an added file one
    deletion and, alike, a deleted file one addition; neither has any."""
    change = content.get("change")
    if change == "added" and content.get("deletions"):
        return {**content, "deletions": 0}
    if change == "deleted" and content.get("additions"):
        return {**content, "additions": 0}
    return content


class ForgeDiffDecoder(_PatchDecoder):
    """Keeps the attempt's file map and emits a ``diff_update`` per settled burst.

    The live diff stream has no end-of-snapshot marker: a burst ends when the stream
    has been quiet for ``quiet_after`` seconds (the initial one can take seconds,
    while the server runs git). Only files whose entry changed are re-diffed.
    """

    def __init__(self, diag: Diagnostics, attempt: str, follow: bool) -> None:
        super().__init__(diag)
        from ..diffing import DiffState

        self.attempt = attempt
        self.follow = follow
        self.state = DiffState()
        self.changed = True  # the first settle always prints, even an empty diff
        self.unseen: set[str] = set()
        self.quiet_after = 0.3

    def connected(self) -> None:
        self.unseen = set(self.state.paths())

    def apply(self, frame: Frame) -> list[Event]:
        for op, path, value in ops_of(frame):
            name = split(path, ENTRIES)
            if name is None or not name:
                self.unknown_path(op, path)
                continue
            self.unseen.discard(name)
            if op == "remove":
                if self.state.remove(name):
                    self.changed = True
                continue
            if op not in ("add", "replace"):
                self.unknown_path(op, path)
                continue
            content = value.get("content") if type(value) is dict else None
            if type(content) is not dict:
                self.diag.bad_frame("unexpected diff entry", f"{path}: no content")
                continue
            if self.state.set(name, _fix_counts(content)):
                self.changed = True
        return []

    def quiet(self) -> list[Event]:
        for name in self.unseen:  # gone while we were disconnected
            if self.state.remove(name):
                self.changed = True
        self.unseen = set()
        if not self.changed:
            return []
        self.changed = False
        state = self.state
        return [
            DiffUpdate(
                {
                    "type": "diff_update",
                    "attemptId": self.attempt,
                    "diff": state.text(),
                    "filesChanged": state.files_changed,
                    "insertions": state.insertions,
                    "deletions": state.deletions,
                    "timestamp": now_iso(),
                }
            )
        ]

    def finish(self) -> list[Event]:
        return self.quiet()


def _no_normalized(process: str | None, reason: Any) -> str:
    return (
        f"process {process} ({reason or 'unknown kind'}) has no normalized log stream; "
        "showing its raw output as log entries"
    )


#: Run reasons of processes that run a script, not an agent: no normalized logs.
_SCRIPT_REASONS = frozenset({"setupscript", "cleanupscript", "devserver"})


class ForgeDialect(Dialect):
    name = "forge"
    #: Known to be the real server (auto-detection asked it); with --api forge a
    #: 404 makes us ask, so another server's 404 is not taken for "not found".
    verified = False

    async def _verify(self, endpoint: Endpoint, error: Exception) -> None:
        from .detect import probe_forge

        try:
            is_forge, said = await probe_forge(endpoint)
        except ConnectError:
            return
        if not is_forge:
            raise ProtocolError(
                f"{endpoint.server.url} is not the real Forge server (its route answered: "
                f"{error}; GET /api/health answered {said}); try --api documented or auto"
            )
        self.verified = True

    async def plan(self, request: StreamRequest, endpoint: Endpoint, diag: Diagnostics) -> Plan:
        target = segment(request.target or "")
        decoder: Decoder
        if request.kind == "raw":
            route = Route(f"/api/execution-processes/{target}/raw-logs/ws")
            decoder = ForgeRawDecoder(diag)
        elif request.kind == "logs":
            reason = await self._script_reason(endpoint, request.target or "")
            if reason is not None:  # its normalized stream stays empty while it runs
                diag.note(_no_normalized(request.target, reason))
                route = Route(f"/api/execution-processes/{target}/raw-logs/ws")
                decoder = ForgeRawAsLogsDecoder(diag)
            else:
                route = Route(f"/api/execution-processes/{target}/normalized-logs/ws")
                decoder = ForgeLogsDecoder(diag, request.follow)
        elif request.kind == "diff":
            query = {"stats_only": "true"} if request.stats_only else {}
            route = Route(f"/api/task-attempts/{target}/diff/ws", query)
            decoder = ForgeDiffDecoder(diag, request.target or "", request.follow)
        elif attempt := await self._monitor_attempt(request, endpoint):
            route = Route("/api/execution-processes/stream/ws", {"task_attempt_id": attempt})
            decoder = ForgeMonitorDecoder(diag, history=request.history, sse=False, attempt=attempt)
        else:
            route = Route("/api/events", sse=True)
            decoder = ForgeMonitorDecoder(diag, history=request.history, sse=True, attempt=None)
        return Plan(route, decoder, request.what)

    async def _monitor_attempt(self, request: StreamRequest, endpoint: Endpoint) -> str | None:
        """The attempt whose process stream to follow: --attempt, else the one attempt
        of the --process ids (each checked, so an unknown one is exit 5 rather than a
        wait for events that never come), else None: the server-wide event stream."""
        if request.target:
            await self._check_attempt(endpoint, request.target)
            return request.target
        attempts = {await self._attempt_of(endpoint, pid) for pid in request.processes}
        return attempts.pop() if len(attempts) == 1 else None

    async def _attempt_of(self, endpoint: Endpoint, process: str) -> str | None:
        record = await self._record(endpoint, "process", process)
        attempt = record.get("task_attempt_id") if record else None
        return attempt if isinstance(attempt, str) else None

    async def _script_reason(self, endpoint: Endpoint, process: str) -> str | None:
        """The run reason of a script process (setup, cleanup, dev server), else None.

        Only coding agents have normalized logs: a script's normalized stream sends
        nothing while it runs and 404 once it has finished. Anything this GET cannot
        tell (another server, an unknown id) is left to the stream to say."""
        record = await self._record(endpoint, "process", process, strict=False)
        reason = record.get("run_reason") if record else None
        return reason if reason in _SCRIPT_REASONS else None

    async def _check_attempt(self, endpoint: Endpoint, attempt: str) -> None:
        """The process stream answers an unknown attempt with an empty map: ask REST."""
        await self._record(endpoint, "attempt", attempt)

    async def _record(
        self, endpoint: Endpoint, kind: str, ident: str, *, strict: bool = True
    ) -> dict[str, Any] | None:
        """The REST record of a process or an attempt, or None if the GET cannot tell.
        ``strict``: an id the server does not know is NotFoundError (404), one it
        cannot parse UsageError (400)."""
        from ..rest import get

        plural = "execution-processes" if kind == "process" else "task-attempts"
        try:
            status, _, body = await get(endpoint, f"/api/{plural}/{segment(ident)}")
        except ConnectError:
            if strict:
                raise
            return None
        if strict and status == 404:
            missing = NotFoundError(f"{kind} {ident} not found")
            if not self.verified:
                await self._verify(endpoint, missing)
            raise missing
        if strict and status == 400:
            article = "an" if kind == "attempt" else "a"
            raise UsageError(
                f"{kind} {ident}: the server rejected it (HTTP 400: not {article} {kind} id)"
            )
        try:
            data = orjson.loads(body).get("data") if status == 200 else None
        except (JSONDecodeError, AttributeError):
            return None
        return data if isinstance(data, dict) else None

    async def fallback(
        self,
        request: StreamRequest,
        plan: Plan,
        error: Exception,
        endpoint: Endpoint,
        diag: Diagnostics,
    ) -> Plan | None:
        if isinstance(error, NotFoundError) and not self.verified:
            await self._verify(endpoint, error)
        if not isinstance(error, NotFoundError) or request.kind != "logs":
            return None
        if not isinstance(plan.decoder, ForgeLogsDecoder):
            return None
        from ..rest import get_data

        try:
            record = await get_data(
                endpoint,
                f"/api/execution-processes/{segment(request.target or '')}",
                what=f"process {request.target}",
            )
        except NotFoundError:
            raise NotFoundError(f"process {request.target} not found") from None
        reason = record.get("run_reason") if isinstance(record, dict) else None
        diag.note(_no_normalized(request.target, reason))
        return Plan(
            Route(f"/api/execution-processes/{segment(request.target or '')}/raw-logs/ws"),
            ForgeRawAsLogsDecoder(diag),
            plan.what,
        )
