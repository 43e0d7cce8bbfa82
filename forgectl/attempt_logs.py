"""Every process of a task attempt in one stream (``logs --attempt``).

    the attempt's records (which processes exist, which run) ─┐
    one log stream per process (the driver, exactly once)    ─┴→ in order → consumer

An attempt is several processes: a setup script, the coding agent, a cleanup
script, dev servers. Their records come from the attempt's process stream (a
``records`` request: the real server's ``/api/execution-processes/stream/ws``, the
documented API's event stream folded), which also says when a process starts
later. Each process's log is an ordinary log stream of its own (its reconnects,
its filters, its ``tail``), so nothing here reads frames.

Order: what the processes had logged comes process by process, oldest first,
each whole; a process's lines are held while an older one's history is still
arriving. Once a history is over, that process's lines pass as they come, so live
output of processes running side by side is interleaved as it arrives.

End: without ``follow``, once every process's history is delivered. With it, once
no process runs, every log has ended, and nothing is about to start: when the
process that ended last completed and its record names a next action (setup
script → coding agent → cleanup script), the server starts that one a moment
later, or not at all (it skips the cleanup script when the agent changed
nothing): :data:`CHAIN_WAIT` seconds are given to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .dialects.base import StreamRequest
from .events import Event, LogEntry, ProcessChunk, ProcessRecord, RawChunk
from .pipeline import Pipeline
from .times import parse_time

if TYPE_CHECKING:
    from .client import ForgeClient
    from .stream import Stream

__all__ = ["CHAIN_WAIT", "AttemptLogs"]

#: How long a completed process's next action may take to start (seconds).
CHAIN_WAIT = 3.0


class _Slot:
    """One process of the attempt: its log stream's task and what it holds back."""

    def __init__(self, record: ProcessRecord) -> None:
        self.record = record
        self.held: list[Event] = []
        self.history_over = False
        self.done = False
        self.task: asyncio.Task[None] | None = None


#: Queue items: (what, slot or record, event or error).
_RECORD, _RECORDS_HISTORY, _RECORDS_DONE = "record", "records-history", "records-done"
_EVENT, _HISTORY, _DONE, _FAILED = "event", "history", "done", "failed"


