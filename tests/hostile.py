"""Hostile peers on loopback, for the hardening tests: real sockets, port 0.

- :class:`HostileServer`: a websockets server whose every path is scripted: an
  HTTP answer of any status and body (a response may echo the request, token
  included, as a careless server's error page does), or a WebSocket that sends
  given frames and closes with a given code and reason.
- :class:`RawServer`: answers whatever bytes it is given (a garbage status line).
- :class:`RecordingProxy`: an HTTP proxy (CONNECT tunnels and absolute-URI
  requests) that forwards for real and keeps every byte the client sent it.

Each runs on its own event loop in a daemon thread; ``with`` starts and stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import os
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

import orjson
from support import EXE, command_line, note
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

HOST = "127.0.0.1"
T = TypeVar("T")

#: What a hostile server puts in every text it controls: set the window title,
#: clear the screen, write to the clipboard (OSC 52), an 8-bit CSI asking the
#: terminal to answer, a DCS query, a fake line of forgectl's own, and a bidi override.
EVIL = (
    "\x1b]0;PWNED-TITLE\x07\x1b[2J\x1b[H\x1b]52;c;Y2xpcGJvYXJk\x07\x9b6n"
    "\x1bP+q544e\x1b\\\nforgectl: note: all good\u202eevil"
)
#: The escaped form of EVIL's start, which must be visible where EVIL was sent:
#: proof that the text got through, shown, not dropped.
EVIL_SHOWN = "\\x1b]0;PWNED-TITLE\\x07"


def inert(text: str) -> str | None:
    """The first character in ``text`` that a terminal would act on (C0 but tab and
    newline, DEL, C1, bidi controls), or None when there is none."""
    for char in text:
        code = ord(char)
        if char in "\t\n":
            continue
        if code < 0x20 or 0x7F <= code <= 0x9F or 0x202A <= code <= 0x202E:
            return repr(char)
        if 0x2066 <= code <= 0x2069:
            return repr(char)
    return None


class _LoopThread:
    """An event loop in a daemon thread, for servers driven from test code."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


# -- scripted answers --------------------------------------------------------------------


@dataclass
class Seen:
    """One request the server received."""

    path: str
    query: dict[str, str]
    headers: Headers
    target: str  # the request target as sent (path and query)


@dataclass
class Http:
    """Answer with this HTTP status and body; ``echo`` appends the request target
    and its Cookie header to the body (an error page that quotes the request)."""

    status: int
    body: str | bytes = ""
    content_type: str = "text/plain; charset=utf-8"
    echo: bool = False


def rest(data: Any, *, success: bool = True, message: str | None = None) -> Http:
    """A Forge REST envelope ``{success, data, message}``."""
    payload: dict[str, Any] = {"success": success, "data": data}
    if message is not None:
        payload["message"] = message
    return Http(200, orjson.dumps(payload), "application/json")


#: The real server's answer to ``GET /api/health``.
HEALTH = rest("OK", message=None)


@dataclass
class Frames:
    """Accept the WebSocket, send ``frames``, then close with ``code`` and
    ``reason`` (or, with ``hold``, stay open until the client leaves)."""

    frames: list[str | bytes] = field(default_factory=list)
    code: int = 1000
    reason: str = ""
    hold: bool = False


Answer = Http | Frames


def patches(*chunks: str, stream: str = "STDOUT") -> Frames:
    """The real server's raw-log stream: one JSON Patch ``add`` per chunk, then
    ``{"finished": true}``."""
    frames: list[str | bytes] = [
        orjson.dumps(
            {
                "JsonPatch": [
                    {
                        "op": "add",
                        "path": f"/entries/{i}",
                        "value": {"type": stream, "content": chunk},
                    }
                ]
            }
        ).decode()
        for i, chunk in enumerate(chunks)
    ]
    frames.append('{"finished":true}')
    return Frames(frames, hold=True)


