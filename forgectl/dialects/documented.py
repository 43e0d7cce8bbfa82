"""The documented API (``spec/websocket-api.md``): JSON objects under ``/ws/...``.

Each text frame is already an object of the event model, so decoding is a parse,
a shape check and a wrap. The server's object is kept unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from zlib import crc32

import orjson
from orjson import OPT_APPEND_NEWLINE, JSONDecodeError, dumps, loads

from ..diagnostics import describe_frame
from ..errors import AuthError, ConnectError, Hint, NotFoundError, ProtocolError
from ..events import (
    DiffUpdate,
    Encoded,
    Event,
    LogEntry,
    ProcessEvent,
    ProcessRecord,
    RawChunk,
    deep_json,
    json_line,
)
from ..transport import Route
from ..urls import segment
from .base import Decoder, Dialect, Plan, StreamRequest
from .resend import CHECKPOINT_MASK, EXACT, ResendFilter

if TYPE_CHECKING:
    from ..diagnostics import Diagnostics
    from ..transport import Endpoint

PING = b'{"type":"ping"}'
PONG = b'{"type":"pong"}'
#: A log frame this large is read by :func:`_load_large`, not by orjson directly.
LARGE_FRAME = 1 << 20
_NL = OPT_APPEND_NEWLINE


class _DocumentedDecoder(Decoder):
    """Shared by the JSON decoders: parse, drop pongs, skip a resent history."""

    app_ping = PING
    #: A closed log or diff stream has ended (the event stream overrides this).
    end_on_close = True
    batched = True

    def __init__(self, request: StreamRequest, diag: Diagnostics) -> None:
        self.follow = request.follow
        self.diag = diag
        self.resend = ResendFilter(diag, "messages")

    def connected(self) -> None:
        self.resend.connected()

    def feed(self, frame: bytes | str) -> Iterable[Event]:
        # Only frames that become events enter the resend history: junk a server
        # sends once (or not again after a reconnect) must not shift the
        # comparison of a resent history, or valid messages would be lost or repeated.
        try:
            obj = loads(frame)
        except JSONDecodeError as exc:
            self._bad("invalid JSON frame", describe_frame(frame, exc))
            return ()
        if type(obj) is not dict:
            self._bad("unexpected message", f"a JSON {type(obj).__name__}, not an object")
            return ()
        event = self.wrap(obj)
        if event is None:
            if obj.get("type") == "pong" and len(obj) == 1:
                self.diag.trace("pong", 2)
            else:
                self._bad(self.unexpected, _keys(obj))
            return ()
        resend = self.resend
        data = frame if type(frame) is bytes else frame.encode()  # type: ignore[union-attr]
        if resend.pos < 0:  # not replaying: the common case
            resend.take(data)
            return (event,)
        # After a reconnect: skip what was printed; a history that differs gives
        # back the messages to print (all valid events: only those enter it).
        return tuple(e for f in resend.replay(data) if (e := self.wrap(loads(f))) is not None)

    #: How a message of the wrong shape is reported.
    unexpected = "unexpected message"

    def wrap(self, obj: dict[str, Any]) -> Event | None:
        """The event for a well-formed message, or None."""
        raise NotImplementedError

    def _bad(self, kind: str, detail: str) -> None:
        # A resent history repeats its junk too: it was reported the first time.
        if not self.resend.replaying:
            self.diag.bad_frame(kind, detail)


class DocumentedLogsDecoder(_DocumentedDecoder):
    """Normalized log messages: objects with a ``message`` or a ``level``."""

    unexpected = "unexpected log message"

    def wrap(self, obj: dict[str, Any]) -> Event | None:
        return LogEntry(obj) if "message" in obj or "level" in obj else None

    def feed(self, frame: bytes | str) -> Iterable[Event]:
        # The hot path of `logs --json`: the general feed, with the shape check
        # and the resend bookkeeping inlined. Anything unusual takes the general path.
        try:
            obj = loads(frame)
        except JSONDecodeError:
            return super().feed(frame)
        resend = self.resend
        if (
            type(obj) is dict
            and ("message" in obj or "level" in obj)
            and resend.pos < 0
            and type(frame) is bytes
        ):
            crc = resend.crc = crc32(frame, resend.crc)
            count = resend.count = resend.count + 1
            if count <= EXACT:
                resend.exact.append(crc)
            elif not count & CHECKPOINT_MASK:
                resend.marks.append(crc)
            return (LogEntry(obj),)
        return super().feed(frame)

    fused = False

    def fuse(self, form: str) -> bool:
        # The server's objects are the documented ones: their JSON lines can be
        # written straight from the parse, with no event between.
        self.fused = form == "json"
        return self.fused

    def feed_batch(self, frames: list[bytes], out: list[Event]) -> None:
        # The hot path of `logs --json`, a network read at a time: feed()'s fast
        # case inlined, each line written at once when fused. Any other frame
        # (junk, a resent history) goes through feed(), after the lines before it.
        if self.resend.pos >= 0:  # replaying after a reconnect
            return super().feed_batch(frames, out)
        fused = self.fused
        # One buffer, not a list of lines: each bytes orjson returns keeps the
        # 4 KiB it was written in, so a read's 2,000 lines held as a list took
        # 8 MiB (peak RSS 1.37x the bare client's; 1.05x now).
        lines = bytearray()
        written = 0  # lines in it
        event = out.append
        resend = self.resend
        crc, count, exact = resend.crc, resend.count, resend.exact
        for frame in frames:
            if len(frame) > LARGE_FRAME:
                if written:
                    event(Encoded(bytes(lines), written))
                    lines.clear()
                    written = 0
                resend.crc, resend.count = crc, count
                at = frames.index(frame)  # rare: a linear search is fine
                frame = b""  # the only reference left is the batch's: _feed_large drops it
                self._feed_large(frames, at, out)
                crc, count = resend.crc, resend.count
                continue
            try:
                obj = loads(frame)
            except JSONDecodeError:
                obj = None
            if (
                type(obj) is not dict
                or ("message" not in obj and "level" not in obj)
                or type(frame) is not bytes
            ):
                if written:
                    event(Encoded(bytes(lines), written))
                    lines.clear()
                    written = 0
                resend.crc, resend.count = crc, count
                out.extend(self.feed(frame))
                crc, count = resend.crc, resend.count
                continue
            crc = crc32(frame, crc)
            count += 1
            if count <= EXACT:
                exact.append(crc)
            elif not count & CHECKPOINT_MASK:
                resend.marks.append(crc)
            if not fused:
                event(LogEntry(obj))
                continue
            try:
                lines += dumps(obj, option=_NL)
            except TypeError:
                lines += json_line(obj)
            written += 1
        resend.crc, resend.count = crc, count
        if written:
            event(Encoded(bytes(lines), written))

    def _feed_large(self, frames: list[bytes], at: int, out: list[Event]) -> None:
        """``frames[at]``, a frame over :data:`LARGE_FRAME`, read from its text
        (:func:`_load_large`) once dropped from the batch: at most two copies of
        it are held at a time, the frame's and the entry's, then the entry's and
        its line's."""
        frame = frames[at]
        frames[at] = b""
        try:
            text = frame.decode()
        except UnicodeDecodeError:
            out.extend(self.feed(frame))  # not UTF-8: feed() reports it
            return
        crc = crc32(frame, self.resend.crc)
        del frame
        try:
            obj = _load_large(text)
        except JSONDecodeError:
            obj = None
        if type(obj) is not dict or ("message" not in obj and "level" not in obj):
            del obj
            frame = text.encode()  # the frame again, as feed() reports it
            del text
            out.extend(self.feed(frame))
            return
        del text
        self.resend.took(crc)
        out.append(Encoded(json_line(obj), 1) if self.fused else LogEntry(obj))