class AttemptLogs:
    """The logs of every process of one attempt: an async iterator of
    :class:`~forgectl.events.LogEntry` (with ``processId``) or
    :class:`~forgectl.events.ProcessChunk` objects, and an async context manager
    (see :meth:`forgectl.client.Processes.stream_attempt_logs`).

    :attr:`records` holds every process seen so far (process id → its latest
    :class:`~forgectl.events.ProcessRecord`), oldest first.
    """

    def __init__(
        self,
        client: ForgeClient,
        attempt: str,
        *,
        raw: bool,
        follow: bool,
        pipeline: Callable[[], Pipeline],
    ) -> None:
        self._client = client
        self.attempt = attempt
        self.raw = raw
        self.follow = follow
        self._pipeline = pipeline
        self.records: dict[str, ProcessRecord] = {}
        self._slots: dict[str, _Slot] = {}
        self._order: list[_Slot] = []
        self._queue: asyncio.Queue[tuple[str, Any, Any]] = asyncio.Queue()
        self._watch: asyncio.Task[None] | None = None
        self._events: AsyncGenerator[Event, None] | None = None
        #: when each record was last seen to end (time.monotonic()), for CHAIN_WAIT
        self._ended_at: dict[str, float] = {}
        self.status: int | None = None

    # -- the consumer's side -----------------------------------------------------------

    def __aiter__(self) -> AttemptLogs:
        return self

    async def __anext__(self) -> Event:
        if self._events is None:
            self._events = self._generate()
        return await self._events.__anext__()

    async def pump(self, sink: Callable[[Event], object], *, fused: str | None = None) -> int:
        """Deliver every event to ``sink`` until the stream ends; return 0.

        ``fused`` is accepted and ignored: each entry gets its process's id, so
        every event goes to ``sink`` as an object."""
        events = self._generate()
        try:
            async for event in events:
                sink(event)
        finally:
            await events.aclose()
        return 0

    async def aclose(self) -> None:
        """End every stream still open (normal closes)."""
        if self._events is not None:
            await self._events.aclose()
        await self._stop()

    async def __aenter__(self) -> AttemptLogs:
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
        return self._client.dialect_name()

    # -- the work ----------------------------------------------------------------------

    async def _generate(self) -> AsyncGenerator[Event, None]:
        self.attempt = await self._client.complete_id("attempt", self.attempt)
        self._watch = asyncio.ensure_future(self._watch_records())
        records_history = records_done = False
        try:
            while True:
                if self._over(records_history, records_done):
                    return
                try:
                    what, subject, value = await asyncio.wait_for(
                        self._queue.get(), self._wake_in(records_history)
                    )
                except TimeoutError:
                    continue
                if what == _FAILED:
                    raise value
                if what == _RECORD:
                    self._learn(subject, started=records_history)
                elif what == _RECORDS_HISTORY:
                    if not records_history:
                        records_history = True
                        self._start_known()
                elif what == _RECORDS_DONE:
                    records_done = True
                    if not records_history:
                        records_history = True
                        self._start_known()
                else:
                    for event in self._arrived(subject, what, value):
                        yield event
        finally:
            await self._stop()

    def _over(self, records_history: bool, records_done: bool) -> bool:
        if not records_history or any(not slot.done for slot in self._order):
            return False
        if not self.follow:
            return True
        if records_done:
            return True
        if any(r.running for r in self.records.values()):
            return False
        return self._chain_deadline() is None

    def _wake_in(self, records_history: bool) -> float | None:
        deadline = self._chain_deadline() if records_history else None
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    def _chain_deadline(self) -> float | None:
        """While a completed process's next action may still start: until when."""
        records = list(self.records.values())
        if not records or any(r.running for r in records):
            return None
        last = max(records, key=_started)
        if not (last.chained and last.status == "completed"):
            return None
        seen = self._ended_at.get(last.process_id, time.monotonic())
        ended = parse_time(last.completed_at)
        if ended is not None and (datetime.now(UTC) - ended).total_seconds() > CHAIN_WAIT:
            return None  # ended long before we looked: whatever was to follow, did not
        deadline = seen + CHAIN_WAIT
        return deadline if deadline > time.monotonic() else None

    def _learn(self, record: ProcessRecord, *, started: bool) -> None:
        pid = record.process_id
        before = self.records.get(pid)
        self.records[pid] = record
        if not record.running and (before is None or before.running):
            self._ended_at[pid] = time.monotonic()
        slot = self._slots.get(pid)
        if slot is not None:
            slot.record = record
            return
        slot = self._slots[pid] = _Slot(record)
        if started:  # after the snapshot: a process that started since
            self._order.append(slot)
            self._start(slot)

    def _start_known(self) -> None:
        """The snapshot is in: follow its processes, oldest first."""
        waiting = [s for s in self._slots.values() if s.task is None and s not in self._order]
        for slot in sorted(waiting, key=lambda s: _started(s.record)):
            self._order.append(slot)
            self._start(slot)
        self.records = {s.record.process_id: s.record for s in self._order}

    def _start(self, slot: _Slot) -> None:
        slot.task = asyncio.ensure_future(self._follow(slot))

    def _arrived(self, slot: _Slot, what: str, value: Any) -> list[Event]:
        """What can go out now that ``slot`` sent ``what``: its own events while no
        older process's history is pending, then whatever that frees."""
        if what == _EVENT:
            front = self._front()
            if front is None or self._order.index(slot) <= self._order.index(front):
                return [value]
            slot.held.append(value)
            return []
        if what == _HISTORY:
            slot.history_over = True
        elif what == _DONE:
            slot.history_over = slot.done = True
        out: list[Event] = []
        for other in self._order:
            out.extend(other.held)
            other.held = []
            if not other.history_over:
                break
        return out

    def _front(self) -> _Slot | None:
        """The oldest process whose history is still arriving."""
        for slot in self._order:
            if not slot.history_over:
                return slot
        return None

    async def _watch_records(self) -> None:
        request = StreamRequest("records", self.attempt, follow=self.follow)
        pipeline = Pipeline(at_backlog=self._records_history)
        put = self._queue.put_nowait
        try:
            stream = await self._client._stream(request, pipeline)
            try:
                async for event in pipeline.run(stream.__aiter__()):
                    if isinstance(event, ProcessRecord):
                        put((_RECORD, event, None))
            finally:
                self._client._closed(stream)
            put((_RECORDS_DONE, None, None))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            put((_FAILED, None, exc))

    def _records_history(self) -> None:
        self._queue.put_nowait((_RECORDS_HISTORY, None, None))

    async def _follow(self, slot: _Slot) -> None:
        pid = slot.record.process_id
        put = self._queue.put_nowait
        pipeline = self._pipeline()

        def history_over() -> None:
            put((_HISTORY, slot, None))

        pipeline.at_backlog = history_over
        request = StreamRequest("raw" if self.raw else "logs", pid, follow=self.follow)
        stream: Stream | None = None
        try:
            stream = await self._client._stream(request, pipeline)
            async for event in pipeline.run(stream.__aiter__()):
                if isinstance(event, RawChunk):
                    put((_EVENT, slot, ProcessChunk(event.raw, event.stream, pid)))
                elif isinstance(event, LogEntry):
                    put((_EVENT, slot, LogEntry({**event.data, "processId": pid})))
            put((_DONE, slot, None))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            put((_FAILED, slot, exc))
        finally:
            if stream is not None:
                self._client._closed(stream)

    async def _stop(self) -> None:
        tasks = [t for t in (self._watch, *(s.task for s in self._order)) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


def _started(record: ProcessRecord) -> float:
    moment = parse_time(record.started_at)
    return moment.timestamp() if moment is not None else 0.0
