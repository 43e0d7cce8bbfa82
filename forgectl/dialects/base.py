"""What a server dialect provides: where each stream lives and how to decode it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..constants import DEFAULT_FIRST_WAIT
from ..events import Event, ProcessRecord
from ..transport import Route
from ..urls import check_id

if TYPE_CHECKING:
    from ..diagnostics import Diagnostics
    from ..transport import Endpoint

StreamKind = Literal["logs", "raw", "monitor", "diff", "records"]


@dataclass(slots=True)
class StreamRequest:
    """What a command (or a library call) wants to follow."""

    kind: StreamKind
    target: str | None = None  # process id (logs/raw) or attempt id (diff/monitor/records)
    follow: bool = False
    stats_only: bool = False  # diff: counts only, no contents
    first_wait: float = DEFAULT_FIRST_WAIT  # diff: how long to wait for the first update
    history: bool = False  # monitor: also report processes that already ended
    processes: tuple[str, ...] = ()  # monitor: only these processes (--process)

    def __post_init__(self) -> None:
        # Ids enter the core here: a bad one is a usage error before any request.
        noun = "an attempt id" if self.kind in ("diff", "monitor", "records") else "a process id"
        if self.target is not None:
            check_id(self.target, noun)
        for process in self.processes:
            check_id(process, "a process id")

    @property
    def what(self) -> str:
        if self.kind in ("logs", "raw"):
            return f"process {self.target}"
        if self.kind == "diff":
            return f"attempt {self.target}"
        return f"attempt {self.target}" if self.target else "process events"


class Verifier(Protocol):
    """A decoder's reader of a second copy of the history (see :meth:`Decoder.verifier`)."""

    #: The copy reached the stream's end (no more frames will come).
    finished: bool

    def feed(self, frame: bytes | str) -> None: ...

    def needs_more(self) -> bool:
        """Whether the copy must be read further than the end of its history
        seems to be (it does not yet cover what it must)."""
        ...


