"""Tests for tests/faultproxy.py, the TCP fault-injection proxy."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from faultproxy import FaultProxy, ThreadedFaultProxy
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosedError

pytestmark = pytest.mark.timeout(30)
aio = pytest.mark.asyncio

DATA = bytes(i * 7 % 251 for i in range(60_000))

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


# ----------------------------------------------------------------------
# tiny upstream servers
# ----------------------------------------------------------------------
async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def _stream_from_offset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read "<offset>\\n", send DATA[offset:] in 1000-byte writes, close."""
    try:
        line = await reader.readline()
        offset = int(line)
        for i in range(offset, len(DATA), 1000):
            writer.write(DATA[i : i + 1000])
            await writer.drain()
    except (OSError, ValueError):
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def tcp_server(handler: Handler) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@contextlib.asynccontextmanager
async def proxied(handler: Handler, **kwargs: object) -> AsyncIterator[FaultProxy]:
    async with (
        tcp_server(handler) as port,
        FaultProxy(upstream_port=port, **kwargs) as proxy,  # type: ignore[arg-type]
    ):
        yield proxy


# ----------------------------------------------------------------------
# raw-socket client helpers (no StreamReader: it may drop buffered data
# when the reset arrives, we want exact byte counts)
# ----------------------------------------------------------------------
async def raw_connect(port: int) -> socket.socket:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return sock


async def read_until_closed(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, str]:
    """Read until EOF or error; return (data, "eof" | "reset")."""
    loop = asyncio.get_running_loop()
    buf = bytearray()
    async with asyncio.timeout(timeout):
        while True:
            try:
                chunk = await loop.sock_recv(sock, 65536)
            except ConnectionResetError:
                return bytes(buf), "reset"
            if not chunk:
                return bytes(buf), "eof"
            buf += chunk


async def read_exactly(sock: socket.socket, n: int, timeout: float = 5.0) -> bytes:
    loop = asyncio.get_running_loop()
    buf = bytearray()
    async with asyncio.timeout(timeout):
        while len(buf) < n:
            chunk = await loop.sock_recv(sock, n - len(buf))
            if not chunk:
                raise EOFError(f"EOF after {len(buf)} bytes")
            buf += chunk
    return bytes(buf)


# ----------------------------------------------------------------------
# forwarding
# ----------------------------------------------------------------------
@aio
async def test_forwards_both_ways_and_counts() -> None:
    async with proxied(_echo) as proxy:
        assert proxy.url == f"http://127.0.0.1:{proxy.port}"
        sock = await raw_connect(proxy.port)
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(sock, DATA)
        assert await read_exactly(sock, len(DATA)) == DATA
        sock.shutdown(socket.SHUT_WR)
        data, how = await read_until_closed(sock)
        assert (data, how) == (b"", "eof")
        sock.close()
        await proxy.wait_for_active(0)
        assert proxy.connections == 1
        assert proxy.bytes_up == len(DATA)
        assert proxy.bytes_down == len(DATA)
        assert proxy.cuts == 0


@aio
async def test_upstream_down_closes_client() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    async with FaultProxy(upstream_port=dead_port) as proxy:
        sock = await raw_connect(proxy.port)
        data, _ = await read_until_closed(sock)
        sock.close()
        assert data == b""
        assert proxy.upstream_failures == 1


# ----------------------------------------------------------------------
# cuts
# ----------------------------------------------------------------------
@aio
async def test_cut_after_exact_byte_offset_with_rst() -> None:
    async with proxied(_stream_from_offset) as proxy:
        proxy.cut_after_bytes(12_345)
        loop = asyncio.get_running_loop()

        sock = await raw_connect(proxy.port)
        await loop.sock_sendall(sock, b"0\n")
        data, how = await read_until_closed(sock)
        sock.close()
        assert how == "reset"
        assert data == DATA[:12_345]
        assert proxy.cuts == 1
        ev = proxy.cut_log[0]
        assert (ev.conn_id, ev.bytes_down, ev.bytes_up, ev.reason) == (
            1,
            12_345,
            2,
            "after_bytes",
        )

        # Only the next connection was armed: the following one is intact.
        sock = await raw_connect(proxy.port)
        await loop.sock_sendall(sock, b"12345\n")
        data, how = await read_until_closed(sock)
        sock.close()
        assert (data, how) == (DATA[12_345:], "eof")
        assert proxy.cuts == 1


@aio
async def test_cut_mid_websocket_frame() -> None:
    message = "x" * 5000

    async def handler(ws: ServerConnection) -> None:
        async for _ in ws:
            await ws.send(message)

    async with ws_serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with FaultProxy(upstream_port=port) as proxy:
            async with ws_connect(proxy.ws_url, ping_interval=None, compression=None) as ws:
                await ws.send("go")
                assert await ws.recv() == message
                before = proxy.bytes_down
                # 100 bytes into the next (5004-byte) frame.
                proxy.cut_after_bytes(100, live=True)
                await ws.send("go")
                with pytest.raises(ConnectionClosedError) as info:
                    await asyncio.wait_for(ws.recv(), 5)
                assert info.value.rcvd is None  # no close frame: abnormal 1006
            assert proxy.cuts == 1
            assert proxy.cut_log[0].bytes_down == before + 100