class DocumentedMonitorDecoder(_DocumentedDecoder):
    """Process events: any object with a string ``type`` (unknown types pass)."""

    unexpected = "unexpected process event"
    end_on_close = False  # the event stream never ends: a close is a lost link

    def wrap(self, obj: dict[str, Any]) -> Event | None:
        kind = obj.get("type")
        if type(kind) is not str or (kind == "pong" and len(obj) == 1):
            return None
        return ProcessEvent(obj)


class DocumentedRecordsDecoder(DocumentedMonitorDecoder):
    """The event stream folded into one record per process (``ps``, ``logs --attempt``).

    The documented API lists no processes: what its event stream sends (the
    history it replays on connecting, then live events) is all there is. Each
    event updates its process's record; a record is yielded whenever what it
    says changes. ``process_stopped`` counts as ``killed``, as on the real server.
    The driver finds where the history ends (by time: the API does not mark it).
    """

    history_rule = "late"

    def __init__(self, request: StreamRequest, diag: Diagnostics) -> None:
        super().__init__(request, diag)
        self.attempt = request.target
        self.records: dict[str, dict[str, Any]] = {}
        self.shown: dict[str, dict[str, Any]] = {}

    def feed(self, frame: bytes | str) -> Iterable[Event]:
        out: list[Event] = []
        for event in super().feed(frame):
            if isinstance(event, ProcessEvent):
                record = self.fold(event)
                if record is not None:
                    out.append(record)
        return out

    def fold(self, event: ProcessEvent) -> ProcessRecord | None:
        pid = event.process_id
        if pid is None:
            return None
        record = self.records.get(pid)
        if record is None:
            record = self.records[pid] = dict.fromkeys(RECORD_FIELDS)
            record.update(processId=pid, status="running")
        for key, field in (
            ("taskAttemptId", event.task_attempt_id),
            ("executor", event.executor),
            ("runReason", event.run_reason),
        ):
            if field is not None:
                record[key] = field
        kind = event.type
        if kind == "process_started":
            record["startedAt"] = event.started_at or record["startedAt"]
        elif kind in _ENDS:
            record["status"] = _ENDS[kind]
            record["completedAt"] = (
                event.completed_at or event.failed_at or event.stopped_at or record["completedAt"]
            )
            if event.exit_code is not None:
                record["exitCode"] = event.exit_code
        if self.attempt is not None and record["taskAttemptId"] != self.attempt:
            return None
        if self.shown.get(pid) == record:
            return None
        self.shown[pid] = dict(record)
        return ProcessRecord(dict(record))


