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
from collections.abc import AsyncGenerator, Callable, Iterable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Generic, Literal, TypeVar, overload

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
from .errors import ExitCode
from .events import DiffUpdate, Event, LogEntry, ProcessEvent, RawChunk
from .pipeline import Pipeline, log_pipeline, monitor_pipeline
from .settings import Settings, resolve
from .stream import Stream, StreamOptions
from .transport import Transport

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

    async def _stream(self, request: StreamRequest, pipeline: Pipeline) -> Stream:
        settings = await self.resolve()
        if self._dialect is None:
            self._dialect = select_dialect(settings.api)
        options = self.options
        if pipeline.needs_backlog and not options.mark_backlog:
            # --tail needs the history's end found early (a late one would move
            # live lines into the tail); --until-idle late (every process seen).
            early = pipeline.tail is not None
            options = dataclasses.replace(options, mark_backlog=True, tail_history=early)
        endpoint = settings.endpoint(self.open_timeout)
        endpoint.transport = self.transport
        stream = Stream(self._dialect, request, endpoint, options, self.diagnostics, self.transport)
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
    ) -> None:
        self._client = client
        self.request = request
        self.pipeline = pipeline
        self._wanted = wanted
        self._stream: Stream | None = None
        self._events: AsyncGenerator[E, None] | None = None

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
            async for event in self.pipeline.run(stream.__aiter__()):
                if isinstance(event, wanted):
                    yield event  # type: ignore[misc]
        finally:
            await self._close(stream)

    async def _open(self) -> Stream:
        if self._stream is None:
            self._stream = await self._client._stream(self.request, self.pipeline)
        return self._stream

    async def _close(self, stream: Stream) -> None:
        self._client._closed(stream)
        await stream.aclose()

    async def pump(self, sink: Callable[[Event], object]) -> int:
        """Deliver every event that passes to ``sink`` (the CLI's renderer) until the
        stream ends; return the stop rule's status, else 0. No filter: no generator
        between the driver and ``sink``."""
        stream = await self._open()
        try:
            if self.pipeline.empty:
                await stream.pump(sink)
            else:
                async for event in self.pipeline.run(stream.__aiter__()):
                    sink(event)
        finally:
            self._client._closed(stream)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(stream.aclose()), 0.5)
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
        if raw:
            return EventStream[RawChunk](self._client, request, pipeline, (RawChunk,))
        return EventStream[LogEntry](self._client, request, pipeline, (LogEntry,))

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
        chosen = tuple(processes)
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
        return EventStream[ProcessEvent](self._client, request, pipeline, (ProcessEvent,))

    async def wait(self, process_id: str) -> int:
        """Wait until the process ends; return what ``--exit-status`` exits with.

        Its exit code when it completed or failed with one (wrapped to 0-255, a
        failure never 0); 137 when it was killed or stopped; 125 when it failed
        without a code; 7 when the stream ended without saying. A process that
        had already ended answers at once.
        """
        events = self.monitor(until_exit=process_id)
        async with events:
            async for _ in events:
                pass
        return events.status if events.status is not None else int(ExitCode.STATUS_UNKNOWN)


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
        ``stats_only``: counts, without contents where the server can omit them;
        ``first_wait``: how long to wait for the server's first update before
        calling the diff empty)."""
        request = StreamRequest(
            "diff", attempt_id, follow=follow, stats_only=stats_only, first_wait=first_wait
        )
        return EventStream[DiffUpdate](self._client, request, Pipeline(), (DiffUpdate,))
