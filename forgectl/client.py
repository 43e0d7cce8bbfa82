"""The Python API: everything the CLI can do, as async iterators and awaitables.

    from forgectl import ForgeClient

    async with ForgeClient() as forge:
        async with forge.processes.stream_logs("proc_abc123", level="warn") as logs:
            async for log in logs:
                print(f"[{log.level}] {log.message}")
        code = await forge.processes.wait("proc_abc123")

Server, token and dialect are resolved as the CLI resolves them: arguments, then
``FORGE_URL`` / ``FORGE_TOKEN`` / ``FORGE_API``, then the profile, then defaults,
on first use and off the event loop (the keyring is asked in a thread, bounded by
``FORGECTL_KEYRING_TIMEOUT``): constructing a client does no I/O.

Every stream method returns an :class:`EventStream`: iterate it, and use it as an
``async with`` block to close its socket (a normal close) when the block ends.
Reconnects, heartbeats and exactly-once output behave as in the CLI; errors are
:class:`~forgectl.errors.ForgeError` subclasses carrying the CLI's exit codes
and the facts (``url``, ``status``, ``hint``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Generic, Literal, TypeVar, overload

from .constants import (
    DEFAULT_FIRST_WAIT,
    ENV_API,
    ENV_CACERT,
    ENV_PROFILE,
    ENV_SERVER,
    ENV_TOKEN,
)
from .diagnostics import Diagnostics
from .dialects import select_dialect
from .dialects.base import Dialect, StreamRequest
from .errors import NotFoundError, UsageError
from .events import DiffUpdate, Event, LogEntry, ProcessEvent, ProcessRecord, RawChunk
from .ids import match_prefix
from .pipeline import Pipeline, log_pipeline, monitor_pipeline, record_filter
from .settings import Settings, resolve
from .status import Outcome
from .stream import Stream, StreamOptions
from .times import parse_time
from .transport import Transport
from .urls import check_id

if TYPE_CHECKING:
    from .attempt_logs import AttemptLogs
    from .transport import Endpoint

__all__ = ["Attempts", "EventStream", "ForgeClient", "Processes"]

E = TypeVar("E", bound=Event)


class ForgeClient:
    """Entry point of the Python API; use as an async context manager.

    ``transport``: a :class:`forgectl.transport.Transport` that opens every
    connection and makes every REST GET (swap the whole network stack);
    ``settings``: already resolved settings (the CLI's), instead of the arguments.
    """

    def __init__(
        self,
        server: str | None = None,
        token: str | None = None,
        *,
        api: str | None = None,
        profile: str | None = None,
        cacert: str | None = None,
        insecure: bool = False,
        options: StreamOptions | None = None,
        open_timeout: float | None = None,
        diagnostics: Diagnostics | None = None,
        transport: Transport | None = None,
        settings: Settings | None = None,
    ) -> None:
        self._arguments = (server, token, api, profile, cacert, insecure)
        self.diagnostics = diagnostics or Diagnostics()
        self.options = options or StreamOptions()
        self.open_timeout = open_timeout
        self.transport = transport
        self._settings = settings
        self._dialect: Dialect | None = None
        self._resolving: asyncio.Future[Settings] | None = None
        self._open: set[Stream] = set()
        #: (kind, id as given) → the whole id it names (see :meth:`complete_id`).
        self._ids: dict[tuple[str, str], str] = {}
        self.processes = Processes(self)
        self.attempts = Attempts(self)

    @property
    def settings(self) -> Settings | None:
        """The resolved settings; None until the first stream (or :meth:`resolve`)."""
        return self._settings

    async def resolve(self) -> Settings:
        """Resolve server, token and dialect (once), off the event loop."""
        if self._settings is not None:
            return self._settings
        if self._resolving is None:
            self._resolving = asyncio.ensure_future(asyncio.to_thread(self._resolve))
        settings = await asyncio.shield(self._resolving)
        self._settings = settings
        return settings

    def _resolve(self) -> Settings:
        server, token, api, profile, cacert, insecure = self._arguments
        env_token = os.environ.get(ENV_TOKEN)
        settings = resolve(
            server=server if server is not None else os.environ.get(ENV_SERVER),
            token=token or env_token,
            token_from_env=token is None and bool(env_token),
            api=api or os.environ.get(ENV_API),
            cacert=cacert or os.environ.get(ENV_CACERT),
            insecure=insecure,
            profile=profile or os.environ.get(ENV_PROFILE),
            diag=self.diagnostics,
        )
        self.diagnostics.add_secret(settings.token)
        return settings

    async def _context(self) -> tuple[Dialect, Endpoint]:
        """The dialect and the endpoint every request of this client goes through."""
        settings = await self.resolve()
        if self._dialect is None:
            self._dialect = select_dialect(settings.api)
        endpoint = settings.endpoint(self.open_timeout)
        endpoint.transport = self.transport
        return self._dialect, endpoint

    async def complete_id(self, kind: str, given: str) -> str:
        """The whole id that ``given`` names: itself, or the one id of ``kind``
        (``process``, ``attempt``, ``task``, ``project``) that starts with it, as
        git takes a short hash. On the real server a whole UUID is used as given,
        with no request; a start of one is matched against the server's lists.
        Raises :class:`~forgectl.errors.AmbiguousId` (exit 2) when several ids
        start with it, :class:`~forgectl.errors.NotFoundError` (exit 5) when none.
        The documented API lists nothing: there an id is used as given (a stream
        the server answers with 404 then matches it against the processes its
        event stream reports)."""
        check_id(given, f"{'an' if kind == 'attempt' else 'a'} {kind} id")
        key = (kind, given)
        found = self._ids.get(key)
        if found is None:
            dialect, endpoint = await self._context()
            found = self._ids[key] = await dialect.resolve_id(
                kind, given, endpoint, self.diagnostics
            )
        return found

    async def _stream(self, request: StreamRequest, pipeline: Pipeline) -> Stream:
        dialect, endpoint = await self._context()
        options = self.options
        if pipeline.needs_backlog and not options.mark_backlog:
            # --tail needs the history's end found early (a late one would move
            # live lines into the tail); --until-idle late (every process seen).
            early = pipeline.tail is not None
            options = dataclasses.replace(options, mark_backlog=True, tail_history=early)
        stream = Stream(dialect, request, endpoint, options, self.diagnostics, self.transport)
        self._open.add(stream)
        return stream

    def _closed(self, stream: Stream) -> None:
        self._open.discard(stream)

    def dialect_name(self) -> str | None:
        """The dialect in use (``documented`` or ``forge``), once known."""
        dialect = self._dialect
        chosen = getattr(dialect, "chosen", None) or dialect
        name = getattr(chosen, "name", None)
        return name if name in ("documented", "forge") else None

    async def aclose(self) -> None:
        """Close every stream still open (a normal WebSocket close)."""
        for stream in list(self._open):
            await stream.aclose()

    async def __aenter__(self) -> ForgeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class EventStream(Generic[E]):
    """One stream's events, filtered: an async iterator and an async context manager.

    ``async with stream:`` (or ``await stream.aclose()``) closes the socket with a
    normal close when the block ends, whether or not the iteration finished.
    :attr:`status` is the status a stop rule ended it with (``until_idle``: 0;
    ``until_exit``: the process's exit status), None when it ended by itself.
    """

    def __init__(
        self,
        client: ForgeClient,
        request: StreamRequest,
        pipeline: Pipeline,
        wanted: tuple[type[Event], ...],
        prepare: Callable[[EventStream[E]], Awaitable[None]] | None = None,
    ) -> None:
        self._client = client
        self.request = request
        self.pipeline = pipeline
        self._wanted = wanted
        self._stream: Stream | None = None
        self._events: AsyncGenerator[E, None] | None = None
        #: Run once before the stream opens: completes the ids it was given.
        self._prepare = prepare

    @property
    def status(self) -> int | None:
        return self.pipeline.status

    def __aiter__(self) -> EventStream[E]:
        return self

    async def __anext__(self) -> E:
        if self._events is None:
            self._events = self._generate()
        return await self._events.__anext__()

    async def _generate(self) -> AsyncGenerator[E, None]:
        stream = await self._open()
        wanted = self._wanted
        try:
            async for event in self.pipeline.run(self._source(stream)):
                if isinstance(event, wanted):
                    yield event  # type: ignore[misc]
        finally:
            await self._close(self._stream or stream)

    def _source(self, stream: Stream) -> AsyncIterator[Event]:
        """The driver's events; through :meth:`_events_of` where a 404 may be retried
        (the real server's ids are never: no generator between it and the pipeline)."""
        if self.request.kind in ("logs", "raw", "diff") and self._client.dialect_name() != "forge":
            return self._events_of(stream)
        return stream.__aiter__()

    async def _events_of(self, stream: Stream) -> AsyncGenerator[Event, None]:
        """The driver's events, once more with the whole id if the server did not
        know the one given (see :meth:`_retry_whole`)."""
        while True:
            try:
                async for event in stream:
                    yield event
                return
            except NotFoundError as missing:
                if not await self._retry_whole(stream, missing):
                    raise
                stream = await self._open()

    async def _open(self) -> Stream:
        if self._prepare is not None:
            prepare, self._prepare = self._prepare, None
            await prepare(self)
        if self._stream is None:
            self._stream = await self._client._stream(self.request, self.pipeline)
        return self._stream

    async def _retry_whole(self, stream: Stream, missing: NotFoundError) -> bool:
        """The documented server answered 404 before the stream opened: its ids have
        no fixed form, so the one given may be the start of one its event stream
        reports. True when it names another id (the stream is then replaced)."""
        request = self.request
        client = self._client
        if stream.opened or request.kind not in ("logs", "raw", "diff") or not request.target:
            return False
        if client.dialect_name() != "documented":
            return False
        records = await client.processes._reported()
        if request.kind == "diff":
            known = {r.task_attempt_id: "" for r in records if r.task_attempt_id}
            kind = "attempt"
        else:
            known = {r.process_id: _about(r) for r in records}
            kind = "process"
        try:
            whole = match_prefix(kind, request.target, known)
        except NotFoundError:
            return False
        if whole == request.target:
            return False
        client.diagnostics.trace(f"{kind} id {request.target} is {whole}")
        client._closed(stream)
        self.request = dataclasses.replace(request, target=whole)
        self._stream = None
        return True

    async def _close(self, stream: Stream) -> None:
        self._client._closed(stream)
        await stream.aclose()

    async def pump(self, sink: Callable[[Event], object], *, fused: str | None = None) -> int:
        """Deliver every event that passes to ``sink`` (the CLI's renderer) until the
        stream ends; return the stop rule's status, else 0. No filter: no generator
        between the driver and ``sink``, and with ``fused`` (the form ``sink``
        prints: ``"json"`` or ``"raw"``) runs of events may come already in that
        form (:class:`~forgectl.events.Encoded` JSON lines, one
        :class:`~forgectl.events.RawChunk` for many frames)."""
        stream = await self._open()
        try:
            if self.pipeline.empty:
                while True:
                    try:
                        await stream.pump(sink, fused)
                        break
                    except NotFoundError as missing:
                        if not await self._retry_whole(stream, missing):
                            raise
                        stream = await self._open()
            else:
                async for event in self.pipeline.run(self._source(stream)):
                    sink(event)
        finally:
            current = self._stream or stream
            self._client._closed(current)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(current.aclose()), 0.5)
        return self.status or 0

    async def aclose(self) -> None:
        """End the stream: a normal close of its socket."""
        if self._events is not None:
            await self._events.aclose()
        if self._stream is not None:
            await self._close(self._stream)

    async def __aenter__(self) -> EventStream[E]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def dialect(self) -> str | None:
        """The dialect that served the stream (``documented`` or ``forge``), once known."""
        return self._client.dialect_name()


Level = str | Iterable[str] | None
#: What ``processes.list`` returns (``list`` is that method's name inside the class).
Records = list[ProcessRecord]
Since = str | datetime | timedelta | None
Grep = str | re.Pattern[str] | None


class Processes:
    """Execution processes: their logs, their events, how they ended."""

    def __init__(self, client: ForgeClient) -> None:
        self._client = client

    @overload
    def stream_logs(
        self,
        process_id: str,
        format: Literal["normalized"] = ...,
        *,
        follow: bool = ...,
        level: Level = ...,
        source: str | Iterable[str] | None = ...,
        grep: Grep = ...,
        since: Since = ...,
        tail: int | None = ...,
    ) -> EventStream[LogEntry]: ...

    @overload
    def stream_logs(
        self,
        process_id: str,
        format: Literal["raw"],
        *,
        follow: bool = ...,
        level: None = ...,
        source: str | Iterable[str] | None = ...,
        grep: Grep = ...,
        since: None = ...,
        tail: int | None = ...,
    ) -> EventStream[RawChunk]: ...

    def stream_logs(
        self,
        process_id: str,
        format: str = "normalized",
        *,
        follow: bool = True,
        level: Level = None,
        source: str | Iterable[str] | None = None,
        grep: Grep = None,
        since: Since = None,
        tail: int | None = None,
    ) -> EventStream[LogEntry] | EventStream[RawChunk]:
        """A process's log: :class:`LogEntry` objects, or with ``format="raw"`` its
        output as :class:`RawChunk` objects (``.raw``: the exact bytes; ``str()``: text).

        With ``follow`` (the default) the stream ends when the process ends; without
        it, once the history has been delivered. Filters, as the CLI's flags:
        ``level`` (``"warn"``: at least; ``"error,success"``: exactly), ``source``
        (globs), ``grep`` (a regular expression; raw: whole lines), ``since`` (``"10m"``,
        a timedelta or a datetime), ``tail`` (of the history, the last N entries).
        """
        if format not in ("normalized", "raw"):
            raise ValueError("format must be 'normalized' or 'raw'")
        raw = format == "raw"
        pipeline = log_pipeline(
            raw=raw, level=level, source=source, grep=grep, since=since, tail=tail
        )
        request = StreamRequest("raw" if raw else "logs", process_id, follow=follow)
        prepare = _complete_target("process")
        if raw:
            return EventStream[RawChunk](self._client, request, pipeline, (RawChunk,), prepare)
        return EventStream[LogEntry](self._client, request, pipeline, (LogEntry,), prepare)

    def monitor(
        self,
        attempt: str | None = None,
        *,
        until_idle: bool = False,
        history: bool = False,
        processes: Iterable[str] = (),
        types: Iterable[str] = (),
        executors: Iterable[str] = (),
        until_exit: str | None = None,
    ) -> EventStream[ProcessEvent]:
        """Process lifecycle events, until closed (server-wide, or of one ``attempt``).

        Processes running when the stream opens come as ``process_started``; those
        that had already ended only with ``history`` (or when named in
        ``processes``). ``types``/``executors`` filter what is yielded;
        ``until_idle`` ends the stream once nothing chosen is running (after the
        history); ``until_exit=ID`` ends it when that process ends, with its exit
        status in :attr:`EventStream.status`.
        """
        types, executors = tuple(types), tuple(executors)

        def build(
            attempt: str | None, processes: tuple[str, ...], until_exit: str | None
        ) -> tuple[StreamRequest, Pipeline]:
            chosen = processes
            if until_exit is not None and until_exit not in chosen:
                chosen = (*chosen, until_exit)
            pipeline = monitor_pipeline(
                attempt=attempt,
                processes=chosen,
                types=types,
                executors=executors,
                until_idle=until_idle,
                until_exit=until_exit,
            )
            request = StreamRequest(
                "monitor", attempt, follow=True, history=history or bool(chosen), processes=chosen
            )
            return request, pipeline

        given = tuple(processes)
        request, pipeline = build(attempt, given, until_exit)

        async def prepare(stream: EventStream[ProcessEvent]) -> None:
            complete = self._client.complete_id
            whole_attempt = await complete("attempt", attempt) if attempt else None
            whole = tuple([await complete("process", p) for p in given])
            whole_exit = await complete("process", until_exit) if until_exit else None
            if (whole_attempt, whole, whole_exit) != (attempt, given, until_exit):
                stream.request, stream.pipeline = build(whole_attempt, whole, whole_exit)

        return EventStream[ProcessEvent](self._client, request, pipeline, (ProcessEvent,), prepare)

    async def wait(self, process_id: str) -> int:
        """Wait until the process ends; return what ``--exit-status`` exits with.

        Its exit code when it completed or failed with one (wrapped to 0-255, a
        failure never 0); 137 when it was killed or stopped; 125 when it failed
        without a code; 7 when the stream ended without saying. A process that
        had already ended answers at once.
        """
        return (await self.outcome(process_id)).exit_status

    async def outcome(self, process_id: str) -> Outcome:
        """Wait until the process ends; return how (:class:`~forgectl.status.Outcome`:
        its start and end events, its ``exit_status``, how long it ran). A process
        that had already ended answers at once."""
        events = self.monitor(until_exit=process_id)
        started: ProcessEvent | None = None
        ended: ProcessEvent | None = None
        async with events:
            async for event in events:  # that process's only (a prefix is completed)
                if event.type == "process_started":
                    started = event
                elif event.is_terminal:
                    ended = event
        return Outcome(started, ended)

    async def resolve(self, process_id: str) -> str:
        """The whole process id that ``process_id`` (an id, or the start of one)
        names; see :meth:`ForgeClient.complete_id`."""
        return await self._client.complete_id("process", process_id)

    async def list(
        self,
        attempt: str | None = None,
        task: str | None = None,
        project: str | None = None,
        status: str | Iterable[str] | None = None,
        run_reason: str | Iterable[str] | None = None,
    ) -> Records:
        """The processes on the server, newest first, as :class:`ProcessRecord` objects
        (``ps``): of one ``attempt``, ``task`` or ``project`` (ids, or the start of
        one), with a ``status`` (running, completed, failed, killed) and a
        ``run_reason`` (setupscript, codingagent, cleanupscript, devserver).

        The real server is asked over REST (its lists of attempts and of each
        attempt's processes); an unknown id is :class:`~forgectl.errors.NotFoundError`.
        The documented API has no list: there the records are what its event stream
        reports (the history it sends on connecting, as ``monitor --history`` shows
        it), a note on stderr says so, and ``task``/``project`` are a usage error
        (its events do not name them).
        """
        keep = record_filter(status=status, run_reason=run_reason)
        client = self._client
        dialect, endpoint = await client._context()
        whole = {
            kind: await client.complete_id(kind, value) if value is not None else None
            for kind, value in (("attempt", attempt), ("task", task), ("project", project))
        }
        records = await dialect.list_processes(
            endpoint,
            client.diagnostics,
            attempt=whole["attempt"],
            task=whole["task"],
            project=whole["project"],
        )
        if records is None:
            if task is not None or project is not None:
                raise UsageError(
                    "the documented API does not say which task or project a process "
                    "belongs to: filtering by task or project needs the real Forge server"
                )
            client.diagnostics.note(
                "the documented API has no list of processes: listing those its event "
                "stream reports (the history it sends on connecting)"
            )
            records = await self._reported()
            if attempt is not None:
                records = _of_attempt(records, attempt)
        return sorted((r for r in records if keep(r)), key=_newest_first)

    async def _reported(self) -> Records:
        """Every process the documented API's event stream reports on connecting
        (its history), each as it stands at the end of it."""
        request = StreamRequest("records", None, follow=False)
        found: dict[str, ProcessRecord] = {}
        events = EventStream[ProcessRecord](self._client, request, Pipeline(), (ProcessRecord,))
        async with events:
            async for record in events:
                found[record.process_id] = record
        return list(found.values())

    def stream_attempt_logs(
        self,
        attempt_id: str,
        format: str = "normalized",
        *,
        follow: bool = True,
        level: Level = None,
        source: str | Iterable[str] | None = None,
        grep: Grep = None,
        since: Since = None,
        tail: int | None = None,
    ) -> AttemptLogs:
        """Every process of a task attempt in one stream (``logs --attempt``): each
        :class:`LogEntry` carries its ``processId`` (``entry.process_id``), each raw
        chunk is a :class:`~forgectl.events.ProcessChunk`.

        What the processes have logged comes in their order (oldest first, each
        whole); then live output as it comes. With ``follow`` (the default)
        processes that start later are followed too, and the stream ends once the
        attempt has nothing running and nothing about to start; without it, once
        every process's history has been delivered. The filters (as for
        :meth:`stream_logs`) and ``tail`` apply to each process on its own;
        reconnects are each process's stream's, exactly once as for one process.
        """
        from .attempt_logs import AttemptLogs

        if format not in ("normalized", "raw"):
            raise ValueError("format must be 'normalized' or 'raw'")
        raw = format == "raw"
        StreamRequest("records", attempt_id)  # a bad id is a usage error here, at once

        def pipeline() -> Pipeline:
            return log_pipeline(
                raw=raw, level=level, source=source, grep=grep, since=since, tail=tail
            )

        pipeline()  # bad filter values are errors here, at once
        return AttemptLogs(self._client, attempt_id, raw=raw, follow=follow, pipeline=pipeline)


class Attempts:
    """Task attempts: their git diff."""

    def __init__(self, client: ForgeClient) -> None:
        self._client = client

    def stream_diff(
        self,
        attempt_id: str,
        *,
        follow: bool = True,
        stats_only: bool = False,
        first_wait: float = DEFAULT_FIRST_WAIT,
    ) -> EventStream[DiffUpdate]:
        """Diff updates of a task attempt (without ``follow``: the current diff only;
        ``first_wait``: how long to wait for the server's first update before
        calling the diff empty). Each update's ``files`` are its per-file diffs,
        counted as ``git diff --numstat`` counts them; after the first, ``changes``
        and ``removed`` say what changed since the one before.

        ``stats_only``: ask the real server for counts, not contents (less to send
        for a big attempt). Its counts are its own: forgectl puts right those of
        added and deleted files, but a change to a last line without a newline goes
        uncounted (see the README)."""
        request = StreamRequest(
            "diff", attempt_id, follow=follow, stats_only=stats_only, first_wait=first_wait
        )
        return EventStream[DiffUpdate](
            self._client, request, Pipeline(), (DiffUpdate,), _complete_target("attempt")
        )

    async def resolve(self, attempt_id: str) -> str:
        """The whole attempt id that ``attempt_id`` (an id, or the start of one)
        names; see :meth:`ForgeClient.complete_id`."""
        return await self._client.complete_id("attempt", attempt_id)


def _complete_target(kind: str) -> Callable[[EventStream[E]], Awaitable[None]]:
    """A stream's preparation: its target id completed (see :meth:`ForgeClient.complete_id`)."""

    async def prepare(stream: EventStream[E]) -> None:
        target = stream.request.target
        if target:
            whole = await stream._client.complete_id(kind, target)
            if whole != target:
                stream.request = dataclasses.replace(stream.request, target=whole)

    return prepare


def _about(record: ProcessRecord) -> str:
    """A few words on a process, for an ambiguous prefix's message."""
    parts = (record.run_reason or record.executor, record.status, record.task_attempt_id)
    return ", ".join(p for p in parts if p)


def _of_attempt(records: list[ProcessRecord], attempt: str) -> Records:
    """The records of ``attempt``, or of the one attempt it is the start of."""
    known = {r.task_attempt_id: "" for r in records if r.task_attempt_id}
    try:
        attempt = match_prefix("attempt", attempt, known)
    except NotFoundError:
        return []
    return [r for r in records if r.task_attempt_id == attempt]


def _newest_first(record: ProcessRecord) -> tuple[float, str]:
    started = parse_time(record.started_at)
    return (-started.timestamp() if started else 0.0, record.process_id)
