"""Filters between the events and the renderer: the same for JSON and pretty output,
and for both dialects (they see only documented events)."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import ClassVar

from .errors import InvalidValue, UsageError
from .events import LEVEL_ALIASES, LEVEL_RANK, LEVELS, Event, LogEntry, ProcessEvent, RawChunk
from .times import parse_time

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``10m``, ``90s``, ``2h``, ``1d`` ago, or an ISO 8601 time (UTC when no zone)."""
    value = text.strip()
    match = _DURATION.match(value)
    now = now or datetime.now(UTC)
    if match:
        try:
            return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
        except OverflowError:  # before year 1
            raise InvalidValue("since", text, "too far back") from None
    parsed = parse_time(value)
    if parsed is None:
        raise InvalidValue("since", text, "use a duration (30s, 10m, 2h, 1d) or an ISO time")
    return parsed


def parse_levels(values: Iterable[str]) -> tuple[int | None, frozenset[str] | None]:
    """``--level warn`` is a minimum; ``--level warn,success`` (or repeated) is a set.
    ``warning`` is ``warn``."""
    names: list[str] = []
    for value in values:
        if not value.strip(" ,"):
            raise InvalidValue(
                "level", value, f"it names no level; choose from {', '.join(LEVELS)}"
            )
        for part in value.split(","):
            name = part.strip().lower()
            if name:
                names.append(LEVEL_ALIASES.get(name, name))
    for name in names:
        if name not in LEVELS:
            raise InvalidValue("level", name, f"unknown level; choose from {', '.join(LEVELS)}")
    if not names:
        return None, None
    if len(names) == 1:
        return LEVEL_RANK[names[0]], None
    return None, frozenset(names)


NO_SERVER_TIMES = (
    "--since needs the server's timestamps, and this stream's log entries have none "
    "(the real Forge server sends none): use --tail N instead"
)


@dataclass
class LogFilter:
    """``--level``, ``--source``, ``--grep`` and ``--since`` for log entries.

    ``--since`` compares the server's timestamps. An entry without one inherits the
    last one seen; an entry without one before any has been seen cannot be judged,
    and ends the stream with a usage error (the real server 0.7.4 sends
    ``timestamp: null`` for every entry: filtering would silently keep everything).
    """

    min_rank: int | None = None
    levels: frozenset[str] | None = None
    sources: tuple[str, ...] = ()
    grep: re.Pattern[str] | None = None
    since: datetime | None = None
    _last_time: datetime | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return bool(
            self.min_rank is not None or self.levels or self.sources or self.grep or self.since
        )

    def __call__(self, event: Event) -> bool:
        if not isinstance(event, LogEntry):
            return True
        if self.since is not None:
            moment = parse_time(event.data.get("timestamp"))
            if moment is not None:
                self._last_time = moment
            else:
                moment = self._last_time
            if moment is None:
                raise UsageError(NO_SERVER_TIMES)
            if moment < self.since:
                return False
        level = event.level
        if self.min_rank is not None and LEVEL_RANK.get(level, 20) < self.min_rank:
            return False
        if self.levels is not None and level not in self.levels:
            return False
        if self.sources and not _source_match(event.source, self.sources):
            return False
        return not (self.grep is not None and not self.grep.search(event.message))


def _source_match(source: str | None, patterns: tuple[str, ...]) -> bool:
    if source is None:
        return False
    return any(
        fnmatchcase(source, pattern) or source.split(":", 1)[0] == pattern for pattern in patterns
    )


class RawLineFilter:
    """``--grep`` / ``--source`` on raw output: whole lines only (chunks are not
    lines, so partial lines wait for their end)."""

    def __init__(self, grep: re.Pattern[str] | None, sources: tuple[str, ...]) -> None:
        self.grep = grep
        self.sources = sources
        self.partial: dict[str | None, bytes] = {}

    @property
    def active(self) -> bool:
        return self.grep is not None or bool(self.sources)

    def __call__(self, event: Event) -> list[Event]:
        if not isinstance(event, RawChunk):
            return [event]
        # The documented API does not tell stdout from stderr: its output is stdout.
        if self.sources and not _source_match(event.stream or "stdout", self.sources):
            return []
        if self.grep is None:
            return [event]
        data = self.partial.pop(event.stream, b"") + event.raw
        lines = data.split(b"\n")
        if lines[-1]:
            self.partial[event.stream] = lines[-1]
        kept = [
            line + b"\n" for line in lines[:-1] if self.grep.search(line.decode("utf-8", "replace"))
        ]
        return [RawChunk(b"".join(kept), event.stream)] if kept else []

    def flush(self) -> list[Event]:
        out: list[Event] = []
        for stream, rest in self.partial.items():
            if self.grep is None or self.grep.search(rest.decode("utf-8", "replace")):
                out.append(RawChunk(rest, stream))
        self.partial.clear()
        return out