#: The fields of a record, in the order ``ps --json`` prints them.
RECORD_FIELDS = (
    "processId",
    "taskAttemptId",
    "runReason",
    "executor",
    "status",
    "exitCode",
    "startedAt",
    "completedAt",
)
#: End events → the status they give a record.
_ENDS = {
    "process_completed": "completed",
    "process_failed": "failed",
    "process_stopped": "killed",
}


class DocumentedDiffDecoder(_DocumentedDecoder):
    """``diff_update`` messages; identical consecutive updates are printed once."""

    unexpected = "unexpected diff message"

    def __init__(self, request: StreamRequest, diag: Diagnostics) -> None:
        super().__init__(request, diag)
        self.last_diff: bytes | None = None

    def wrap(self, obj: dict[str, Any]) -> Event | None:
        return DiffUpdate(obj) if obj.get("type") == "diff_update" else None

    def feed(self, frame: bytes | str) -> Iterable[Event]:
        events = tuple(super().feed(frame))
        if not events:
            return ()
        if not self.follow:
            self.done = True
        obj = events[0].data
        fields = [
            obj.get("diff"),
            obj.get("filesChanged"),
            obj.get("insertions"),
            obj.get("deletions"),
        ]
        try:
            key = orjson.dumps(fields)
        except TypeError:  # nested deeper than orjson writes
            key = deep_json(fields)
        if key == self.last_diff:
            return ()
        self.last_diff = key
        return events


class DocumentedRawDecoder(Decoder):
    """Raw text frames: one frame a line, as the spec's example shows."""

    app_ping = PING
    end_on_close = True
    batched = True
    fused = False

    def __init__(self, diag: Diagnostics) -> None:
        self.diag = diag
        self.resend = ResendFilter(diag, "frames")

    def fuse(self, form: str) -> bool:
        # Chunks are not frames: a read's frames can go out as one chunk.
        self.fused = form == "raw"
        return self.fused

    def connected(self) -> None:
        self.resend.connected()

    def feed(self, frame: bytes | str) -> Iterable[Event]:
        data = frame if type(frame) is bytes else frame.encode()  # type: ignore[union-attr]
        if len(data) < 32 and data[:1] == b"{" and data.replace(b" ", b"") == PONG:
            return ()
        resend = self.resend
        if resend.pos < 0:  # not replaying: the common case
            resend.take(data)
            return (RawChunk(data if data[-1:] == b"\n" else data + b"\n"),)
        return tuple(RawChunk(f if f[-1:] == b"\n" else f + b"\n") for f in resend.replay(data))

    def feed_batch(self, frames: list[bytes], out: list[Event]) -> None:
        # The hot path of `logs --raw`: feed()'s common case inlined; fused, the
        # read's frames become one chunk. Short frames that may be a pong, and a
        # resent history, go through feed().
        fused = self.fused
        resend = self.resend
        parts: list[bytes] = []
        for frame in frames:
            if (
                type(frame) is not bytes
                or resend.pos >= 0
                or (len(frame) < 32 and frame[:1] == b"{")
                or not frame
            ):
                if parts:
                    out.append(RawChunk(b"".join(parts)))
                    parts = []
                out.extend(self.feed(frame))
                continue
            crc = resend.crc = crc32(frame, resend.crc)
            count = resend.count = resend.count + 1
            if count <= EXACT:
                resend.exact.append(crc)
            elif not count & CHECKPOINT_MASK:
                resend.marks.append(crc)
            if not fused:
                out.append(RawChunk(frame if frame[-1] == 10 else frame + b"\n"))
                continue
            parts.append(frame)
            if frame[-1] != 10:  # one frame a line
                parts.append(b"\n")
        if parts:
            out.append(RawChunk(b"".join(parts)))


