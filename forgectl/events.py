"""The event model: what every dialect produces and every renderer consumes.

Each event wraps the JSON object of the documented API (the spec's shapes), so
``to_dict()`` is exactly the line the CLI prints in JSON mode. Attribute access
uses snake_case names for the spec's camelCase keys (``event.process_id``).
"""

from __future__ import annotations

from typing import Any, ClassVar

LEVELS = ("debug", "info", "warn", "error", "success")
#: Rank for --level filtering; "success" sits with "info" (it is not more severe).
LEVEL_RANK = {"debug": 10, "info": 20, "success": 20, "warn": 30, "error": 40}

PROCESS_EVENT_TYPES = (
    "process_started",
    "process_progress",
    "process_completed",
    "process_failed",
    "process_stopped",
)


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


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class Event:
    """A server message in the documented shape, with attribute access."""

    __slots__ = ("data",)
    kind: ClassVar[str] = "event"

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON object, as the CLI prints it."""
        return self.data

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def __getattr__(self, name: str) -> Any:
        data = object.__getattribute__(self, "data")
        if name in data:
            return data[name]
        camel = _camel(name)
        if camel in data:
            return data[camel]
        if name.startswith("_"):
            raise AttributeError(name)
        return None

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


class ProcessEvent(Event):
    """A lifecycle event of an execution process (``type`` = ``process_*``)."""

    __slots__ = ()
    kind = "process"

    @property
    def type(self) -> str:
        value = self.data.get("type")
        return value if isinstance(value, str) else ""

    @property
    def process_id(self) -> str | None:
        value = self.data.get("processId")
        return value if isinstance(value, str) else None

    @property
    def task_attempt_id(self) -> str | None:
        value = self.data.get("taskAttemptId")
        return value if isinstance(value, str) else None

    @property
    def executor(self) -> str | None:
        value = self.data.get("executor")
        return value if isinstance(value, str) else None

    @property
    def exit_code(self) -> int | None:
        value = self.data.get("exitCode")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def is_terminal(self) -> bool:
        return self.type in ("process_completed", "process_failed", "process_stopped")


class DiffUpdate(Event):
    """``{type: diff_update, attemptId, diff, filesChanged, insertions, deletions, timestamp}``."""

    __slots__ = ()
    kind = "diff"

    @property
    def attempt_id(self) -> str | None:
        value = self.data.get("attemptId")
        return value if isinstance(value, str) else None

    @property
    def diff(self) -> str:
        value = self.data.get("diff")
        return value if isinstance(value, str) else ""

    @property
    def files_changed(self) -> int:
        value = self.data.get("filesChanged")
        return value if isinstance(value, int) else 0

    @property
    def insertions(self) -> int:
        value = self.data.get("insertions")
        return value if isinstance(value, int) else 0

    @property
    def deletions(self) -> int:
        value = self.data.get("deletions")
        return value if isinstance(value, int) else 0

    @property
    def timestamp(self) -> str | None:
        value = self.data.get("timestamp")
        return value if isinstance(value, str) else None


class RawChunk(Event):
    """A piece of raw process output, kept as the exact bytes the process wrote.

    ``to_dict()`` gives ``{"stream": "stdout"|"stderr"|null, "content": text}``
    (the JSON form of ``logs --raw --json``).
    """

    __slots__ = ("raw", "stream")
    kind = "raw"

    def __init__(self, raw: bytes, stream: str | None = None) -> None:
        # No dict per chunk: raw output is the hot path of ``logs --raw``.
        self.raw = raw
        self.stream = stream

    @property  # a view here, not stored: no dict per chunk
    def data(self) -> dict[str, Any]:  # type: ignore[override]
        return self.to_dict()

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")

    def to_dict(self) -> dict[str, Any]:
        return {"stream": self.stream, "content": self.text}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawChunk) and other.raw == self.raw and other.stream == self.stream

    __hash__ = Event.__hash__

    def __repr__(self) -> str:
        return f"RawChunk({self.raw!r}, stream={self.stream!r})"


class Marker(Event):
    """Not data: a signal from the stream driver (never rendered)."""

    __slots__ = ()
    kind = "marker"


#: The history (backlog) the server sent on connecting has been delivered.
BACKLOG_END = Marker({"marker": "backlog_end"})
