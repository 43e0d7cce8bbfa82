"""A fast loopback stream server for the benchmarks.

Run as ``python bench/server.py``: it listens on 127.0.0.1, port 0, prints the
port on stdout, and serves until its stdin closes. The process id in the path
says what to send: ``b-<count>-<size>`` sends ``count`` frames of ``size``
bytes (the documented routes; the JSON Patch routes wrap a message of the same
size). Routes:

- ``/ws/execution-processes/ID/logs/normalized``: JSON log objects, then close 1000
- ``/ws/execution-processes/ID/logs/raw``: text lines (newline included), then close 1000
- ``/api/execution-processes/ID/normalized-logs/ws``: ``{"JsonPatch":[add /entries/N
  NORMALIZED_ENTRY]}`` frames, then ``{"finished":true}``
- ``/api/execution-processes/ID/raw-logs/ws``: the same with ``{"type":"STDOUT",...}``
- the same route with ``a-<count>-<size>``: a coding agent's stream, each entry
  in VERSIONS versions (``add``, then ``replace`` ops with ever more of its text,
  as the real server streams an agent's message), the last one the text the
  ``b-`` stream sends
- ``/b-<count>-0/ws/execution-processes`` (the id is the server URL's base path,
  as ``forgectl -s http://127.0.0.1:PORT/b-10000-0`` builds it): the history of
  ``count`` processes, each ``process_started`` then ``process_completed`` with
  eight running at a time, then silence with the socket open (the event stream
  never ends: a monitor decides when it has seen the history).

A line ``KIND COUNT SIZE`` on stdin builds that stream ahead of time and is
answered with ``ready`` on stdout, so no client is timed while it is built.

The handshake and the close go through websockets' sans-I/O ``ServerProtocol``;
data frames are encoded once per stream shape and written straight to the
transport in 1 MiB chunks, honouring flow control, so the server is never the
slower end (a slow reader only makes it wait).
"""

from __future__ import annotations

import asyncio
import re
import struct
import sys
from collections import OrderedDict
from collections.abc import Iterator

from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

CHUNK = 1 << 20
_ROUTES = {
    "/ws/execution-processes/{}/logs/normalized": "json",
    "/ws/execution-processes/{}/logs/raw": "raw",
    "/api/execution-processes/{}/normalized-logs/ws": "forge-json",
    "/api/execution-processes/{}/raw-logs/ws": "forge-raw",
    "/{}/ws/execution-processes": "monitor",
}
_PATTERNS = [
    (re.compile("^" + re.escape(route).replace(r"\{\}", r"([ab])-(\d+)-(\d+)") + "$"), kind)
    for route, kind in _ROUTES.items()
]
TIMESTAMP = "2026-01-01T00:00:00.000Z"


def route_of(path: str) -> tuple[str, int, int] | None:
    path = path.split("?", 1)[0]
    for pattern, kind in _PATTERNS:
        m = pattern.match(path)
        if m:
            if m.group(1) == "a":
                if kind != "forge-json":
                    return None
                kind = "forge-agent"
            return kind, int(m.group(2)), int(m.group(3))
    return None


def header(length: int) -> bytes:
    """A final, unmasked text frame header (server to client)."""
    if length < 126:
        return struct.pack("!BB", 0x81, length)
    if length < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, length)
    return struct.pack("!BBQ", 0x81, 127, length)


def message(i: int, width: int) -> str:
    head = f"line {i:07d} "
    return head + "x" * max(0, width - len(head))


def json_line(text: str) -> str:
    return (
        f'{{"level":"info","message":"{text}","timestamp":"{TIMESTAMP}",'
        '"source":"stdout","metadata":{}}'
    )


def json_payload(i: int, size: int) -> bytes:
    empty = json_line("")
    text = message(i, size - len(empty))
    return json_line(text).encode()


def raw_payload(i: int, size: int) -> bytes:
    return (message(i, size - 1) + "\n").encode()


def forge_json_payload(i: int, size: int, op: str = "add", part: float = 1.0) -> bytes:
    # The same message text as the documented frame of this size, in the real
    # server's shape (key order and null metadata as in tests/samples).
    empty = json_line("")
    text = message(i, size - len(empty))
    text = text[: round(len(text) * part)]
    return (
        f'{{"JsonPatch":[{{"op":"{op}","path":"/entries/{i}","value":{{"type":"NORMALIZED_ENTRY",'
        f'"content":{{"timestamp":"{TIMESTAMP}","entry_type":{{"type":"assistant_message"}},'
        f'"content":"{text}","metadata":null}}}}}}]}}'
    ).encode()


#: How many versions of each entry the agent stream sends.
VERSIONS = 4


def forge_agent_payloads(count: int, size: int) -> Iterator[bytes]:
    for i in range(count):
        yield forge_json_payload(i, size, "add", 1 / VERSIONS)
        for v in range(2, VERSIONS + 1):
            yield forge_json_payload(i, size, "replace", v / VERSIONS)
    yield FINISHED


