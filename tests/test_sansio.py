"""The sans-I/O transport (forgectl.transport.sansio) against websockets' asyncio client: same
output, same handshake errors, fragmentation, pings, bounded buffering, bad UTF-8."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import support
from reference_server import (
    PROC_FINISHED,
    PROC_LIVE,
    PROC_RAW,
    ThreadedReferenceServer,
    default_scenario,
)
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK
from websockets.frames import Close, Frame, Opcode
from websockets.server import ServerProtocol

from forgectl.constants import ENV_TRANSPORT
from forgectl.diagnostics import Diagnostics
from forgectl.dialects.base import Decoder, Dialect, Plan, StreamRequest
from forgectl.errors import ForgeError, StreamLost
from forgectl.stream import Stream, StreamOptions
from forgectl.transport import (
    Channel,
    Endpoint,
    Route,
    default_transport,
    proxy_applies,
    sansio,
    wsclient,
)
from forgectl.transport.wsclient import open_websocket
from forgectl.urls import parse_server

pytestmark = pytest.mark.timeout(60)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
PATH = "/ws/execution-processes/p1/logs/raw"


@contextlib.asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[int]:
    """A loopback TCP server running ``handler`` per connection; yields the port."""
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> ServerProtocol:
    """Complete a WebSocket handshake (no extensions); the open server protocol."""
    proto = ServerProtocol()
    proto.receive_data(await reader.readuntil(b"\r\n\r\n"))
    (request,) = proto.events_received()
    proto.send_response(proto.accept(request))  # type: ignore[arg-type]
    writer.write(b"".join(proto.data_to_send()))
    return proto


def frame(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin).serialize(mask=False, extensions=[])


async def client_frames(proto: ServerProtocol, reader: asyncio.StreamReader) -> list[Frame]:
    """Read what the client sent until it stops for 0.3 s; its frames."""
    with contextlib.suppress(TimeoutError):
        while True:
            data = await asyncio.wait_for(reader.read(65536), 0.3)
            if not data:
                break
            proto.receive_data(data)
    return [e for e in proto.events_received() if isinstance(e, Frame)]


def endpoint(port: int, open_timeout: float = 5.0) -> Endpoint:
    return Endpoint(parse_server(f"http://127.0.0.1:{port}"), open_timeout=open_timeout)


async def open_channel(kind: str, ep: Endpoint, **kwargs: Any) -> Channel:
    if kind == "sansio":
        return await sansio.open_sansio(ep, PATH, **kwargs)
    return await open_websocket(ep, PATH, **kwargs)


async def drain(channel: Channel) -> list[bytes]:
    """Every message until the connection closes (cleanly: else StreamLost)."""
    recv = channel.receiver()
    assert recv is not None
    got: list[bytes] = []
    try:
        while True:
            got.extend(await recv())
    except Exception as exc:
        channel.closed_by(exc)
    return got


TRANSPORTS = ["sansio", "websockets"]


# -- the CLI: both transports print the same -------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["logs", PROC_FINISHED, "--json"],
        ["logs", PROC_LIVE, "--follow", "--json"],
        ["logs", PROC_RAW, "--raw", "--follow"],
        ["logs", PROC_FINISHED],
    ],
    ids=["finished-json", "live-json", "raw", "pretty"],
)
def test_both_transports_print_the_same(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The same command prints the same bytes through either WebSocket client, and
    each run really went through the one it names (every connection it opened)."""
    opened: list[str] = []
    real_sansio, real_websockets = sansio.open_sansio, wsclient.open_websocket

    async def via_sansio(*a: Any, **k: Any) -> Channel:
        opened.append("sansio")
        return await real_sansio(*a, **k)

    async def via_websockets(*a: Any, **k: Any) -> Channel:
        opened.append("websockets")
        return await real_websockets(*a, **k)

    monkeypatch.setattr(sansio, "open_sansio", via_sansio)
    monkeypatch.setattr(wsclient, "open_websocket", via_websockets)
    outputs = []
    for transport, stack in (("", "sansio"), ("websockets", "websockets")):
        monkeypatch.setenv(ENV_TRANSPORT, transport)  # after conftest's scrub
        opened.clear()
        with ThreadedReferenceServer(scenario=default_scenario()) as srv:
            result = support.invoke(srv, *args, api="documented")
        assert result.exit_code == 0, result.stderr
        assert opened and set(opened) == {stack}, (transport, opened)
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0]


def test_transport_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    url = "ws://127.0.0.1:8887/ws/x"
    assert default_transport()._sansio(url)
    monkeypatch.setenv(ENV_TRANSPORT, "websockets")
    assert not default_transport()._sansio(url)
    monkeypatch.delenv(ENV_TRANSPORT)
    assert not proxy_applies(url)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:3128")
    assert proxy_applies("ws://forge.example:8887/ws/x")  # websockets proxies it
    assert not default_transport()._sansio("ws://forge.example:8887/ws/x")
    monkeypatch.setenv("no_proxy", "forge.example")
    assert not proxy_applies("ws://forge.example:8887/ws/x")
    assert default_transport()._sansio("ws://forge.example:8887/ws/x")


