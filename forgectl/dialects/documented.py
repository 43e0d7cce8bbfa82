"""The documented API (``spec/websocket-api.md``): JSON objects under ``/ws/...``.

Each text frame is already an object of the event model, so decoding is a parse,
a shape check and a wrap. The server's object is kept unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from ..events import DiffUpdate, Event, LogEntry, ProcessEvent, RawChunk
from ..urls import segment
from .base import Decoder, Dialect, Plan, Route, StreamRequest
from .resend import ResendFilter

if TYPE_CHECKING:
    from ..diagnostics import Diagnostics
    from ..transport import Endpoint

PING = b'{"type":"ping"}'


def _is_pong(obj: Any) -> bool:
    return type(obj) is dict and obj.get("type") == "pong" and len(obj) == 1


class DocumentedJsonDecoder(Decoder):
    """Normalized logs, process events and diff updates."""

    app_ping = PING

    def __init__(self, request: StreamRequest, diag: Diagnostics) -> None:
        self.kind = request.kind
        self.follow = request.follow
        self.diag = diag
        self.resend = ResendFilter(diag, "messages")
        # A closed log or diff stream has ended; the event stream never ends.
        self.end_on_close = request.kind != "monitor"
        self.last_diff: bytes | None = None

    def connected(self) -> None:
        self.resend.connected()

    def feed(self, frame: bytes | str) -> Iterable[Event]:
        # Only frames that become events enter the resend history: junk a server
        # sends once (or not again after a reconnect) must not shift the
        # comparison of a resent history, or valid messages would be lost or repeated.
        try:
            obj = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            self._bad("invalid JSON frame", _describe(frame, exc))
            return ()
        if type(obj) is not dict:
            self._bad("unexpected message", f"a JSON {type(obj).__name__}, not an object")
            return ()
        if _is_pong(obj):
            self.diag.trace("pong", 2)
            return ()
        kind = self.kind
        if kind == "logs":
            if "message" not in obj and "level" not in obj:
                self._bad("unexpected log message", _keys(obj))
                return ()
            event: Event = LogEntry(obj)
        elif kind == "monitor":
            if type(obj.get("type")) is not str:
                self._bad("unexpected process event", _keys(obj))
                return ()
            event = ProcessEvent(obj)
        elif obj.get("type") != "diff_update":
            self._bad("unexpected diff message", _keys(obj))
            return ()
        else:
            event = DiffUpdate(obj)
        if not self.resend.fresh(frame if isinstance(frame, bytes) else frame.encode()):
            return ()
        if kind != "diff":
            return (event,)
        if not self.follow:
            self.done = True
        key = orjson.dumps(
            [obj.get("diff"), obj.get("filesChanged"), obj.get("insertions"), obj.get("deletions")]
        )
        if key == self.last_diff:
            return ()
        self.last_diff = key
        return (event,)

    def _bad(self, kind: str, detail: str) -> None:
        # A resent history repeats its junk too: it was reported the first time.
        if not self.resend.replaying:
            self.diag.bad_frame(kind, detail)


class DocumentedRawDecoder(Decoder):
    """Raw text frames: one frame a line, as the spec's example shows."""

    app_ping = PING
    end_on_close = True

    def __init__(self, diag: Diagnostics) -> None:
        self.diag = diag
        self.resend = ResendFilter(diag, "frames")

    def connected(self) -> None:
        self.resend.connected()

    def feed(self, frame: bytes | str) -> Iterable[Event]:
        data = frame if isinstance(frame, bytes) else frame.encode()
        if data.startswith(b'{"type"') and data.replace(b" ", b"") == b'{"type":"pong"}':
            return ()
        if not self.resend.fresh(data):
            return ()
        if not data.endswith(b"\n"):
            data += b"\n"
        return (RawChunk(data),)


def _keys(obj: dict[str, Any]) -> str:
    keys = ", ".join(list(obj)[:6]) or "no keys"
    return f"an object with {keys}"


def _describe(frame: bytes | str, exc: Exception) -> str:
    size = len(frame)
    head = frame[:40]
    head_text = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
    return f"{size} bytes starting {head_text!r}: {exc}"


class DocumentedDialect(Dialect):
    name = "documented"

    async def plan(self, request: StreamRequest, endpoint: Endpoint, diag: Diagnostics) -> Plan:
        target = segment(request.target or "")
        decoder: Decoder
        if request.kind == "raw":
            path = f"/ws/execution-processes/{target}/logs/raw"
            decoder = DocumentedRawDecoder(diag)
        elif request.kind == "logs":
            path = f"/ws/execution-processes/{target}/logs/normalized"
            decoder = DocumentedJsonDecoder(request, diag)
        elif request.kind == "diff":
            path = f"/ws/task-attempts/{target}/diff"
            decoder = DocumentedJsonDecoder(request, diag)
        else:
            path = "/ws/execution-processes"
            decoder = DocumentedJsonDecoder(request, diag)
        return Plan(Route(path), decoder, request.what)