def forge_raw_payload(i: int, size: int) -> bytes:
    text = message(i, size - 1)
    return (
        f'{{"JsonPatch":[{{"op":"add","path":"/entries/{i}","value":{{"type":"STDOUT",'
        f'"content":"{text}\\n"}}}}]}}'
    ).encode()


#: How many processes of the monitor stream run at once.
RUNNING = 8


def monitor_payloads(count: int) -> Iterator[bytes]:
    """Process k starts, then process k - RUNNING + 1 completes; the rest complete last."""
    for k in range(count):
        yield (
            f'{{"type":"process_started","processId":"proc-{k:07d}",'
            f'"taskAttemptId":"attempt-{k // 4:06d}","executor":"CLAUDE_CODE",'
            f'"startedAt":"{TIMESTAMP}"}}'
        ).encode()
        if k >= RUNNING - 1:
            yield completed_payload(k - RUNNING + 1)
    for k in range(max(0, count - RUNNING + 1), count):
        yield completed_payload(k)


def completed_payload(k: int) -> bytes:
    return (
        f'{{"type":"process_completed","processId":"proc-{k:07d}",'
        f'"completedAt":"{TIMESTAMP}","duration":900000,"exitCode":0}}'
    ).encode()


FINISHED = b'{"finished":true}'
PAYLOADS = {
    "json": json_payload,
    "raw": raw_payload,
    "forge-json": forge_json_payload,
    "forge-raw": forge_raw_payload,
}


def payloads(kind: str, count: int, size: int) -> Iterator[bytes]:
    if kind == "monitor":
        yield from monitor_payloads(count)
        return
    if kind == "forge-agent":
        yield from forge_agent_payloads(count, size)
        return
    payload = PAYLOADS[kind]
    for i in range(count):
        yield payload(i, size)
    if kind.startswith("forge"):
        yield FINISHED


#: What the encoded streams kept for reuse may take, beside the newest one.
CACHE_BYTES = 768 << 20


class Blobs:
    """Encoded streams, built once per shape (the most recent kept, within CACHE_BYTES)."""

    def __init__(self) -> None:
        self.cache: OrderedDict[tuple[str, int, int], list[bytes]] = OrderedDict()

    def get(self, kind: str, count: int, size: int) -> list[bytes]:
        key = (kind, count, size)
        chunks = self.cache.get(key)
        if chunks is None:
            chunks = self.cache[key] = self.build(kind, count, size)
        self.cache.move_to_end(key)
        total = sum(len(c) for stream in self.cache.values() for c in stream)
        while len(self.cache) > 1 and total > CACHE_BYTES:
            _, dropped = self.cache.popitem(last=False)
            total -= sum(len(c) for c in dropped)
        return chunks

    @staticmethod
    def build(kind: str, count: int, size: int) -> list[bytes]:
        chunks: list[bytes] = []
        part: list[bytes] = []
        filled = 0
        for data in payloads(kind, count, size):
            part.append(header(len(data)))
            part.append(data)
            filled += len(data) + 2
            if filled >= CHUNK:
                chunks.append(b"".join(part))
                part = []
                filled = 0
        if part:
            chunks.append(b"".join(part))
        return chunks


BLOBS = Blobs()


class Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.ws = ServerProtocol(max_size=None)
        self.transport: asyncio.Transport | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=4 * CHUNK, low=CHUNK)

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Request):
                self.handshake(event)
        self.send_pending()

    def eof_received(self) -> None:
        self.ws.receive_eof()
        self.send_pending()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None:
            self.task.cancel()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def handshake(self, request: Request) -> None:
        route = route_of(request.path)
        if route is None:
            self.ws.send_response(self.ws.reject(404, "no such stream\n"))
            return
        self.ws.send_response(self.ws.accept(request))
        self.send_pending()
        if self.ws.state is State.OPEN:
            self.task = asyncio.get_running_loop().create_task(self.stream(*route))

    async def stream(self, kind: str, count: int, size: int) -> None:
        assert self.transport is not None
        for chunk in BLOBS.get(kind, count, size):
            if self.ws.state is not State.OPEN:
                return
            await self.writable.wait()
            self.transport.write(chunk)
        if kind in ("json", "raw") and self.ws.state is State.OPEN:
            # The documented log streams end with a normal close; the JSON Patch
            # ones with {"finished":true}, after which the client closes; the
            # event stream stays open until the client closes.
            self.ws.send_close(1000)
            self.send_pending()

    def send_pending(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for data in self.ws.data_to_send():
            if data:
                transport.write(data)
            else:
                transport.close()
                return
        if self.ws.close_expected():
            # Give the peer a moment to finish the closing handshake.
            asyncio.get_running_loop().call_later(2.0, transport.close)


async def main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Connection, "127.0.0.1", 0, backlog=64)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    # Build what the parent asks for; serve until it closes our stdin.
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        kind, count, size = line.split()
        BLOBS.get(kind, int(count), int(size))
        print("ready", flush=True)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