class HostileServer:
    """``with HostileServer({"/ws/...": Frames([...]), "/api/x": Http(500, EVIL)})``.

    Paths are matched exactly (the query is ignored); anything else is 404.
    Every request is recorded in :attr:`seen`, in order.
    """

    def __init__(self, routes: Mapping[str, Answer] | None = None) -> None:
        self.routes: dict[str, Answer] = dict(routes or {})
        self.seen: list[Seen] = []
        self.port = 0
        self._thread: _LoopThread | None = None
        self._server: Any = None
        self._answers: dict[ServerConnection, Frames] = {}

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def paths(self) -> list[str]:
        return [seen.path for seen in self.seen]

    def __enter__(self) -> Self:
        self._thread = _LoopThread("hostile-server")
        self._thread.run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._thread is not None
        with contextlib.suppress(Exception):
            self._thread.run(self._stop())
        self._thread.close()

    async def _start(self) -> None:
        self._server = await serve(
            self._handler,
            HOST,
            0,
            process_request=self._process_request,
            max_size=None,
            ping_interval=None,
            close_timeout=1,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        split = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        self.seen.append(
            Seen(split.path, query, Headers(request.headers.raw_items()), request.path)
        )
        answer = self.routes.get(split.path)
        if answer is None:
            return _response(404, f"Not Found: {split.path}\n".encode(), "text/plain")
        if isinstance(answer, Http):
            body = answer.body.encode() if isinstance(answer.body, str) else answer.body
            if answer.echo:
                cookie = request.headers.get("Cookie", "")
                body += f" (while serving {request.path}; Cookie: {cookie})".encode()
            return _response(answer.status, body, answer.content_type)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _response(426, b"WebSocket only\n", "text/plain")
        self._answers[conn] = answer
        return None

    async def _handler(self, conn: ServerConnection) -> None:
        answer = self._answers.pop(conn, Frames())
        for frame in answer.frames:
            await conn.send(frame)
        if answer.hold:
            with contextlib.suppress(Exception):
                await conn.wait_closed()
            return
        await conn.close(answer.code, answer.reason)


def _response(status: int, body: bytes, content_type: str) -> Response:
    headers = Headers(
        [
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", content_type),
        ]
    )
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Whatever"
    return Response(status, phrase, headers, body)


# -- raw bytes -------------------------------------------------------------------------


class RawServer:
    """Reads a request head, answers ``answer`` verbatim, closes."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.port = 0
        self.received: list[bytes] = []
        self._thread: _LoopThread | None = None
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> Self:
        self._thread = _LoopThread("raw-server")
        self._thread.run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._thread is not None and self._server is not None
        self._server.close()
        self._thread.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            self.received.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(self.answer)
            await writer.drain()
        writer.close()


# -- a proxy that remembers ------------------------------------------------------------------


class RecordingProxy:
    """An HTTP proxy on loopback: ``CONNECT host:port`` tunnels and absolute-URI
    requests (``GET http://host:port/path``), forwarded for real. :attr:`received`
    holds every byte each client connection sent through it."""

    def __init__(self) -> None:
        self.port = 0
        self.received: list[bytearray] = []
        self._thread: _LoopThread | None = None
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def everything(self) -> bytes:
        return b"".join(bytes(chunk) for chunk in self.received)

    def __enter__(self) -> Self:
        self._thread = _LoopThread("recording-proxy")
        self._thread.run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._thread is not None and self._server is not None
        self._server.close()
        self._thread.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        record = bytearray()
        self.received.append(record)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            record += head
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                rest = b""
            else:  # GET http://host:port/path: forward in origin form
                parts = urlsplit(target)
                up_reader, up_writer = await asyncio.open_connection(
                    parts.hostname, parts.port or 80
                )
                origin = parts.path + (f"?{parts.query}" if parts.query else "")
                lines = head.split(b"\r\n")
                lines[0] = f"{method} {origin} HTTP/1.1".encode()
                rest = b"\r\n".join(lines)
            up_writer.write(rest)
            await asyncio.gather(_pipe(reader, up_writer, record), _pipe(up_reader, writer, None))
        except Exception:
            pass
        finally:
            writer.close()


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bytearray | None
) -> None:
    try:
        while data := await reader.read(65536):
            if record is not None:
                record += data
            writer.write(data)
            await writer.drain()
    except Exception:
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


# -- running forgectl against them -------------------------------------------------------

TESTS = Path(__file__).resolve().parent


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment (its isolated config dirs) minus FORGE_* and proxy
    variables, plus ``extra``; tests/ on PYTHONPATH for the keyring backends."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FORGE_", "_FORGECTL", "PYTHON_KEYRING"))
        and not k.lower().endswith("_proxy")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    return {**env, **extra}


@dataclass
class Run:
    code: int
    stdout: bytes
    stderr: str

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")


def forgectl(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    stdout: Any = subprocess.PIPE,
    prefix: tuple[str, ...] = (),
    timeout: float = 30,
) -> Run:
    """Run the installed console script; stdout and stderr apart."""
    done = subprocess.run(
        [*prefix, EXE, *args],
        input=stdin.encode() if stdin is not None else None,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=env if env is not None else clean_env(),
        timeout=timeout,
    )
    run = Run(done.returncode, done.stdout or b"", done.stderr.decode("utf-8", "replace"))
    note(f"{command_line(args)} (exit {run.code}): stderr", run.stderr)
    return run
