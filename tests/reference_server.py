"""Reference server for the *documented* Forge WebSocket API (``spec/websocket-api.md``).

A real :mod:`websockets` server on 127.0.0.1 that the whole test suite talks to instead of
mocked sockets. Everything it sends is scripted by plain dataclasses so tests can predict
every frame, and every connection is recorded so tests can assert on what the client sent.

Routes (WebSocket only; any other path is answered with HTTP 404 at the handshake)::

    /ws/execution-processes                        monitor events (JSON)
    /ws/execution-processes/{id}/logs/raw          raw text frames
    /ws/execution-processes/{id}/logs/normalized   JSON log objects
    /ws/task-attempts/{id}/diff                    JSON diff_update objects

Stream model: a connection's frames are a *script* of items computed when it opens. The
number of scripted items already sent is the stream position ``k`` (0 before the first
item). At each position, in this order: the ``Fault.inject`` frames for ``k`` are sent,
then ``drop_after`` / ``close_after`` / ``stall_after`` equal to ``k`` fire, then item
``k`` is sent (after its pacing delay). Injected frames and pongs are never counted. Like
the real product, every (re)connection replays the whole script from the start.

Run ``python tests/reference_server.py [--port N] [--token T]`` to try it by hand: it
serves :func:`default_scenario` and prints its base URL on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import http
import json
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any, Final, Literal, Self, TypeAlias, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

__all__ = [
    "ATTEMPT_ID",
    "PONG",
    "PROC_FINISHED",
    "PROC_LIVE",
    "PROC_RAW",
    "SCENARIO_EVENTS",
    "SPEC_DIFF_UPDATE",
    "SPEC_LOG",
    "SPEC_LOG_LEVELS",
    "SPEC_PROCESS_COMPLETED",
    "SPEC_PROCESS_FAILED",
    "SPEC_PROCESS_PROGRESS",
    "SPEC_PROCESS_STARTED",
    "SPEC_PROCESS_STOPPED",
    "SPEC_RAW_LINES",
    "UNKNOWN_EVENT",
    "Attempt",
    "ConnectionRecord",
    "Fault",
    "Process",
    "ReferenceServer",
    "Scenario",
    "ThreadedReferenceServer",
    "default_scenario",
]

Frame: TypeAlias = str | bytes
JSONObject: TypeAlias = dict[str, Any]
RouteKind: TypeAlias = Literal["monitor", "raw", "normalized", "diff"]
T = TypeVar("T")

HOST: Final = "127.0.0.1"
PONG: Final = '{"type":"pong"}'

# --------------------------------------------------------------------------------------
# The spec's example payloads, verbatim.
# --------------------------------------------------------------------------------------

SPEC_LOG: Final[JSONObject] = {
    "level": "info",
    "message": "Installing dependencies",
    "timestamp": "2024-01-15T10:30:15Z",
    "source": "executor",
    "metadata": {"stage": "setup", "progress": 15},
}

SPEC_LOG_LEVELS: Final[tuple[str, ...]] = ("debug", "info", "warn", "error", "success")

SPEC_RAW_LINES: Final[tuple[str, ...]] = (
    "Installing dependencies...",
    "npm install",
    "✓ Installed 245 packages",
    "Running tests...",
    "✓ All tests passed (12/12)",
)

SPEC_PROCESS_STARTED: Final[JSONObject] = {
    "type": "process_started",
    "processId": "proc_abc123",
    "taskAttemptId": "attempt_xyz789",
    "executor": "CLAUDE_CODE",
    "startedAt": "2024-01-15T10:30:00Z",
}

SPEC_PROCESS_PROGRESS: Final[JSONObject] = {
    "type": "process_progress",
    "processId": "proc_abc123",
    "progress": {
        "percentage": 65,
        "stage": "code_generation",
        "message": "Generating authentication logic",
        "estimatedRemaining": 25000,
    },
}

SPEC_PROCESS_COMPLETED: Final[JSONObject] = {
    "type": "process_completed",
    "processId": "proc_abc123",
    "completedAt": "2024-01-15T10:45:00Z",
    "duration": 900000,
    "exitCode": 0,
    "stats": {"filesChanged": 8, "linesAdded": 245, "linesRemoved": 12},
}

SPEC_PROCESS_FAILED: Final[JSONObject] = {
    "type": "process_failed",
    "processId": "proc_abc123",
    "failedAt": "2024-01-15T10:35:00Z",
    "error": {
        "code": "EXECUTION_ERROR",
        "message": "Compilation failed",
        "details": "TypeError: Cannot read property 'map' of undefined",
    },
}

SPEC_PROCESS_STOPPED: Final[JSONObject] = {
    "type": "process_stopped",
    "processId": "proc_abc123",
    "stoppedAt": "2024-01-15T10:35:00Z",
    "stoppedBy": "user@example.com",
    "reason": "Manual stop requested",
}

SPEC_DIFF_UPDATE: Final[JSONObject] = {
    "type": "diff_update",
    "attemptId": "attempt_abc123",
    "diff": (
        "diff --git a/src/auth.ts b/src/auth.ts\nindex abc123..def456 100644\n"
        "--- a/src/auth.ts\n+++ b/src/auth.ts\n@@ -1,5 +1,10 @@\n"
        "+import jwt from 'jsonwebtoken';\n+"
    ),
    "filesChanged": 3,
    "insertions": 125,
    "deletions": 8,
    "timestamp": "2024-01-15T10:35:00Z",
}

# Not in the spec: a monitor event type a client must tolerate (skip or pass through).
UNKNOWN_EVENT: Final[JSONObject] = {
    "type": "process_paused",
    "processId": "proc_abc123",
    "pausedAt": "2024-01-15T10:40:00Z",
}

PROC_FINISHED: Final = "proc_abc123"
PROC_LIVE: Final = "proc_live"
PROC_RAW: Final = "proc_raw"
ATTEMPT_ID: Final = "attempt_abc123"

# --------------------------------------------------------------------------------------
# Data model
# --------------------------------------------------------------------------------------


@dataclass
class Process:
    """An execution process as the log routes serve it.

    On connect the history (``logs`` on the normalized route, ``raw`` on the raw route) is
    sent at once. A finished process then closes with 1000. A running one
    (``finished=False``) sends its ``live_*`` items, each preceded by ``live_interval``
    seconds, and then closes with 1000 (it has finished) unless ``hold_open`` keeps the
    socket open until the client leaves. Items that are already ``str``/``bytes`` are sent
    verbatim on either route; anything else is JSON-encoded.
    """

    id: str
    logs: list[JSONObject] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    finished: bool = True
    live_logs: list[JSONObject] = field(default_factory=list)
    live_raw: list[str] = field(default_factory=list)
    live_interval: float = 0.01
    hold_open: bool = False


@dataclass
class Attempt:
    """A task attempt: the first diff is sent at once, each later one after ``live_interval``.

    A live attempt never ends, so the socket stays open after the last diff unless
    ``hold_open=False`` (then it closes with 1000).
    """

    id: str
    diffs: list[JSONObject] = field(default_factory=list)
    live_interval: float = 0.01
    hold_open: bool = True


@dataclass
class Fault:
    """Misbehaviour for one (or more) future connections.

    ``server.faults`` is a queue: each incoming handshake takes the first fault whose
    ``path`` matches (``None`` matches every path; otherwise the exact request path
    without the query). A fault is used by ``times`` handshakes, then removed from the
    queue; ``times=None`` keeps it forever (applies to every matching connection).
    ``applied`` counts the handshakes that took it. Handshakes failed by
    ``server.fail_next_handshakes`` do not consume faults.

    Positions (``*_after``, ``inject``) count scripted items sent on that connection; see
    the module docstring for the order at each position.
    """

    # After N items: abort the TCP connection, no close frame (the client sees 1006).
    drop_after: int | None = None
    # After N items: close with (N, code), e.g. (2, 1011), and ``close_reason``.
    close_after: tuple[int, int] | None = None
    close_reason: str = ""
    # After N items: send nothing more, answer no pings (app or protocol level: the
    # server stops reading the socket), keep the TCP connection open.
    stall_after: int | None = None
    # Extra raw frames (text or binary) sent when the stream reaches a position; a
    # position past the end is sent after the last item.
    inject: list[tuple[int, Frame]] = field(default_factory=list)
    # Complete the handshake, then never send a frame (nor app pongs). The server still
    # reads, so protocol-level pings are answered and client messages recorded.
    accept_then_silent: bool = False
    # Don't answer {"type":"ping"} on this connection (everything else unchanged).
    ignore_pings: bool = False
    # Answer the handshake with this HTTP status instead (e.g. 500, 503, or 200 with an
    # HTML page to mimic a web UI answering the upgrade request).
    handshake_status: int | None = None
    handshake_body: str | bytes = ""
    handshake_content_type: str = "text/plain; charset=utf-8"
    handshake_headers: dict[str, str] = field(default_factory=dict)
    # Sleep this long before answering the handshake (for open-timeout tests).
    handshake_delay: float = 0.0
    path: str | None = None
    times: int | None = 1
    applied: int = 0


@dataclass
class ConnectionRecord:
    """One handshake attempt and, if it was accepted, its WebSocket connection."""

    path: str  # request path without the query string
    query: dict[str, str]  # first value of each query parameter
    headers: Headers  # request headers (case-insensitive lookups)
    cookies: dict[str, str]
    token: str | None  # ?token= if present, else the ``token`` cookie
    route: RouteKind | None  # None when the path matched no route
    target_id: str | None  # process or attempt id from the path
    status: int = 101  # handshake answer: 101 when accepted, else the HTTP status
    fault: Fault | None = None
    messages: list[Frame] = field(default_factory=list)  # everything the client sent
    sent: list[Frame] = field(default_factory=list)  # data frames sent (incl. pongs)
    items_sent: int = 0  # scripted items sent (the stream position)
    pongs_sent: int = 0
    closed_by: Literal["server", "client"] | None = None  # None: no closing handshake
    close_code: int | None = None  # code of the closing handshake, None if none
    close_reason: str | None = None
    dropped: bool = False  # drop_after fired (or stop(abort=True))
    stalled: bool = False
    done: bool = False  # the connection is over (or the handshake was rejected)

    @property
    def accepted(self) -> bool:
        return self.status == 101


@dataclass
class Scenario:
    """A server state: what the routes serve."""

    processes: dict[str, Process] = field(default_factory=dict)
    attempts: dict[str, Attempt] = field(default_factory=dict)
    events: list[JSONObject] = field(default_factory=list)
    event_interval: float = 0.0


def _log(level: str, message: str, ts: str, **extra: Any) -> JSONObject:
    return {
        "level": level,
        "message": message,
        "timestamp": ts,
        "source": "executor",
        **extra,
    }


#: The monitor stream of :func:`default_scenario`, in order.
SCENARIO_EVENTS: Final[list[JSONObject]] = [
    SPEC_PROCESS_STARTED,
    SPEC_PROCESS_PROGRESS,
    UNKNOWN_EVENT,
    SPEC_PROCESS_COMPLETED,
    SPEC_PROCESS_FAILED,
    SPEC_PROCESS_STOPPED,
]


def default_scenario(live_interval: float = 0.01) -> Scenario:
    """The spec's examples as a server state (fresh copies on every call).

    - ``proc_abc123`` finished: one normalized log of every level (the ``info`` one is the
      spec's example; ``debug`` has no ``metadata`` key, ``error`` has ``"metadata": null``)
      and the spec's raw output lines.
    - ``proc_live`` running: 1 history log + 3 live logs, 1 raw line + 3 live raw lines,
      then closes 1000.
    - ``proc_raw`` running, raw only: the spec's first two raw lines, then three live ones
      (the last one carries ANSI colour escapes), then closes 1000.
    - ``attempt_abc123``: the spec's diff_update, then a second one; stays open.
    - monitor: started, progress, an unknown ``process_paused``, completed, failed, stopped.
    """
    spec_log = copy.deepcopy(SPEC_LOG)
    finished = Process(
        id=PROC_FINISHED,
        logs=[
            _log("debug", "Resolved executor CLAUDE_CODE", "2024-01-15T10:30:01Z"),
            spec_log,
            _log(
                "warn",
                "Deprecated API used in src/auth.ts",
                "2024-01-15T10:31:00Z",
                metadata={"file": "src/auth.ts", "line": 42},
            ),
            _log("error", "Test flaked, retrying", "2024-01-15T10:32:00Z", metadata=None),
            _log(
                "success",
                "All tests passed",
                "2024-01-15T10:33:00Z",
                metadata={"stage": "test", "progress": 100},
            ),
        ],
        raw=list(SPEC_RAW_LINES),
    )
    live = Process(
        id=PROC_LIVE,
        logs=[_log("info", "Starting coding agent", "2024-01-15T11:00:00Z")],
        raw=["Starting coding agent..."],
        finished=False,
        live_logs=[
            _log(
                "info",
                f"Step {n} of 3",
                f"2024-01-15T11:00:0{n}Z",
                metadata={"stage": "code_generation", "progress": n * 33},
            )
            for n in (1, 2, 3)
        ],
        live_raw=[f"step {n}/3" for n in (1, 2, 3)],
        live_interval=live_interval,
    )
    raw_only = Process(
        id=PROC_RAW,
        raw=list(SPEC_RAW_LINES[:2]),
        finished=False,
        live_raw=[*SPEC_RAW_LINES[2:4], "\x1b[32m" + SPEC_RAW_LINES[4] + "\x1b[0m"],
        live_interval=live_interval,
    )
    second_diff = copy.deepcopy(SPEC_DIFF_UPDATE)
    second_diff.update(
        diff=(
            "diff --git a/src/login.ts b/src/login.ts\nnew file mode 100644\n"
            "--- /dev/null\n+++ b/src/login.ts\n@@ -0,0 +1,2 @@\n"
            "+export const login = () => null;\n+"
        ),
        filesChanged=4,
        insertions=127,
        deletions=8,
        timestamp="2024-01-15T10:36:00Z",
    )
    attempt = Attempt(
        id=ATTEMPT_ID,
        diffs=[copy.deepcopy(SPEC_DIFF_UPDATE), second_diff],
        live_interval=live_interval,
    )
    events = copy.deepcopy(SCENARIO_EVENTS)
    return Scenario(
        processes={p.id: p for p in (finished, live, raw_only)},
        attempts={attempt.id: attempt},
        events=events,
    )


# --------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------

_LOGS_ROUTE: Final = re.compile(r"/ws/execution-processes/([^/]+)/logs/(raw|normalized)")
_DIFF_ROUTE: Final = re.compile(r"/ws/task-attempts/([^/]+)/diff")
_MONITOR_ROUTE: Final = "/ws/execution-processes"


@dataclass
class _Script:
    items: list[tuple[float, Frame]]  # (delay before sending, frame)
    hold_open: bool


@dataclass
class _Live:
    """Per-connection state between the handshake and the end of the handler."""

    record: ConnectionRecord
    fault: Fault
    conn: ServerConnection | None = None
    silent: bool = False
    reader: asyncio.Task[None] | None = None


def _encode(item: object) -> Frame:
    if isinstance(item, (str, bytes)):
        return item
    return json.dumps(item, ensure_ascii=False)


def _is_app_ping(message: Frame) -> bool:
    if not isinstance(message, str) or '"ping"' not in message:
        return False
    try:
        decoded = json.loads(message)
    except ValueError:
        return False
    return isinstance(decoded, dict) and decoded.get("type") == "ping"


def _reason_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _http_response(
    status: int,
    body: str | bytes = "",
    content_type: str = "text/plain; charset=utf-8",
    extra_headers: dict[str, str] | None = None,
) -> Response:
    payload = body.encode() if isinstance(body, str) else body
    headers = Headers(
        [
            ("Connection", "close"),
            ("Content-Length", str(len(payload))),
            ("Content-Type", content_type),
        ]
    )
    for name, value in (extra_headers or {}).items():
        headers[name] = value
    return Response(status, _reason_phrase(status), headers, payload)


class ReferenceServer:
    """The documented API on 127.0.0.1, scripted by tests.

    ``async with ReferenceServer(token=None) as srv:`` starts it on a free port. State
    (``processes``, ``attempts``, ``events``, ``faults``...) is read when a connection
    opens, so tests may change it at any time before connecting.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        scenario: Scenario | None = None,
        forbidden_tokens: set[str] | None = None,
        faults: list[Fault] | None = None,
        port: int = 0,
        compression: str | None = None,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        close_timeout: float = 1.0,
        answer_pings: bool = True,
        monitor_hold_open: bool = True,
    ) -> None:
        scenario = scenario if scenario is not None else Scenario()
        self.token = token
        self.forbidden_tokens: set[str] = set(forbidden_tokens or ())
        self.processes: dict[str, Process] = scenario.processes
        self.attempts: dict[str, Attempt] = scenario.attempts
        self.events: list[JSONObject] = scenario.events
        self.event_interval: float = scenario.event_interval
        self.monitor_hold_open = monitor_hold_open
        self.answer_pings = answer_pings
        self.faults: list[Fault] = list(faults or ())
        self.fail_next_handshakes = 0
        self.connections: list[ConnectionRecord] = []
        self.compression = compression
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self._port = port
        self._server: Server | None = None
        self._live: dict[ServerConnection, _Live] = {}

    # -- lifecycle ------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """Base URL as a user would give it to forgectl: ``http://127.0.0.1:PORT``."""
        return f"http://{HOST}:{self._port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT`` (routes start with ``/ws/...``)."""
        return f"ws://{HOST}:{self._port}"

    def ws(self, path: str) -> str:
        """Full WebSocket URL of a path, e.g. ``srv.ws("/ws/execution-processes")``."""
        return self.ws_url + path

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await serve(
            self._handler,
            HOST,
            self._port,
            process_request=self._process_request,
            process_response=self._process_response,
            compression=self.compression,
            max_size=None,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            close_timeout=self.close_timeout,
        )
        if self._port == 0:
            self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self, *, abort: bool = False) -> None:
        """Stop listening and end every connection.

        Open connections get a 1001 close (a server going away), or, with ``abort=True``,
        lose their TCP connection without a close frame (a crash). Stalled connections
        are always aborted since they no longer read.
        """
        server, self._server = self._server, None
        if server is None:
            return
        for live in list(self._live.values()):
            if live.conn is not None and (abort or live.record.stalled):
                live.record.dropped = live.record.dropped or abort
                live.conn.transport.abort()
        server.close()
        await server.wait_closed()

    async def restart(self, *, delay: float = 0.0, abort: bool = False) -> None:
        """Stop, wait ``delay`` seconds, start again on the same port with the same state."""
        await self.stop(abort=abort)
        if delay:
            await asyncio.sleep(delay)
        await self.start()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- helpers for tests ----------------------------------------------------------

    def load(self, scenario: Scenario) -> None:
        """Replace the served state."""
        self.processes = scenario.processes
        self.attempts = scenario.attempts
        self.events = scenario.events
        self.event_interval = scenario.event_interval

    @property
    def accepted(self) -> list[ConnectionRecord]:
        """Records of the connections whose handshake succeeded."""
        return [rec for rec in self.connections if rec.accepted]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Poll ``predicate`` until true; raise TimeoutError after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.005)

    async def wait_for_connections(self, n: int, timeout: float = 5.0) -> list[ConnectionRecord]:
        """Wait until at least ``n`` handshakes were received; return all records."""
        await self.wait_until(lambda: len(self.connections) >= n, timeout)
        return self.connections

    async def wait_all_done(self, timeout: float = 5.0) -> None:
        """Wait until every recorded connection is over."""
        await self.wait_until(lambda: all(rec.done for rec in self.connections), timeout)

    # -- handshake ------------------------------------------------------------------

    def _take_fault(self, path: str) -> Fault:
        for fault in self.faults:
            if fault.path is None or fault.path == path:
                fault.applied += 1
                if fault.times is not None and fault.applied >= fault.times:
                    self.faults.remove(fault)
                return fault
        return Fault()

    def _route(self, path: str) -> tuple[RouteKind, str | None] | None:
        if path == _MONITOR_ROUTE:
            return "monitor", None
        if match := _LOGS_ROUTE.fullmatch(path):
            kind: RouteKind = "raw" if match[2] == "raw" else "normalized"
            return kind, unquote(match[1])
        if match := _DIFF_ROUTE.fullmatch(path):
            return "diff", unquote(match[1])
        return None

    def _auth_status(self, rec: ConnectionRecord) -> int | None:
        presented = {t for t in (rec.query.get("token"), rec.cookies.get("token")) if t}
        if self.token is not None and self.token in presented:
            return None
        if presented & self.forbidden_tokens:
            return 403
        if self.token is not None:
            return 401
        return None

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        split = urlsplit(request.path)
        path = split.path
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        cookies: dict[str, str] = {}
        for header in request.headers.get_all("Cookie"):
            jar: SimpleCookie = SimpleCookie()
            with contextlib.suppress(CookieError):
                jar.load(header)
            cookies.update({name: morsel.value for name, morsel in jar.items()})
        route = self._route(path)
        rec = ConnectionRecord(
            path=path,
            query=query,
            headers=Headers(request.headers.raw_items()),
            cookies=cookies,
            token=query.get("token") or cookies.get("token"),
            route=route[0] if route else None,
            target_id=route[1] if route else None,
        )
        self.connections.append(rec)

        def reject(status: int, text: str) -> Response:
            rec.status = status
            rec.done = True
            return _http_response(status, text)

        if self.fail_next_handshakes > 0:
            self.fail_next_handshakes -= 1
            return reject(503, "Service Unavailable\n")

        fault = self._take_fault(path)
        rec.fault = fault if fault.applied else None
        if fault.handshake_delay:
            await asyncio.sleep(fault.handshake_delay)
        if fault.handshake_status is not None:
            rec.status = fault.handshake_status
            rec.done = True
            return _http_response(
                fault.handshake_status,
                fault.handshake_body,
                fault.handshake_content_type,
                fault.handshake_headers,
            )
        if route is None:
            return reject(404, f"Not Found: {path}\n")
        if (status := self._auth_status(rec)) is not None:
            return reject(status, f"{http.HTTPStatus(status).phrase}\n")
        kind, target = route
        if kind in ("raw", "normalized") and target not in self.processes:
            return reject(404, f"Execution process not found: {target}\n")
        if kind == "diff" and target not in self.attempts:
            return reject(404, f"Task attempt not found: {target}\n")
        self._live[conn] = _Live(record=rec, fault=fault)
        return None

    def _process_response(
        self, conn: ServerConnection, request: Request, response: Response
    ) -> None:
        # The handshake may still fail after process_request accepted it (e.g. the
        # server started closing): keep the record truthful.
        live = self._live.get(conn)
        if live is not None and response.status_code != 101:
            live.record.status = response.status_code
            live.record.done = True
            del self._live[conn]

    # -- connection -----------------------------------------------------------------

    def _script(self, rec: ConnectionRecord) -> _Script:
        if rec.route == "monitor":
            events = [
                (self.event_interval if i else 0.0, _encode(e)) for i, e in enumerate(self.events)
            ]
            return _Script(events, self.monitor_hold_open)
        if rec.route == "diff":
            attempt = self.attempts[str(rec.target_id)]
            diffs = [
                (attempt.live_interval if i else 0.0, _encode(d))
                for i, d in enumerate(attempt.diffs)
            ]
            return _Script(diffs, attempt.hold_open)
        proc = self.processes[str(rec.target_id)]
        history: list[Any] = proc.raw if rec.route == "raw" else proc.logs
        items = [(0.0, _encode(item)) for item in history]
        if proc.finished:
            return _Script(items, hold_open=False)
        live: list[Any] = proc.live_raw if rec.route == "raw" else proc.live_logs
        items += [(proc.live_interval, _encode(item)) for item in live]
        return _Script(items, proc.hold_open)

    async def _send(self, live: _Live, conn: ServerConnection, frame: Frame) -> None:
        await conn.send(frame)
        live.record.sent.append(frame)

    async def _reader(self, live: _Live, conn: ServerConnection) -> None:
        rec = live.record
        with contextlib.suppress(ConnectionClosed):
            async for message in conn:
                rec.messages.append(message)
                if (
                    _is_app_ping(message)
                    and self.answer_pings
                    and not live.fault.ignore_pings
                    and not live.silent
                    and not rec.stalled
                ):
                    await self._send(live, conn, PONG)
                    rec.pongs_sent += 1

    async def _flush(self, conn: ServerConnection, timeout: float = 2.0) -> None:
        # transport.abort() discards buffered bytes: make sure the frames we claim to
        # have sent before a drop really left.
        deadline = time.monotonic() + timeout
        while conn.transport.get_write_buffer_size() and time.monotonic() < deadline:
            await asyncio.sleep(0.001)

    async def _stream(self, live: _Live, conn: ServerConnection) -> None:
        rec, fault = live.record, live.fault
        script = self._script(rec)
        end = len(script.items)
        for k in range(end + 1):
            for position, frame in fault.inject:
                if position == k or (k == end and position > end):
                    await self._send(live, conn, frame)
            if fault.drop_after == k:
                await self._flush(conn)
                rec.dropped = True
                conn.transport.abort()
                return
            if fault.close_after is not None and fault.close_after[0] == k:
                await conn.close(fault.close_after[1], fault.close_reason)
                return
            if fault.stall_after == k:
                rec.stalled = True
                if live.reader is not None:
                    live.reader.cancel()
                conn.transport.pause_reading()
                return
            if k == end:
                break
            delay, frame = script.items[k]
            if delay > 0:
                # Wake up early if the client leaves, so its record is finished promptly.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(conn.wait_closed(), delay)
            await self._send(live, conn, frame)
            rec.items_sent += 1
        if not script.hold_open:
            await conn.close(1000)

    async def _handler(self, conn: ServerConnection) -> None:
        live = self._live.get(conn)
        if live is None:  # pragma: no cover - process_request always registers it
            return
        live.conn = conn
        rec = live.record
        live.reader = asyncio.create_task(self._reader(live, conn))
        try:
            if live.fault.accept_then_silent:
                live.silent = True
            else:
                await self._stream(live, conn)
            await conn.wait_closed()
        except ConnectionClosed:
            await conn.wait_closed()
        finally:
            live.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await live.reader
            protocol = conn.protocol
            if protocol.close_rcvd_then_sent:
                rec.closed_by = "client"
                assert protocol.close_rcvd is not None
                rec.close_code, rec.close_reason = (
                    protocol.close_rcvd.code,
                    protocol.close_rcvd.reason,
                )
            elif protocol.close_sent is not None and not rec.dropped:
                rec.closed_by = "server"
                rec.close_code, rec.close_reason = (
                    protocol.close_sent.code,
                    protocol.close_sent.reason,
                )
            rec.done = True
            self._live.pop(conn, None)