class Decoder:
    """Turns the frames of one logical stream into events, across reconnects.

    A decoder outlives its connections: the stream driver calls :meth:`connected`
    after every (re)connect, so the decoder can skip what it already emitted when
    the server resends its history.
    """

    #: The stream reached its normal end (finished marker, last diff printed...).
    done: bool = False
    #: A clean close (code 1000) from the server means the stream ended.
    end_on_close: bool = False
    #: An app-level heartbeat frame to send every ping interval (documented dialect).
    app_ping: bytes | None = None
    #: When set, :meth:`quiet` is called once the stream has been silent this long
    #: after a frame (used to coalesce bursts and to find the end of a snapshot).
    #: Costs a timer per network read, so fast paths leave it None.
    quiet_after: float | None = None
    #: When set, :meth:`quiet` is also called this long after a connection opens
    #: if no frame comes at all.
    first_quiet: float | None = None
    #: :meth:`quiet` is also called at this ``time.monotonic()`` time, if frames
    #: do not make it be called before.
    wake_at: float = math.inf
    #: The decoder itself marks where the history ends (it emits
    #: :data:`~forgectl.events.BACKLOG_END`: a snapshot frame, a ``Ready`` marker),
    #: so the driver's timing rule is not needed.
    knows_history: bool = False
    #: Where the history ends must be found by the driver for this decoder even
    #: when no command asks for it: "early", "late", or "events" (early, for a
    #: stream whose live events come in bursts: see stream/history.py).
    history_rule: str | None = None
    #: The stream's process had ended when the stream was planned: all of what
    #: comes is history, so where it ends is judged late, never early (and
    #: nothing is lost at the join: no check is needed).
    ended: bool = False
    #: Set by :meth:`feed` when this connection's feed is known to be incomplete
    #: (an entry index skipped...): why. The driver then opens a fresh connection
    #: at once, and the server resends everything.
    resync: str | None = None

    def connected(self) -> None:
        """A (re)connection opened."""

    def history_over(self) -> Iterable[Event]:
        """The driver found where this connection's history ends (see
        :attr:`history_rule`)."""
        return ()

    def marks_history(self, frame: bytes | str) -> bool:
        """Whether ``frame`` is the server's own end-of-history marker: the driver
        then leaves the end to the decoder (which turns :attr:`knows_history` on
        when it is fed that frame) rather than judging it by time."""
        return False

    def appeared(self) -> None:
        """The stream's target did not exist when the stream started (the driver
        waited for it): nothing in its first history is old."""

    #: The decoder may ask for its connections to be checked (:meth:`verifier`).
    verifies: bool = False

    def verifier(self) -> Verifier | None:
        """After a connection's first frames: a reader for a second copy of the
        history, read on another connection, if this one should be checked."""
        return None

    def holding(self) -> bool:
        """Whether the decoder holds events back and so places the history's end
        among them itself (the driver then adds no marker of its own at the cut)."""
        return False

    def checked_events(self) -> list[Event]:
        """While that second copy is being read: events it has let go already."""
        return []

    def check_abandoned(self) -> list[Event]:
        """The connection being checked is gone before its check ended: events
        held for it (they were received: they go out as they are)."""
        return []

    def verified(self, check: Any) -> Iterable[Event]:
        """That second copy has been read (``check``: the verifier, or None when
        it could not be had): the events that heal what this connection missed."""
        return ()

    def feed(self, frame: bytes | str) -> Iterable[Event]:
        raise NotImplementedError

    #: The driver may call :meth:`feed_batch` in place of :meth:`feed` for each
    #: frame (only a decoder that never marks the history itself: the driver
    #: watches for that marker frame by frame).
    batched: bool = False

    def feed_batch(self, frames: list[bytes], out: list[Event]) -> None:
        """The events of ``frames`` (one network read), appended to ``out``: what
        :meth:`feed` gives for each in turn, up to a frame that sets :attr:`done`
        or :attr:`resync`. One call per read, not per frame; a decoder may drop a
        large frame from ``frames`` once decoded, so that it and what it became
        are not held at once."""
        for frame in frames:
            out.extend(self.feed(frame))
            if self.done or self.resync:
                return

    def fuse(self, form: str) -> bool:
        """Whoever consumes this decoder's events prints them in ``form``
        (``"json"``: JSON lines; ``"raw"``: the bytes) and needs nothing else of
        them: the decoder may deliver runs of events already in that form
        (:class:`~forgectl.events.Encoded` lines, one :class:`~forgectl.events.RawChunk`
        for many frames). True if it will."""
        return False

    def quiet(self) -> Iterable[Event]:
        """The stream went quiet after a burst (see :attr:`quiet_after`)."""
        return ()

    def settled(self) -> Iterable[Event]:
        """Without --follow: the backlog is complete; emit what is owed and end."""
        return self.quiet()


@dataclass(slots=True)
class Plan:
    """How a dialect serves one request: the route to open and its decoder."""

    route: Route
    decoder: Decoder
    what: str


class Dialect:
    """A server API: the documented ``/ws/...`` one or the real server's ``/api/...``."""

    name: str = ""

    async def plan(self, request: StreamRequest, endpoint: Endpoint, diag: Diagnostics) -> Plan:
        raise NotImplementedError

    def connected(self, diag: Diagnostics) -> None:
        """A connection opened (auto-detection settles on the documented dialect)."""

    async def fallback(
        self,
        request: StreamRequest,
        plan: Plan,
        error: Exception,
        endpoint: Endpoint,
        diag: Diagnostics,
    ) -> Plan | None:
        """Another plan when ``plan``'s route failed with ``error`` (or None)."""
        return None

    async def list_processes(
        self,
        endpoint: Endpoint,
        diag: Diagnostics,
        *,
        attempt: str | None = None,
        task: str | None = None,
        project: str | None = None,
    ) -> list[ProcessRecord] | None:
        """The processes the server lists (of an attempt, a task, a project), as
        records; None when the dialect has no list to ask: the caller then derives
        one from the event stream (a ``records`` request without follow)."""
        return None

    async def resolve_id(self, kind: str, given: str, endpoint: Endpoint, diag: Diagnostics) -> str:
        """The whole id (``kind``: process, attempt, task, project) that ``given``
        names when the dialect can tell from a list; else ``given``."""
        return given