@dataclass
class ProcessFilter:
    """``monitor --process``, ``--type``, ``--attempt`` and ``--executor``.

    Only ``process_started`` is documented to carry ``taskAttemptId`` and
    ``executor``; the later events of a process (progress, completed, failed,
    stopped, and types the spec does not know) carry only its ``processId``. So the
    filter remembers, per process, the attempt and executor of the last event that
    named them, and judges every event of that process by them: the event's own
    fields when it has them, else what was learnt. Call it on every event, even
    ones a caller will not print, so that it learns.

    An event of a process whose attempt (or executor) no event has named, e.g. its
    ``process_started`` was missed, is left out by ``--attempt`` (``--executor``):
    which attempt it belongs to is unknown, and printing it would claim it. The documented dialect
    gets the server-wide stream and filters attempts only here; the Forge dialect
    asks the server for the attempt's processes, and its events always carry both.

    :meth:`selects` is the choice of processes alone; ``--type`` only decides
    which of their events are printed (``--until-idle`` and ``--exit-status`` must
    see them all).
    """

    processes: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    executors: frozenset[str] = frozenset()
    attempt: str | None = None
    #: processId → (attempt, executor) as last named by its events. Oldest first,
    #: bounded by :attr:`MEMORY` so a monitor left running does not grow forever.
    _seen: dict[str, tuple[str | None, str | None]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    MEMORY: ClassVar[int] = 10_000

    def __call__(self, event: Event) -> bool:
        if not isinstance(event, ProcessEvent):
            return True
        return self.selects(event) and not (self.types and event.type not in self.types)

    def selects(self, event: ProcessEvent) -> bool:
        """Whether ``event`` belongs to a process ``--process``, ``--attempt`` and
        ``--executor`` choose (whatever its type); learns what it names."""
        attempt, executor = self._learn(event)
        if self.processes and event.process_id not in self.processes:
            return False
        if self.attempt and attempt != self.attempt:
            return False
        return not (self.executors and (executor is None or executor.lower() not in self.executors))

    def _learn(self, event: ProcessEvent) -> tuple[str | None, str | None]:
        pid = event.process_id
        attempt, executor = event.task_attempt_id, event.executor
        if pid is None:
            return attempt, executor
        known = self._seen.get(pid)
        if known is not None:
            if attempt is None and executor is None:
                return known
            attempt = attempt if attempt is not None else known[0]
            executor = executor if executor is not None else known[1]
            if (attempt, executor) == known:
                return known
        elif attempt is None and executor is None:
            return None, None
        seen = self._seen
        if known is None and len(seen) >= self.MEMORY:
            del seen[next(iter(seen))]
        seen[pid] = (attempt, executor)
        return attempt, executor


class Tail:
    """``--tail N``: of the history, only the last N entries, then everything live."""

    def __init__(self, count: int) -> None:
        self.buffer: deque[Event] | None = deque(maxlen=count)

    def push(self, event: Event) -> list[Event]:
        if self.buffer is None:
            return [event]
        self.buffer.append(event)
        return []

    def release(self) -> list[Event]:
        """The history is complete: hand over what the tail kept."""
        kept = list(self.buffer or ())
        self.buffer = None
        return kept


class RawTail(Tail):
    """``--raw --tail N``: the last N *lines* of the history, as ``tail -n`` counts
    them (an unterminated last line counts), whatever the chunks the server cut the
    output into; the first chunk kept is cut at a line start, the bytes stay exact."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.buffer = deque()
        self._newlines = 0  # in the buffer's chunks after the first

    def push(self, event: Event) -> list[Event]:
        buffer = self.buffer
        if buffer is None:
            return [event]
        if buffer:
            self._newlines += _raw(event).count(b"\n")
        buffer.append(event)
        # Chunks after the first that hold N + 1 line ends make the first useless:
        # the N lines kept start after it, whatever comes next.
        while len(buffer) > 1 and self._newlines > self.count:
            buffer.popleft()
            self._newlines -= _raw(buffer[0]).count(b"\n")
        return []

    def release(self) -> list[Event]:
        chunks = list(self.buffer or ())
        self.buffer = None
        if not chunks or self.count == 0:
            return []
        # The cut: after the k-th line end from the end (k = N, plus one when the
        # output ends with a line end, since that end closes the last line).
        wanted = self.count + (1 if _raw(chunks[-1]).endswith(b"\n") else 0)
        seen = 0
        for at in range(len(chunks) - 1, -1, -1):
            raw = _raw(chunks[at])
            here = raw.count(b"\n")
            if seen + here >= wanted:
                cut = len(raw)
                for _ in range(wanted - seen):
                    cut = raw.rindex(b"\n", 0, cut)
                first = chunks[at]
                assert isinstance(first, RawChunk)  # it holds line ends
                rest = raw[cut + 1 :]
                return ([first.part(rest)] if rest else []) + chunks[at + 1 :]
            seen += here
        return chunks


def _raw(event: Event) -> bytes:
    return event.raw if isinstance(event, RawChunk) else b""


def compile_grep(pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidValue("grep", pattern, f"not a regular expression ({exc})") from None


Keep = Callable[[Event], bool]
