"""What stands between a stream's events and whoever consumes them.

    stream (events) → Pipeline (filters, --tail, stop rules) → renderer, or a caller's ``async for``

A :class:`Pipeline` is built once per stream, by :func:`log_pipeline` or
:func:`monitor_pipeline` from what a caller asked for (the library's keyword
arguments, which the CLI's flags fill); ``run()`` yields the events that pass,
and a stop rule that ends the stream early (``until_idle``, ``until_exit``)
leaves its status in :attr:`Pipeline.status`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .events import BACKLOG_END, PROCESS_STATUSES, RUN_REASONS, Event, ProcessEvent, ProcessRecord
from .filters import (
    LogFilter,
    ProcessFilter,
    RawLineFilter,
    RawTail,
    Tail,
    compile_grep,
    parse_levels,
    parse_since,
)
from .status import exit_status

__all__ = ["Pipeline", "log_pipeline", "monitor_pipeline", "record_filter"]


@dataclass
class Pipeline:
    """Filters, ``--tail`` and stop rules between a stream and its consumer."""

    keep: Callable[[Event], bool] | None = None
    lines: RawLineFilter | None = None
    tail: Tail | None = None
    #: Called with every event; a non-None result ends the stream with that status.
    until: Callable[[Event], int | None] | None = None
    #: Called when the backlog has arrived; a non-None result ends the stream.
    at_backlog: Callable[[], int | None] | None = None
    #: The status a stop rule ended the stream with; None while it has not.
    status: int | None = None

    @property
    def empty(self) -> bool:
        return not (self.keep or self.lines or self.tail or self.until or self.at_backlog)

    @property
    def needs_backlog(self) -> bool:
        """Whether the stream must say where its history ends (``BACKLOG_END``)."""
        return self.tail is not None or self.at_backlog is not None

    async def run(self, events: AsyncIterator[Event]) -> AsyncGenerator[Event, None]:
        """The events that pass, in order, until the stream ends or a stop rule ends it."""
        keep, lines, tail, until = self.keep, self.lines, self.tail, self.until
        try:
            async for event in events:
                if event is BACKLOG_END:
                    if tail is not None:
                        for kept in tail.release():
                            yield kept
                    if self.at_backlog is not None:
                        self.status = self.at_backlog()
                        if self.status is not None:
                            return
                    continue
                for item in lines(event) if lines is not None else (event,):
                    if keep is not None and not keep(item):
                        continue
                    if tail is None:
                        yield item
                    else:
                        for kept in tail.push(item):
                            yield kept
                if until is not None:
                    self.status = until(event)
                    if self.status is not None:
                        return
            if lines is not None:
                for rest in lines.flush():
                    if keep is None or keep(rest):
                        if tail is None:
                            yield rest
                        else:
                            tail.push(rest)
            if tail is not None:
                for kept in tail.release():
                    yield kept
        finally:
            # Ending early must not leave the driver, and its heartbeat task,
            # suspended until interpreter exit.
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()


def log_pipeline(
    *,
    raw: bool = False,
    level: str | Iterable[str] | None = None,
    source: str | Iterable[str] | None = None,
    grep: str | re.Pattern[str] | None = None,
    since: str | datetime | timedelta | None = None,
    tail: int | None = None,
) -> Pipeline:
    """Filters for a process's log entries (raw chunks with ``raw``).

    ``level``: a minimum (``"warn"``), or a comma list or several names for exactly
    those levels; ``source``: globs (``tool`` also matches ``tool:Bash``; raw:
    ``stdout``/``stderr``); ``grep``: a regular expression (raw: whole lines);
    ``since``: a duration (``"10m"``, a timedelta) or a time; ``tail``: of the
    history, only the last N entries (raw: lines). Raises :class:`~forgectl.errors.InvalidValue`.
    """
    from .errors import InvalidValue, UsageError

    levels = _names(level)
    sources = tuple(_names(source))
    if raw and (levels or since is not None):
        raise UsageError("level and since filter normalized entries: raw output has neither")
    if tail is not None and tail < 0:
        raise InvalidValue("tail", tail, "a number of entries cannot be negative")
    pattern = grep if isinstance(grep, re.Pattern) else compile_grep(grep)
    tails = RawTail if raw else Tail
    pipeline = Pipeline(tail=tails(tail) if tail is not None else None)
    if raw:
        line_filter = RawLineFilter(pattern, sources)
        pipeline.lines = line_filter if line_filter.active else None
        return pipeline
    min_rank, level_set = parse_levels(levels)
    log_filter = LogFilter(min_rank, level_set, sources, pattern, _since(since))
    pipeline.keep = log_filter if log_filter.active else None
    return pipeline


def _names(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _since(since: str | datetime | timedelta | None) -> datetime | None:
    if since is None or isinstance(since, datetime):
        return since
    if isinstance(since, timedelta):
        from datetime import UTC

        return datetime.now(UTC) - since
    return parse_since(since)


def monitor_pipeline(
    *,
    attempt: str | None = None,
    processes: Iterable[str] = (),
    types: Iterable[str] = (),
    executors: Iterable[str] = (),
    until_idle: bool = False,
    until_exit: str | None = None,
) -> Pipeline:
    """Filters and stop rules for process events.

    ``until_idle``: end (status 0) once the history has arrived and no chosen
    process is running; ``until_exit``: end when that process ends, with its
    ``--exit-status`` (:func:`~forgectl.status.exit_status`). Both see every event
    of the chosen processes, including types ``types`` hides.
    """
    chosen = tuple(processes)
    keep = ProcessFilter(
        frozenset(chosen),
        frozenset(types),
        frozenset(e.lower() for e in executors),
        attempt,
    )
    if not until_idle and until_exit is None:
        return Pipeline(keep=keep)
    running: set[str] = set()
    backlog_done = False

    def until(event: Event) -> int | None:
        # Every event of the chosen processes, printed or not: with types=
        # ("process_started",) the end events are hidden, yet they end the process.
        if not isinstance(event, ProcessEvent) or not keep.selects(event):
            return None
        pid = event.process_id or ""
        if event.type == "process_started":
            running.add(pid)
        elif event.is_terminal:
            running.discard(pid)
            if until_exit is not None and pid == until_exit:
                return exit_status(event)
        if until_idle and backlog_done and not running:
            return 0
        return None

    def at_backlog() -> int | None:
        nonlocal backlog_done
        backlog_done = True
        return 0 if until_idle and not running else None

    return Pipeline(keep=keep, until=until, at_backlog=at_backlog if until_idle else None)


def record_filter(
    *,
    status: str | Iterable[str] | None = None,
    run_reason: str | Iterable[str] | None = None,
) -> Callable[[ProcessRecord], bool]:
    """Which process records ``ps`` keeps: ``status`` (running, completed, failed,
    killed) and ``run_reason`` (setupscript, codingagent, cleanupscript,
    devserver), each one name, a comma list or several names. Raises
    :class:`~forgectl.errors.InvalidValue` for a name that is none of those."""
    statuses = _choices("status", status, PROCESS_STATUSES)
    reasons = _choices("run_reason", run_reason, RUN_REASONS)

    def keep(record: ProcessRecord) -> bool:
        return (not statuses or record.status in statuses) and (
            not reasons or record.run_reason in reasons
        )

    return keep


def _choices(
    param: str, value: str | Iterable[str] | None, known: tuple[str, ...]
) -> frozenset[str]:
    from .errors import InvalidValue

    names = {n.strip().lower() for v in _names(value) for n in v.split(",") if n.strip()}
    for name in sorted(names):
        if name not in known:
            raise InvalidValue(param, name, f"choose from {', '.join(known)}")
    return frozenset(names)