# --------------------------------------------------------------------------------------
# Threaded wrapper for synchronous tests (CliRunner, subprocesses)
# --------------------------------------------------------------------------------------


class ThreadedReferenceServer:
    """A :class:`ReferenceServer` on its own event loop in a daemon thread.

    ``with ThreadedReferenceServer(token="t", scenario=default_scenario()) as srv:`` takes
    the same arguments and exposes the same state. Mutating state from the test thread
    is fine before a client connects (plain attribute writes and list appends); to
    change something while connections are live, use :meth:`call`.
    """

    def __init__(self, token: str | None = None, **kwargs: Any) -> None:
        self.server = ReferenceServer(token, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        assert self._loop is not None, "server thread not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop thread and return its result."""

        async def run() -> T:
            return fn()

        return self._run(run())

    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="reference-server", daemon=True
            )
            self._thread.start()
        self._run(self.server.start())

    def stop(self, *, abort: bool = False) -> None:
        if self._loop is not None:
            self._run(self.server.stop(abort=abort))

    def restart(self, *, delay: float = 0.0, abort: bool = False) -> None:
        self._run(self.server.restart(delay=delay, abort=abort))

    def close(self) -> None:
        """Stop the server and the loop thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self.stop()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            if not thread.is_alive():
                loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            time.sleep(0.005)

    def wait_for_connections(self, n: int, timeout: float = 5.0) -> list[ConnectionRecord]:
        self.wait_until(lambda: len(self.server.connections) >= n, timeout)
        return self.server.connections

    def wait_all_done(self, timeout: float = 5.0) -> None:
        self.wait_until(lambda: all(rec.done for rec in self.server.connections), timeout)

    def ws(self, path: str) -> str:
        return self.server.ws(path)

    def load(self, scenario: Scenario) -> None:
        self.server.load(scenario)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ws_url(self) -> str:
        return self.server.ws_url

    @property
    def processes(self) -> dict[str, Process]:
        return self.server.processes

    @property
    def attempts(self) -> dict[str, Attempt]:
        return self.server.attempts

    @property
    def events(self) -> list[JSONObject]:
        return self.server.events

    @property
    def faults(self) -> list[Fault]:
        return self.server.faults

    @property
    def connections(self) -> list[ConnectionRecord]:
        return self.server.connections

    @property
    def accepted(self) -> list[ConnectionRecord]:
        return self.server.accepted

    @property
    def token(self) -> str | None:
        return self.server.token

    @token.setter
    def token(self, value: str | None) -> None:
        self.server.token = value

    @property
    def forbidden_tokens(self) -> set[str]:
        return self.server.forbidden_tokens

    @property
    def fail_next_handshakes(self) -> int:
        return self.server.fail_next_handshakes

    @fail_next_handshakes.setter
    def fail_next_handshakes(self, value: int) -> None:
        self.server.fail_next_handshakes = value

    @property
    def answer_pings(self) -> bool:
        return self.server.answer_pings

    @answer_pings.setter
    def answer_pings(self, value: bool) -> None:
        self.server.answer_pings = value

    @property
    def event_interval(self) -> float:
        return self.server.event_interval

    @event_interval.setter
    def event_interval(self, value: float) -> None:
        self.server.event_interval = value

    @property
    def monitor_hold_open(self) -> bool:
        return self.server.monitor_hold_open

    @monitor_hold_open.setter
    def monitor_hold_open(self, value: bool) -> None:
        self.server.monitor_hold_open = value


# --------------------------------------------------------------------------------------
# Standalone
# --------------------------------------------------------------------------------------


async def _serve_forever(port: int, token: str | None, interval: float) -> None:
    async with ReferenceServer(token, scenario=default_scenario(interval), port=port) as srv:
        print(srv.url, flush=True)
        print(
            f"routes: {srv.ws_url}/ws/execution-processes[/{{id}}/logs/raw|normalized], "
            f"{srv.ws_url}/ws/task-attempts/{{id}}/diff; processes: "
            f"{', '.join(srv.processes)}; attempts: {', '.join(srv.attempts)}",
            file=sys.stderr,
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the spec's example data on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--token", default=None, help="require ?token=T or a token=T cookie")
    parser.add_argument(
        "--interval",
        type=float,
        default=0.5,
        help="seconds between live items (default 0.5)",
    )
    args = parser.parse_args(argv)
    asyncio.run(_serve_forever(args.port, args.token, args.interval))
    return 0


if __name__ == "__main__":
    sys.exit(main())