@aio
async def test_cut_now_kills_all_live_connections() -> None:
    async with proxied(_echo) as proxy:
        loop = asyncio.get_running_loop()
        socks = [await raw_connect(proxy.port) for _ in range(3)]
        for s in socks:
            await loop.sock_sendall(s, b"hi")
            assert await read_exactly(s, 2) == b"hi"
        await proxy.wait_for_active(3)
        assert proxy.cut_now() == 3
        for s in socks:
            data, how = await read_until_closed(s)
            assert (data, how) == (b"", "reset")
            s.close()
        assert proxy.cuts == 3
        assert proxy.active == 0
        assert [e.reason for e in proxy.cut_log] == ["now"] * 3


@aio
async def test_cut_with_fin_when_rst_disabled() -> None:
    async with proxied(_stream_from_offset, rst=False) as proxy:
        proxy.cut_after_bytes(777)
        sock = await raw_connect(proxy.port)
        await asyncio.get_running_loop().sock_sendall(sock, b"0\n")
        data, how = await read_until_closed(sock)
        sock.close()
        assert (data, how) == (DATA[:777], "eof")


async def _chaos_run(seed: int) -> tuple[list[tuple[int, int]], int]:
    """Download DATA through a chaotic proxy, resuming after each cut."""
    async with proxied(_stream_from_offset) as proxy:
        proxy.chaos(seed, mean_bytes=6000, max_cuts=5)
        loop = asyncio.get_running_loop()
        got = bytearray()
        attempts = 0
        while len(got) < len(DATA):
            attempts += 1
            assert attempts < 20
            sock = await raw_connect(proxy.port)
            await loop.sock_sendall(sock, b"%d\n" % len(got))
            data, _ = await read_until_closed(sock)
            sock.close()
            got += data
        assert bytes(got) == DATA
        assert proxy.cuts == proxy.chaos_cuts == attempts - 1
        return [(e.conn_id, e.bytes_down) for e in proxy.cut_log], proxy.cuts


@aio
async def test_chaos_is_deterministic_with_seed() -> None:
    first, cuts = await _chaos_run(seed=42)
    second, _ = await _chaos_run(seed=42)
    other, _ = await _chaos_run(seed=7)
    assert 1 <= cuts <= 5
    assert first == second
    assert first != other
    # Offsets are arbitrary byte positions, not 1000-byte write boundaries.
    assert any(off % 1000 for _, off in first)


@aio
async def test_chaos_probability_per_chunk_respects_max_cuts() -> None:
    async with proxied(_stream_from_offset, chunk_size=500) as proxy:
        proxy.chaos(1, cut_probability_per_chunk=0.5, max_cuts=3)
        loop = asyncio.get_running_loop()
        got = bytearray()
        while len(got) < len(DATA):
            sock = await raw_connect(proxy.port)
            await loop.sock_sendall(sock, b"%d\n" % len(got))
            data, _ = await read_until_closed(sock)
            sock.close()
            got += data
        assert bytes(got) == DATA
        assert proxy.cuts == 3


# ----------------------------------------------------------------------
# stall
# ----------------------------------------------------------------------
@aio
async def test_stall_is_a_silent_dead_peer() -> None:
    async with proxied(_echo) as proxy:
        loop = asyncio.get_running_loop()
        sock = await raw_connect(proxy.port)
        await loop.sock_sendall(sock, b"ping")
        assert await read_exactly(sock, 4) == b"ping"

        proxy.stall()
        await loop.sock_sendall(sock, b"lost?")
        with pytest.raises(TimeoutError):
            await read_exactly(sock, 5, timeout=0.3)
        # Still connected on both sides.
        assert proxy.active == 1
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0

        # A new connection during the stall is accepted but gets nothing.
        sock2 = await raw_connect(proxy.port)
        await loop.sock_sendall(sock2, b"new")
        with pytest.raises(TimeoutError):
            await read_exactly(sock2, 3, timeout=0.2)
        await proxy.wait_for_active(2)

        proxy.unstall()
        assert await read_exactly(sock, 5) == b"lost?"
        assert await read_exactly(sock2, 3) == b"new"
        sock.close()
        sock2.close()
        assert proxy.cuts == 0


@aio
async def test_stall_can_let_new_connections_through() -> None:
    async with proxied(_echo) as proxy:
        loop = asyncio.get_running_loop()
        old = await raw_connect(proxy.port)
        await proxy.wait_for_active(1)
        proxy.stall(new_connections=False)
        new = await raw_connect(proxy.port)
        await loop.sock_sendall(new, b"fresh")
        assert await read_exactly(new, 5) == b"fresh"
        await loop.sock_sendall(old, b"old")
        with pytest.raises(TimeoutError):
            await read_exactly(old, 3, timeout=0.2)
        proxy.unstall()
        assert await read_exactly(old, 3) == b"old"
        old.close()
        new.close()