# -- frames ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_fragments_pings_and_bad_utf8(kind: str) -> None:
    seen: list[Frame] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proto = await accept(reader, writer)
        writer.write(frame(Opcode.TEXT, b"whole"))
        writer.write(frame(Opcode.TEXT, b"frag", fin=False))
        writer.write(frame(Opcode.PING, b"hi"))  # between fragments, as RFC 6455 allows
        writer.write(frame(Opcode.CONT, b"men", fin=False))
        await writer.drain()
        await asyncio.sleep(0.05)  # the rest in another read
        writer.write(frame(Opcode.CONT, b"ted", fin=True))
        writer.write(frame(Opcode.TEXT, b"bad \xff\xfe utf-8"))
        writer.write(frame(Opcode.BINARY, b"\x00\x01"))
        writer.write(frame(Opcode.TEXT, b""))
        writer.write(frame(Opcode.CLOSE, Close(1000, "").serialize()))
        seen.extend(await client_frames(proto, reader))

    async with raw_server(handler) as port:
        channel = await open_channel(kind, endpoint(port))
        got = await drain(channel)
    assert got == [b"whole", b"fragmented", b"bad \xff\xfe utf-8", b"\x00\x01", b""]
    assert all(type(m) is bytes for m in got)
    assert channel.close_code == 1000
    pongs = [f for f in seen if f.opcode is Opcode.PONG]
    assert [p.data for p in pongs] == [b"hi"]
    closes = [f for f in seen if f.opcode is Opcode.CLOSE]
    assert len(closes) == 1 and Close.parse(closes[0].data).code == 1000


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize(
    ("ending", "text"),
    [
        (frame(Opcode.CLOSE, Close(1011, "oops").serialize()), "code 1011 (oops)"),
        (b"", "without a close frame"),
    ],
    ids=["close 1011", "drop"],
)
async def test_abnormal_closure_is_stream_lost(kind: str, ending: bytes, text: str) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        writer.write(frame(Opcode.TEXT, b"one") + ending)
        await writer.drain()
        if ending:
            await asyncio.sleep(0.1)

    async with raw_server(handler) as port:
        channel = await open_channel(kind, endpoint(port))
        with pytest.raises(StreamLost, match=re.escape(text)):
            await drain(channel)


# -- backpressure ----------------------------------------------------------------------


async def test_slow_consumer_keeps_buffering_bounded() -> None:
    size, count = 64 * 1024, 800  # 50 MiB
    payload = b"x" * size

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        head = frame(Opcode.TEXT, payload)
        for _ in range(count):
            writer.write(head)
            await writer.drain()
        writer.write(frame(Opcode.CLOSE, Close(1000, "").serialize()))
        await writer.drain()
        await client_frames(ServerProtocol(), reader)

    async with raw_server(handler) as port:
        channel = await sansio.open_sansio(endpoint(port), PATH)
        assert isinstance(channel, sansio.SansIOChannel)
        link = channel.link
        recv = channel.receiver()
        total = peak = 0
        paused = False
        try:
            while True:
                await asyncio.sleep(0.005)  # a slow stdout
                peak = max(peak, link.buffered + len(link.ws.reader.buffer))
                paused = paused or link.paused
                batch = await recv()
                total += sum(map(len, batch))
        except ConnectionClosedOK:
            pass
    assert total == size * count
    assert paused
    # The high-water mark, plus what one read brings, plus a frame being parsed.
    assert peak <= sansio.HIGH_WATER + 256 * 1024 + 2 * size, peak


# -- keepalive -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_a_pong_is_a_sign_of_life_and_bytes_of_a_frame_are_not(kind: str) -> None:
    """last_heard() moves on whole frames and pongs, never on a frame still arriving."""
    pinged = asyncio.Event()
    go_on = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proto = await accept(reader, writer)
        while not pinged.is_set():
            data = await reader.read(65536)
            if not data:
                return
            proto.receive_data(data)
            for out in proto.data_to_send():
                writer.write(out)  # the pong
            if any(
                isinstance(e, Frame) and e.opcode is Opcode.PING for e in proto.events_received()
            ):
                pinged.set()
        await go_on.wait()
        whole = frame(Opcode.TEXT, b"x" * 1000)
        writer.write(whole[:500])  # half a frame, and no more
        await writer.drain()
        await asyncio.sleep(10)

    async with raw_server(handler) as port:
        channel = await open_channel(kind, endpoint(port))
        loop = asyncio.get_running_loop()
        opened = channel.last_heard()
        await asyncio.sleep(0.05)
        await channel.ping()
        await asyncio.wait_for(pinged.wait(), 5)
        deadline = loop.time() + 5
        while channel.last_heard() == opened and loop.time() < deadline:
            await asyncio.sleep(0.01)
        ponged = channel.last_heard()
        assert ponged > opened
        go_on.set()
        receive = asyncio.ensure_future(channel.receiver()())
        deadline = loop.time() + 5
        while channel.progress() == 0 and loop.time() < deadline:
            await asyncio.sleep(0.01)
        assert channel.progress() > 0 or kind == "websockets"  # its buffer is private
        assert channel.last_heard() == ponged
        receive.cancel()
        channel.abort()


