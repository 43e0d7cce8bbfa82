"""The event model: what every dialect produces and every renderer consumes.

Each event wraps the JSON object of the documented API (the spec's shapes), so
``to_dict()`` is exactly the line the CLI prints in JSON mode. Every documented
field is a typed property named in snake_case for the spec's camelCase key
(``event.process_id`` for ``processId``); a field the server sent that the spec
does not name is read with ``event.get("key")``. A misspelt name
(``log.mesage``) fails under mypy and raises AttributeError.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .diffing import FileDiff

LEVELS = ("debug", "info", "warn", "error", "success")
#: Other names people type for a level (``--level warning``).
LEVEL_ALIASES = {"warning": "warn"}
#: Rank for --level filtering; "success" sits with "info" (it is not more severe).
LEVEL_RANK = {"debug": 10, "info": 20, "success": 20, "warn": 30, "error": 40}

PROCESS_EVENT_TYPES = (
    "process_started",
    "process_progress",
    "process_completed",
    "process_failed",
    "process_stopped",
)
#: A process's status in a :class:`ProcessRecord` (the real server's words; the
#: documented API's process_stopped counts as ``killed``).
PROCESS_STATUSES = ("running", "completed", "failed", "killed")
#: Why the real server ran a process (``runReason``).
RUN_REASONS = ("setupscript", "codingagent", "cleanupscript", "devserver")


def deep_json(obj: Any, *, sort_keys: bool = False) -> bytes:
    """JSON for a value nested deeper than orjson writes (254 levels; it reads 1024),
    as orjson would write it: compact, UTF-8, one line."""
    import json
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 5000))
    try:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    finally:
        sys.setrecursionlimit(limit)
    return text.encode()


def json_line(data: dict[str, Any]) -> bytes:
    """The line JSON mode prints for an event's object: compact, UTF-8, a newline.
    One definition for the renderer and for a decoder writing lines itself
    (:class:`Encoded`). orjson is imported here, not with this module: ``--help``
    and ``--version`` read the event model and print no JSON."""
    from orjson import OPT_APPEND_NEWLINE, dumps

    try:
        return dumps(data, option=OPT_APPEND_NEWLINE)
    except TypeError:  # nested deeper than orjson writes: the server's object still prints
        return deep_json(data) + b"\n"


def _str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(data: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    return value if isinstance(value, dict) else None


class Event:
    """A server message in the documented shape; its fields are typed properties."""

    __slots__ = ("data",)
    kind: ClassVar[str] = "event"

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON object, as the CLI prints it."""
        return self.data

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.data == self.data

    def __hash__(self) -> int:  # events are mutable views: identity hash
        return id(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.data!r})"


class LogEntry(Event):
    """A normalized log line: ``{level, message, timestamp, source, metadata}``."""

    __slots__ = ()
    kind = "log"

    @property
    def level(self) -> str:
        level = self.data.get("level")
        return level if isinstance(level, str) else "info"

    @property
    def message(self) -> str:
        message = self.data.get("message")
        return message if isinstance(message, str) else ""

    @property
    def timestamp(self) -> str | None:
        value = self.data.get("timestamp")
        return value if isinstance(value, str) else None

    @property
    def source(self) -> str | None:
        value = self.data.get("source")
        return value if isinstance(value, str) else None

    @property
    def metadata(self) -> dict[str, Any] | None:
        value = self.data.get("metadata")
        return value if isinstance(value, dict) else None

    @property
    def process_id(self) -> str | None:
        """The process the entry is from, in an attempt's logs (``processId``)."""
        return _str(self.data, "processId")