# ----------------------------------------------------------------------
# delay and chunking
# ----------------------------------------------------------------------
@aio
async def test_delay_adds_latency_and_keeps_order() -> None:
    async with proxied(_echo) as proxy:
        loop = asyncio.get_running_loop()
        sock = await raw_connect(proxy.port)
        proxy.delay(0.15)
        start = loop.time()
        for i in range(50):
            await loop.sock_sendall(sock, b"%03d" % i)
            await asyncio.sleep(0.001)
        data = await read_exactly(sock, 150)
        elapsed = loop.time() - start
        assert data == b"".join(b"%03d" % i for i in range(50))
        # Two hops of 0.15 s, but latency, not per-chunk throttling.
        assert 0.3 <= elapsed < 1.5
        proxy.delay(0)
        start = loop.time()
        await loop.sock_sendall(sock, b"x")
        await read_exactly(sock, 1)
        assert loop.time() - start < 0.1
        sock.close()


@aio
async def test_chunk_size_splits_downstream_data() -> None:
    async with proxied(_stream_from_offset, chunk_size=(1, 7), chunk_pause=0.001) as proxy:
        loop = asyncio.get_running_loop()
        sock = await raw_connect(proxy.port)
        await loop.sock_sendall(sock, b"%d\n" % (len(DATA) - 300))
        reads: list[bytes] = []
        while chunk := await asyncio.wait_for(loop.sock_recv(sock, 65536), 5):
            reads.append(chunk)
        sock.close()
        assert b"".join(reads) == DATA[-300:]
        assert len(reads) >= 30  # 300 bytes in pieces of at most 7


@aio
async def test_cut_after_bytes_with_chunking_is_exact() -> None:
    async with proxied(_stream_from_offset, chunk_size=(1, 7)) as proxy:
        proxy.cut_after_bytes(1001)
        sock = await raw_connect(proxy.port)
        await asyncio.get_running_loop().sock_sendall(sock, b"0\n")
        data, how = await read_until_closed(sock)
        sock.close()
        assert (data, how) == (DATA[:1001], "reset")


# ----------------------------------------------------------------------
# refuse / pause / resume
# ----------------------------------------------------------------------
@aio
async def test_refuse_accept_pause_resume_same_port() -> None:
    async with proxied(_echo) as proxy:
        loop = asyncio.get_running_loop()
        port = proxy.port

        proxy.refuse()
        sock = await raw_connect(port)  # TCP connect succeeds ...
        data, how = await read_until_closed(sock)  # ... then closed at once
        sock.close()
        assert (data, how) == (b"", "eof")
        assert proxy.refused == 1

        proxy.accept()
        proxy.pause_listening()
        assert not proxy.listening
        with pytest.raises(ConnectionRefusedError):
            await raw_connect(port)

        proxy.resume_listening()
        assert proxy.port == port
        sock = await raw_connect(port)
        await loop.sock_sendall(sock, b"back")
        assert await read_exactly(sock, 4) == b"back"
        sock.close()
        assert proxy.connections == 2


@aio
async def test_pause_listening_keeps_live_connections() -> None:
    async with proxied(_echo) as proxy:
        loop = asyncio.get_running_loop()
        sock = await raw_connect(proxy.port)
        proxy.pause_listening()
        await loop.sock_sendall(sock, b"still")
        assert await read_exactly(sock, 5) == b"still"
        sock.close()
        proxy.heal()
        assert proxy.listening


# ----------------------------------------------------------------------
# threaded wrapper (for subprocess clients)
# ----------------------------------------------------------------------
class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


@contextlib.contextmanager
def threaded_echo_server() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _EchoHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def test_threaded_wrapper() -> None:
    with threaded_echo_server() as up, ThreadedFaultProxy(upstream_port=up) as proxy:
        port = proxy.port
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"hello")
            assert _recv_exactly(s, 5) == b"hello"

            proxy.stall()
            s.sendall(b"dead?")
            s.settimeout(0.3)
            with pytest.raises(TimeoutError):
                s.recv(5)
            proxy.unstall()
            s.settimeout(5)
            assert _recv_exactly(s, 5) == b"dead?"

            proxy.cut_after_bytes(3, live=True)
            s.sendall(b"abcdef")
            assert _recv_exactly(s, 3) == b"abc"
            with pytest.raises(ConnectionResetError):
                s.recv(10)
        proxy.wait_for_cuts(1)
        assert proxy.cuts == 1
        assert proxy.cut_log[0].reason == "after_bytes"

        proxy.pause_listening()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        proxy.resume_listening()
        proxy.delay(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            t0 = time.monotonic()
            s.sendall(b"x")
            assert _recv_exactly(s, 1) == b"x"
            assert time.monotonic() - t0 >= 0.09
            proxy.chunk_size = 2
            assert proxy.chunk_size == 2
            proxy.wait_for_connections(2)
            assert proxy.cut_now() == 1
        assert proxy.connections == 2
        assert proxy.stats()["cuts"] == 2
        assert proxy.bytes_up == 5 + 5 + 6 + 1