async def test_a_quiet_peer_that_answers_pings_is_alive_and_a_mute_one_is_dead() -> None:
    """The driver pings a silent link: a peer that pongs stays (past the stale
    timeout), one that says nothing is dropped after it and reconnected."""
    connections: list[str] = []

    def handler_for(answer: bool) -> Any:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            proto = await accept(reader, writer)
            connections.append("open")
            while data := await reader.read(65536):
                if answer:
                    proto.receive_data(data)
                    for out in proto.data_to_send():
                        writer.write(out)  # pongs; never a data frame

        return handler

    class Silent(Decoder):
        def feed(self, frame: bytes | str) -> list[Any]:
            return []

    class OneRoute(Dialect):
        async def plan(self, request: StreamRequest, endpoint: Endpoint, diag: Diagnostics) -> Plan:
            return Plan(Route(PATH), Silent(), "test stream")

    notes: list[str] = []
    options = StreamOptions(stale_timeout=1.0, ping_interval=60, backoff_initial=0.01)
    for answer in (True, False):
        connections.clear()
        async with raw_server(handler_for(answer)) as port:
            stream = Stream(
                OneRoute(),
                StreamRequest("logs", "p", follow=True),
                endpoint(port),
                options,
                Diagnostics(lambda level, line: notes.append(line)),
            )
            task = asyncio.ensure_future(stream.pump(lambda event: None))
            await asyncio.sleep(2.5)  # over two stale timeouts
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if answer:
            assert connections == ["open"], notes
            assert notes == []
        else:
            assert len(connections) >= 2, notes
            assert "nothing heard for 1 s (dead peer)" in notes[0]


async def test_close_is_a_normal_closure() -> None:
    closes: list[Frame] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proto = await accept(reader, writer)
        while True:
            data = await reader.read(65536)
            if not data:
                break
            proto.receive_data(data)
            for data in proto.data_to_send():
                writer.write(data)  # the close echo
            closes.extend(
                e
                for e in proto.events_received()
                if isinstance(e, Frame) and e.opcode is Opcode.CLOSE
            )
            if proto.close_expected():
                break

    async with raw_server(handler) as port:
        channel = await sansio.open_sansio(endpoint(port), PATH)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await channel.close()
        assert loop.time() - start < 1.0
        with pytest.raises(ConnectionClosed):
            await channel.link.receive()
    assert [Close.parse(f.data).code for f in closes] == [1000]


# -- handshake failures: the same errors both ways -------------------------------------


def http(status: str, content_type: str, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


HTML = b"<!doctype html><html><body>web app</body></html>"
ANSWERS = {
    "401": http("401 Unauthorized", "text/plain", b"token required"),
    "403": http("403 Forbidden", "text/plain", b"bad token"),
    "404": http("404 Not Found", "text/plain", b"no such process"),
    "400": http("400 Bad Request", "text/plain", b"invalid id: not a UUID"),
    "html": http("200 OK", "text/html; charset=utf-8", HTML),
    "503": http("503 Service Unavailable", "text/plain", b"busy\nretry later"),
    "text": http("200 OK", "text/plain", b"hello"),
    "garbage": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "eof": b"",
    "no-upgrade": (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n\r\n"
    ),
}


async def errors_of(port: int, open_timeout: float = 5.0) -> list[tuple[type, str, int]]:
    out = []
    for kind in TRANSPORTS:
        with pytest.raises(ForgeError) as info:
            await open_channel(kind, endpoint(port, open_timeout), what="process p1")
        exc = info.value
        out.append((type(exc), str(exc), int(exc.exit_code)))
    return out


@pytest.mark.parametrize("answer", list(ANSWERS))
async def test_handshake_errors_match(answer: str) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(ANSWERS[answer])
        await writer.drain()

    async with raw_server(handler) as port:
        sans, ws = await errors_of(port)
    assert sans == ws


async def test_refused_and_timeout_match() -> None:
    async with raw_server(lambda r, w: asyncio.sleep(0)) as port:
        pass  # closed: the port now refuses
    sans, ws = await errors_of(port)
    assert sans == ws
    assert "connection refused" in sans[1] and sans[2] == 3

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    async with raw_server(silent) as port:
        sans, ws = await errors_of(port, open_timeout=0.3)
    assert sans == ws
    assert "no handshake answer within 0.3 s" in sans[1]


async def test_redirect_is_left_to_websockets() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async with raw_server(handler) as port:
        with pytest.raises(sansio.Redirected):
            await sansio.open_sansio(endpoint(port), PATH)