class ProcessEvent(Event):
    """A lifecycle event of an execution process (``type`` = ``process_*``).

    ``process_id`` is on every event; ``task_attempt_id`` and ``executor`` are
    documented on ``process_started`` (the real server's events carry them on
    every type, with ``run_reason``). The others belong to one type each.
    """

    __slots__ = ()
    kind = "process"

    @property
    def type(self) -> str:
        return _str(self.data, "type") or ""

    @property
    def process_id(self) -> str | None:
        return _str(self.data, "processId")

    @property
    def task_attempt_id(self) -> str | None:
        return _str(self.data, "taskAttemptId")

    @property
    def executor(self) -> str | None:
        return _str(self.data, "executor")

    @property
    def run_reason(self) -> str | None:
        """The real server's kind of process: setupscript, codingagent, devserver..."""
        return _str(self.data, "runReason")

    @property
    def started_at(self) -> str | None:
        return _str(self.data, "startedAt")

    @property
    def progress(self) -> dict[str, Any] | None:
        """``process_progress``: ``{percentage, stage, message, estimatedRemaining}``."""
        return _dict(self.data, "progress")

    @property
    def completed_at(self) -> str | None:
        return _str(self.data, "completedAt")

    @property
    def duration(self) -> int | None:
        """``process_completed``: milliseconds."""
        return _int(self.data, "duration")

    @property
    def exit_code(self) -> int | None:
        return _int(self.data, "exitCode")

    @property
    def stats(self) -> dict[str, Any] | None:
        """``process_completed``: ``{filesChanged, linesAdded, linesRemoved}``."""
        return _dict(self.data, "stats")

    @property
    def failed_at(self) -> str | None:
        return _str(self.data, "failedAt")

    @property
    def error(self) -> dict[str, Any] | None:
        """``process_failed``: ``{code, message, details}``."""
        return _dict(self.data, "error")

    @property
    def stopped_at(self) -> str | None:
        return _str(self.data, "stoppedAt")

    @property
    def stopped_by(self) -> str | None:
        return _str(self.data, "stoppedBy")

    @property
    def reason(self) -> str | None:
        """``process_stopped``: why (the real server says ``killed``)."""
        return _str(self.data, "reason")

    @property
    def is_terminal(self) -> bool:
        return self.type in ("process_completed", "process_failed", "process_stopped")


class DiffUpdate(Event):
    """``{type: diff_update, attemptId, diff, filesChanged, insertions, deletions, timestamp}``.

    :attr:`files` is the diff cut per file (:class:`~forgectl.diffing.FileDiff`:
    path, text, counts), in path order. The real server's decoder hands the files
    over and the ``diff`` text is joined from them only when asked for (JSON output
    asks; ``--stat`` does not), and says which files changed since its previous
    update (:attr:`changes`, :attr:`removed`); from the documented API, ``diff`` is
    the server's and :attr:`files` is read from it on first use.
    """

    __slots__ = ("_data", "_files", "_owed", "changes", "removed")
    kind = "diff"

    def __init__(
        self,
        data: dict[str, Any],
        *,
        files: tuple[FileDiff, ...] | None = None,
        changes: tuple[FileDiff, ...] | None = None,
        removed: tuple[str, ...] | None = None,
    ) -> None:
        self._data = data
        self._files = files
        #: the diff text is still to be joined from the files
        self._owed = files is not None and data.get("diff") is None
        #: the files new or changed since the stream's previous update (None: not known)
        self.changes = changes
        #: the paths no longer in the diff since the previous update (None: not known)
        self.removed = removed

    @property  # the diff text joined on first use
    def data(self) -> dict[str, Any]:  # type: ignore[override]
        data = self._data
        if self._owed:
            self._owed = False
            data["diff"] = "".join(f.text for f in self._files or ())
        return data

    @property
    def files(self) -> tuple[FileDiff, ...]:
        if self._files is None:
            from .diffing import parse_diff

            self._files = tuple(parse_diff(self.diff))
        return self._files

    @property
    def type(self) -> str:
        return _str(self._data, "type") or "diff_update"

    @property
    def attempt_id(self) -> str | None:
        return _str(self._data, "attemptId")

    @property
    def diff(self) -> str:
        return _str(self.data, "diff") or ""

    @property
    def files_changed(self) -> int:
        return _int(self._data, "filesChanged") or 0

    @property
    def insertions(self) -> int:
        return _int(self._data, "insertions") or 0

    @property
    def deletions(self) -> int:
        return _int(self._data, "deletions") or 0

    @property
    def timestamp(self) -> str | None:
        return _str(self._data, "timestamp")

    def __repr__(self) -> str:
        return f"DiffUpdate({self.data!r})"