def _load_large(text: str) -> Any:
    """The JSON value of a large frame's text, as orjson reads it, holding the
    text and the value only: orjson parses a copy of its input, so a 64 MiB
    frame would be held three times (the frame, orjson's copy, the value).

    The standard library reads it where it reads JSON as orjson does; where
    they may differ (escaped surrogates, integers past 64 bits, non-finite
    numbers and NaN, nesting past the recursion limit) orjson reads it after
    all. Raises orjson's JSONDecodeError."""
    if "\\ud" not in text and "\\uD" not in text:
        import json

        try:
            return json.loads(text, parse_int=_int64, parse_float=_finite, parse_constant=_refuse)
        except (ValueError, RecursionError):
            pass
    return loads(text)


def _int64(digits: str) -> int:
    value = int(digits)
    if not -(1 << 63) <= value < 1 << 64:
        raise ValueError("orjson reads this integer as a float")
    return value


def _finite(digits: str) -> float:
    value = float(digits)
    if value - value != 0.0:  # inf (orjson refuses it); NaN never comes from digits
        raise ValueError("orjson refuses numbers out of a double's range")
    return value


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _keys(obj: dict[str, Any]) -> str:
    keys = ", ".join(list(obj)[:6]) or "no keys"
    return f"an object with {keys}"


#: The documented route that takes no id: every documented server serves it.
MONITOR_PATH = "/ws/execution-processes"


async def serves_documented(endpoint: Endpoint) -> tuple[bool | None, str]:
    """Does the server accept a WebSocket on the documented API's monitor route?
    (True, False, or None when it cannot tell; what it answered). A 404 there is no
    unknown id: it is a server without the documented API."""
    from ..transport import default_transport

    transport = endpoint.transport or default_transport()
    try:
        channel = await transport.open(endpoint, Route(MONITOR_PATH), what="process events")
    except AuthError:
        return True, "HTTP 401/403 (it wants a token)"
    except (NotFoundError, ProtocolError) as exc:
        return False, exc.answered or str(exc)
    except ConnectError:
        return None, "no answer"
    await channel.close()
    return True, "a WebSocket"


class DocumentedDialect(Dialect):
    name = "documented"
    #: Known to serve the documented API (its monitor route took a WebSocket).
    verified = False

    async def fallback(
        self,
        request: StreamRequest,
        plan: Plan,
        error: Exception,
        endpoint: Endpoint,
        diag: Diagnostics,
    ) -> Plan | None:
        """A 404 is an unknown id only from a server that has the documented API:
        on the first one, its monitor route is asked (a plain web server answers
        404 everywhere)."""
        if not isinstance(error, NotFoundError) or self.verified:
            return None
        serves, said = (
            (False, error.answered or "HTTP 404")
            if plan.route.path == MONITOR_PATH  # the route that failed is that one
            else await serves_documented(endpoint)
        )
        if serves is False:
            raise ProtocolError(
                f"{endpoint.server.url} does not serve the documented API: "
                f"{MONITOR_PATH} answered {said}",
                url=endpoint.server.url,
                status=error.status,
                hint=Hint.DIALECT,
                answered=said,
            )
        self.verified = serves is True
        return None

    async def plan(self, request: StreamRequest, endpoint: Endpoint, diag: Diagnostics) -> Plan:
        target = segment(request.target or "")
        decoder: Decoder
        if request.kind == "raw":
            path = f"/ws/execution-processes/{target}/logs/raw"
            decoder = DocumentedRawDecoder(diag)
        elif request.kind == "logs":
            path = f"/ws/execution-processes/{target}/logs/normalized"
            decoder = DocumentedLogsDecoder(request, diag)
        elif request.kind == "diff":
            path = f"/ws/task-attempts/{target}/diff"
            decoder = DocumentedDiffDecoder(request, diag)
        elif request.kind == "records":
            path = "/ws/execution-processes"
            decoder = DocumentedRecordsDecoder(request, diag)
        else:
            path = "/ws/execution-processes"
            decoder = DocumentedMonitorDecoder(request, diag)
        return Plan(Route(path), decoder, request.what)
