"""A hostile stand-in for the real Forge server, on 127.0.0.1 port 0.

For what the real binary cannot be made to do on demand: junk frames at 20/s, a
frame whose bytes trickle in, a frame header announcing 300 MiB, a diff entry of the
wrong type, a REST answer that trickles, a resent history shorter than the first,
a first diff update that takes seconds. It speaks HTTP/1.1 and RFC 6455 by hand
(that is the point: a websockets server would not send a malformed or trickling
frame), just enough of the real server's API for forgectl to take it for one:

* ``GET /api/health`` and ``GET /health`` answer as 0.7.4 does;
* ``GET /api/execution-processes/{id}`` and ``GET /api/task-attempts/{id}`` answer
  from :attr:`HostileForge.processes` / :attr:`attempts` (records), else 404 empty;
* a WebSocket upgrade on a path that a handler was registered for (:meth:`route`)
  runs that handler with a :class:`RawWs`; any other path gets the web UI's answer
  (HTTP 200, HTML), as on the real server;
* :meth:`rest` registers a handler for a plain GET (to trickle an answer).

Pings from the client are answered (as the real server does) unless a handler says
``ws.answer_pings = False``. Runs in a thread of its own (:meth:`start` /
:meth:`close`, or ``with``), so a test can drive ``forgectl`` as a subprocess;
handlers are coroutines on the server's loop. :attr:`log` records every request line
and :attr:`connections` counts WebSocket connections per path.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import struct
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

__all__ = [
    "HostileForge",
    "RawWs",
    "frame",
    "json_answer_head",
    "normalized",
    "patch_add",
    "process_record",
]

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HTML = b"<!doctype html><html><head><title>Forge</title></head><body></body></html>"


def frame(payload: bytes, opcode: int = 1, *, length: int | None = None) -> bytes:
    """A server (unmasked) frame; ``length`` overrides the announced payload length."""
    n = len(payload) if length is None else length
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def patch_add(index: int, value: Any, op: str = "add") -> str:
    return json.dumps({"JsonPatch": [{"op": op, "path": f"/entries/{index}", "value": value}]})


def normalized(content: str, entry_type: str = "assistant_message") -> dict[str, Any]:
    return {
        "type": "NORMALIZED_ENTRY",
        "content": {
            "timestamp": None,
            "entry_type": {"type": entry_type},
            "content": content,
            "metadata": None,
        },
    }


def process_record(
    process_id: str, attempt_id: str, run_reason: str = "codingagent", status: str = "running"
) -> dict[str, Any]:
    return {
        "id": process_id,
        "task_attempt_id": attempt_id,
        "run_reason": run_reason,
        "executor_action": {"typ": {"type": "CodingAgentInitialRequest"}},
        "status": status,
        "exit_code": None if status == "running" else 0,
        "started_at": "2026-12-01T10:00:00.000Z",
        "completed_at": None,
        "created_at": "2026-12-01T10:00:00.000Z",
        "updated_at": "2026-12-01T10:00:00.000Z",
        "dropped": False,
        "before_head_commit": None,
        "after_head_commit": None,
    }


class RawWs:
    """One accepted WebSocket connection, written to by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.answer_pings = True
        self.pings = 0
        self.closed = asyncio.Event()
        self._reading = asyncio.get_running_loop().create_task(self._read())

    async def send_text(self, text: str) -> None:
        await self.send_raw(frame(text.encode()))

    async def send_raw(self, data: bytes, *, trickle: float | None = None, piece: int = 1) -> None:
        """Write bytes as they are; with ``trickle``, ``piece`` bytes every ``trickle`` s."""
        if trickle is None:
            self.writer.write(data)
            await self.writer.drain()
            return
        for i in range(0, len(data), piece):
            if self.closed.is_set():
                return
            self.writer.write(data[i : i + piece])
            await self.writer.drain()
            await asyncio.sleep(trickle)

    def drop(self) -> None:
        """Gone without a close frame (as the real server does when it stops)."""
        self.writer.transport.abort()
        self.closed.set()

    async def hold(self, seconds: float = 3600.0) -> None:
        """Keep the connection open (silent) until the client goes or ``seconds`` pass."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), seconds)

    async def _read(self) -> None:
        try:
            while True:
                b1, b2 = await self.reader.readexactly(2)
                n = b2 & 0x7F
                if n == 126:
                    (n,) = struct.unpack("!H", await self.reader.readexactly(2))
                elif n == 127:
                    (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
                mask = await self.reader.readexactly(4) if b2 & 0x80 else b"\0\0\0\0"
                data = bytes(
                    b ^ mask[i % 4] for i, b in enumerate(await self.reader.readexactly(n))
                )
                opcode = b1 & 0x0F
                if opcode == 0x9:
                    self.pings += 1
                    if self.answer_pings:
                        self.writer.write(frame(data, 0xA))
                elif opcode == 0x8:
                    with contextlib.suppress(ConnectionError):
                        self.writer.write(frame(data[:2], 0x8))
                        await self.writer.drain()
                    break
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.closed.set()


WsHandler = Callable[[RawWs, "re.Match[str]"], Awaitable[None]]
RestHandler = Callable[[asyncio.StreamWriter, "re.Match[str]"], Awaitable[None]]


class HostileForge:
    def __init__(self) -> None:
        self.processes: dict[str, dict[str, Any]] = {}
        self.attempts: dict[str, dict[str, Any]] = {}
        self._ws: list[tuple[re.Pattern[str], WsHandler]] = []
        self._rest: list[tuple[re.Pattern[str], RestHandler]] = []
        self.log: list[str] = []
        self.connections: Counter[str] = Counter()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, pattern: str, handler: WsHandler) -> None:
        """Serve WebSocket upgrades on paths matching ``pattern`` (no query string)."""
        self._ws.append((re.compile(pattern), handler))

    def rest(self, pattern: str, handler: RestHandler) -> None:
        self._rest.append((re.compile(pattern), handler))

    def requests(self, prefix: str = "") -> list[str]:
        with self._lock:
            return [line for line in self.log if line.split(" ", 2)[-1].startswith(prefix)]

    def ws_connections(self, pattern: str) -> int:
        with self._lock:
            return sum(n for path, n in self.connections.items() if re.search(pattern, path))

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(
                asyncio.start_server(self._serve, "127.0.0.1", 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            self._server.close()
            with contextlib.suppress(Exception):
                loop.run_until_complete(self._server.wait_closed())
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="hostile-forge")
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("hostile server did not start")
        return self

    def close(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- serving -----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A connection still open when the server closes ends normally, not cancelled:
        # asyncio logs an error for a cancelled client_connected_cb task.
        with contextlib.suppress(asyncio.CancelledError):
            await self._serve_one(reader, writer)

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target = lines[0].split(" ")[:2]
        headers = {
            k.strip().lower(): v.strip()
            for k, v in (h.split(":", 1) for h in lines[1:] if ":" in h)
        }
        path = target.split("?", 1)[0]
        with self._lock:
            self.log.append(f"{time.monotonic():.3f} {method} {target}")
        try:
            if headers.get("upgrade", "").lower() == "websocket":
                await self._upgrade(reader, writer, path, headers)
            else:
                await self._answer(writer, method, path)
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _upgrade(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        path: str,
        headers: dict[str, str],
    ) -> None:
        found = [(h, m) for p, h in self._ws if (m := p.fullmatch(path))]
        if not found:
            await _respond(writer, 200, "text/html", HTML)
            return
        handler, m = found[0]
        key = headers.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        writer.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        with self._lock:
            self.connections[path] += 1
        ws = RawWs(reader, writer)
        try:
            await handler(ws, m)
        finally:
            ws._reading.cancel()

    async def _answer(self, writer: asyncio.StreamWriter, method: str, path: str) -> None:
        for pattern, handler in self._rest:
            if m := pattern.fullmatch(path):
                await handler(writer, m)
                return
        if path == "/api/health":
            await _respond_json(
                writer, {"success": True, "data": "OK", "error_data": None, "message": None}
            )
        elif path == "/health":
            await _respond_json(
                writer, {"status": "ok", "service": "forge-app", "version": "0.7.4"}
            )
        elif m := re.fullmatch(r"/api/execution-processes/([^/]+)", path):
            await self._record(writer, self.processes.get(m.group(1)))
        elif m := re.fullmatch(r"/api/task-attempts/([^/]+)", path):
            await self._record(writer, self.attempts.get(m.group(1)))
        elif path.startswith("/api/"):
            await _respond(writer, 404, "", b"")
        else:
            await _respond(writer, 200, "text/html", HTML)

    async def _record(self, writer: asyncio.StreamWriter, record: dict[str, Any] | None) -> None:
        if record is None:
            await _respond(writer, 404, "", b"")
        else:
            await _respond_json(
                writer, {"success": True, "data": record, "error_data": None, "message": None}
            )


async def _respond(writer: asyncio.StreamWriter, status: int, ctype: str, body: bytes) -> None:
    reason = {200: "OK", 404: "Not Found"}.get(status, "Status")
    head = f"HTTP/1.1 {status} {reason}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n"
    if ctype:
        head += f"content-type: {ctype}\r\n"
    writer.write(head.encode() + b"\r\n" + body)
    await writer.drain()


async def _respond_json(writer: asyncio.StreamWriter, obj: Any) -> None:
    await _respond(writer, 200, "application/json", json.dumps(obj).encode())


def json_answer_head(length: int) -> bytes:
    """Headers of a 200 JSON answer of ``length`` bytes (for a handler that trickles)."""
    return (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n"
        "connection: close\r\n\r\n"
    ).encode()