class ProcessRecord(Event):
    """One execution process as it stands: what ``ps`` prints, one per line.

    ``{processId, taskAttemptId, runReason, executor, status, exitCode, startedAt,
    completedAt}``, the documented API's names; ``status`` is one of
    :data:`PROCESS_STATUSES`. :attr:`chained` (not in the JSON) says the server
    was told to start another process once this one completes (the real server's
    ``next_action``: a setup script's coding agent, an agent's cleanup script).
    """

    __slots__ = ("chained",)
    kind = "record"

    def __init__(self, data: dict[str, Any], chained: bool = False) -> None:
        self.data = data
        self.chained = chained

    @property
    def process_id(self) -> str:
        return _str(self.data, "processId") or ""

    @property
    def task_attempt_id(self) -> str | None:
        return _str(self.data, "taskAttemptId")

    @property
    def run_reason(self) -> str | None:
        return _str(self.data, "runReason")

    @property
    def executor(self) -> str | None:
        return _str(self.data, "executor")

    @property
    def status(self) -> str:
        return _str(self.data, "status") or "running"

    @property
    def exit_code(self) -> int | None:
        return _int(self.data, "exitCode")

    @property
    def started_at(self) -> str | None:
        return _str(self.data, "startedAt")

    @property
    def completed_at(self) -> str | None:
        return _str(self.data, "completedAt")

    @property
    def running(self) -> bool:
        return self.status == "running"


class RawChunk(Event):
    """A piece of raw process output, kept as the exact bytes the process wrote.

    ``to_dict()`` gives ``{"stream": "stdout"|"stderr"|null, "content": text}``
    (the JSON form of ``logs --raw --json``).
    """

    __slots__ = ("raw", "stream")
    kind = "raw"
    #: The process it is from, in an attempt's logs (:class:`ProcessChunk`).
    process_id: str | None = None

    def __init__(self, raw: bytes, stream: str | None = None) -> None:
        # No dict per chunk: raw output is the hot path of ``logs --raw``.
        self.raw = raw
        self.stream = stream

    @property  # a view here, not stored: no dict per chunk
    def data(self) -> dict[str, Any]:  # type: ignore[override]
        return self.to_dict()

    @property
    def text(self) -> str:
        """The chunk as text (bytes that are not UTF-8 replaced); ``str(chunk)`` too."""
        return self.raw.decode("utf-8", "replace")

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return {"stream": self.stream, "content": self.text}

    def part(self, raw: bytes) -> RawChunk:
        """A chunk like this one (stream, process) holding ``raw``, a part of it."""
        return RawChunk(raw, self.stream)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawChunk) and other.raw == self.raw and other.stream == self.stream

    __hash__ = Event.__hash__

    def __repr__(self) -> str:
        return f"RawChunk({self.raw!r}, stream={self.stream!r})"


class ProcessChunk(RawChunk):
    """Raw output of one of an attempt's processes: ``to_dict()`` adds ``processId``."""

    __slots__ = ("process_id",)

    def __init__(self, raw: bytes, stream: str | None, process_id: str) -> None:
        self.raw = raw
        self.stream = stream
        self.process_id = process_id

    def to_dict(self) -> dict[str, Any]:
        return {"stream": self.stream, "content": self.text, "processId": self.process_id}

    def part(self, raw: bytes) -> ProcessChunk:
        return ProcessChunk(raw, self.stream, self.process_id or "")

    def __repr__(self) -> str:
        return f"ProcessChunk({self.raw!r}, stream={self.stream!r}, process_id={self.process_id!r})"


class Encoded(Event):
    """Log entries already in the form JSON mode prints: ``lines``, the JSON lines of
    ``count`` entries (each as :func:`json_line` writes it), in order.

    Not part of the event model a consumer iterates: a decoder delivers these only
    to a consumer that asked for them (``Stream.pump(..., fused="json")``, the CLI's
    JSON renderer with no filter), where nothing between the frame and stdout needs
    the entries as objects. The frame goes from the parser to the line at once.
    """

    __slots__ = ("count", "lines")
    kind = "encoded"

    def __init__(self, lines: bytes, count: int) -> None:
        self.lines = lines
        self.count = count

    @property  # not stored: no dict per run of lines
    def data(self) -> dict[str, Any]:  # type: ignore[override]
        return {"count": self.count, "size": len(self.lines)}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Encoded) and other.lines == self.lines

    __hash__ = Event.__hash__

    def __repr__(self) -> str:
        return f"Encoded({self.count} lines, {len(self.lines)} bytes)"


class Marker(Event):
    """Not data: a signal from the stream driver (never rendered)."""

    __slots__ = ()
    kind = "marker"


#: The history (backlog) the server sent on connecting has been delivered.
BACKLOG_END = Marker({"marker": "backlog_end"})
