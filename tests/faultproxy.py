"""TCP fault-injection proxy for the forgectl test suite.

The proxy sits between a client and a server on 127.0.0.1 and pumps bytes
both ways while letting a test inject network faults at any moment, also
while connections are live:

* ``cut_after_bytes(n)`` / ``cut_now()``: abrupt close of both sides (RST by
  default), which can land in the middle of a WebSocket frame;
* ``chaos(seed, ...)``: cuts at random, seed-deterministic byte offsets;
* ``stall()`` / ``unstall()``: a silent dead peer (TCP stays open, nothing
  flows in either direction);
* ``delay(seconds)``: per-chunk latency, order preserved;
* ``refuse()`` / ``accept()``: accept-then-close incoming connections;
* ``pause_listening()`` / ``resume_listening()``: ECONNREFUSED, then the
  *same* port again;
* ``chunk_size``: split downstream data into small pieces (partial reads).

Byte offsets for cuts always count bytes sent downstream (server -> client)
on that one connection, *including* the HTTP upgrade response of a
WebSocket handshake.  Use ``cut_after_bytes(n, live=True)`` to count from
"now" on connections that are already established.

``FaultProxy`` lives on the running event loop (all fault controls are plain,
synchronous methods that must be called from the loop thread);
``ThreadedFaultProxy`` runs one in a daemon thread and exposes the same API,
thread-safe and blocking, for tests whose client runs as a subprocess.

POSIX only (uses ``loop.add_reader`` on the listening socket).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import random
import socket
import struct
import sys
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ParamSpec, Self, TypeVar

__all__ = ["ChunkSize", "CutEvent", "FaultProxy", "ThreadedFaultProxy"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: ``int`` = fixed maximum piece size, ``(lo, hi)`` = random piece sizes in
#: ``[lo, hi]`` (seeded), ``None`` = forward chunks as read.
ChunkSize = int | tuple[int, int] | None

_READ_SIZE = 65536
_QUEUE_CHUNKS = 64
_LINGER_RST = struct.pack("ii", 1, 0)

# Reasons recorded in CutEvent.reason.
REASON_AFTER_BYTES = "after_bytes"
REASON_NOW = "now"
REASON_CHAOS = "chaos"


@dataclass(frozen=True)
class CutEvent:
    """One injected cut."""

    conn_id: int
    """1-based accept order of the connection (same numbering as ``connections``)."""
    bytes_down: int
    """Bytes forwarded server -> client on that connection before the cut."""
    bytes_up: int
    """Bytes forwarded client -> server on that connection before the cut."""
    reason: str
    """``"after_bytes"``, ``"now"`` or ``"chaos"``."""


def _set_rst(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)


def _hard_close(transport: asyncio.BaseTransport, rst: bool) -> None:
    """Close *transport* immediately, discarding buffers; RST if *rst*."""
    if rst:
        _set_rst(transport)
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    else:  # pragma: no cover - TCP transports are always write transports
        transport.close()


def _unsent_bytes(transport: asyncio.BaseTransport) -> int:
    """Bytes still in the kernel send queue (unsent + unacked), Linux only."""
    if not sys.platform.startswith("linux"):
        return 0
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        import fcntl
        import termios

        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
        return int(struct.unpack("i", raw)[0])
    except (OSError, ValueError, AttributeError, ImportError):
        return 0


@dataclass(eq=False)
class _Conn:
    id: int
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    gate: asyncio.Event
    bytes_up: int = 0
    bytes_down: int = 0
    cut_at: int | None = None
    chaos_at: int | None = None
    closed: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class FaultProxy:
    """asyncio TCP proxy with injectable faults.  See the module docstring."""

    def __init__(
        self,
        upstream_host: str = "127.0.0.1",
        upstream_port: int = 0,
        *,
        listen_host: str = "127.0.0.1",
        port: int = 0,
        chunk_size: ChunkSize = None,
        chunk_pause: float = 0.0,
        seed: int = 0,
        rst: bool = True,
        connect_timeout: float = 5.0,
        cut_flush_timeout: float = 2.0,
    ) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.listen_host = listen_host
        #: Split downstream data into pieces of this size (see ``ChunkSize``).
        self.chunk_size: ChunkSize = chunk_size
        #: Sleep between split pieces so the reader sees separate reads.
        self.chunk_pause = chunk_pause
        #: Injected cuts reset the connections (SO_LINGER 0) instead of FIN.
        self.rst = rst
        self.connect_timeout = connect_timeout
        #: Before a byte-offset cut, wait this long at most for the bytes
        #: already written to be acked by the client's kernel, so it really
        #: receives exactly n bytes (an RST discards unacked data).
        self.cut_flush_timeout = cut_flush_timeout

        # -- stats -------------------------------------------------------
        #: Accepted TCP connections (including refused ones).
        self.connections = 0
        #: Connections closed immediately because of ``refuse()``.
        self.refused = 0
        #: Injected cuts of any kind (cut_after_bytes, cut_now, chaos).
        self.cuts = 0
        #: Injected chaos cuts only.
        self.chaos_cuts = 0
        #: Connections dropped because the upstream was unreachable.
        self.upstream_failures = 0
        #: Total bytes forwarded client -> server / server -> client.
        self.bytes_up = 0
        self.bytes_down = 0
        #: One record per injected cut, in order.
        self.cut_log: list[CutEvent] = []

        self._port = port
        self._lsock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conns: dict[int, _Conn] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._changed: asyncio.Event | None = None
        self._closing = False

        self._stalled = False
        self._stall_new = True
        self._delay = 0.0
        self._refusing = False
        self._refuse_rst = False
        self._next_cut: int | None = None
        self._next_cut_remaining: int | None = 0
        self._chaos_rng: random.Random | None = None
        self._chaos_mean: float | None = None
        self._chaos_prob: float | None = None
        self._chaos_max: int | None = None
        self._chaos_min = 1
        self._split_rng = random.Random(seed)

    # ------------------------------------------------------------------
    # lifecycle
    # ------------------------------------------------------------------
    async def start(self) -> Self:
        """Bind and start listening (port 0 = pick a free port)."""
        if self._loop is not None:
            raise RuntimeError("FaultProxy already started")
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._closing = False
        self._listen()
        return self

    async def aclose(self) -> None:
        """Stop listening and abort every live connection."""
        if self._loop is None or self._closing:
            return
        self._closing = True
        self._stop_listening()
        for conn in list(self._conns.values()):
            self._kill(conn, None, rst=False)
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.gather(*handlers, return_exceptions=True)
        self._notify()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------
    # addresses and stats
    # ------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The listening port (stable across pause/resume_listening)."""
        if self._port == 0:
            raise RuntimeError("FaultProxy not started")
        return self._port

    @property
    def host(self) -> str:
        return self.listen_host

    @property
    def url(self) -> str:
        return f"http://{self.listen_host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.listen_host}:{self.port}"

    @property
    def active(self) -> int:
        """Currently proxied (live) connections."""
        return len(self._conns)

    @property
    def listening(self) -> bool:
        return self._lsock is not None

    @property
    def stalled(self) -> bool:
        return self._stalled

    @property
    def refusing(self) -> bool:
        return self._refusing

    def stats(self) -> dict[str, int]:
        return {
            "connections": self.connections,
            "active": self.active,
            "refused": self.refused,
            "cuts": self.cuts,
            "chaos_cuts": self.chaos_cuts,
            "upstream_failures": self.upstream_failures,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
        }

    async def wait_for_connections(self, n: int, timeout: float = 5.0) -> None:
        """Wait until ``connections >= n`` (TimeoutError otherwise)."""
        await self._wait_until(lambda: self.connections >= n, timeout)

    async def wait_for_cuts(self, n: int, timeout: float = 5.0) -> None:
        """Wait until ``cuts >= n`` (TimeoutError otherwise)."""
        await self._wait_until(lambda: self.cuts >= n, timeout)

    async def wait_for_active(self, n: int, timeout: float = 5.0) -> None:
        """Wait until exactly *n* connections are live (TimeoutError otherwise)."""
        await self._wait_until(lambda: self.active == n, timeout)

    # ------------------------------------------------------------------
    # faults (synchronous; call from the loop thread)
    # ------------------------------------------------------------------
    def cut_after_bytes(self, n: int, *, connections: int | None = 1, live: bool = False) -> None:
        """Cut once *n* bytes have gone downstream.

        Applies to the next *connections* new connections (``None`` = every
        new connection until ``clear_cuts()``/``heal()``).  With *live*, also
        arms every live connection to cut after *n* more downstream bytes.
        ``n == 0`` cuts before any byte is forwarded.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        if connections is not None and connections < 0:
            raise ValueError("connections must be >= 0 or None")
        self._next_cut = n
        self._next_cut_remaining = connections
        if live:
            for conn in list(self._conns.values()):
                conn.cut_at = conn.bytes_down + n
                if n == 0:
                    self._kill(conn, REASON_AFTER_BYTES, rst=self.rst)

    def clear_cuts(self) -> None:
        """Disarm pending and live ``cut_after_bytes`` cuts."""
        self._next_cut = None
        self._next_cut_remaining = 0
        for conn in self._conns.values():
            conn.cut_at = None

    def cut_now(self) -> int:
        """Abruptly close every live connection; returns how many."""
        conns = sorted(self._conns.values(), key=lambda c: c.id)
        for conn in conns:
            self._kill(conn, REASON_NOW, rst=self.rst)
        return len(conns)

    def chaos(
        self,
        seed: int,
        *,
        mean_bytes: float | None = None,
        cut_probability_per_chunk: float | None = None,
        max_cuts: int | None = None,
        min_bytes: int = 1,
    ) -> None:
        """Cut connections at random downstream byte offsets.

        *mean_bytes*: every connection (live ones from now, new ones from
        their start) draws an offset ``max(min_bytes, expovariate(1/mean))``
        from ``random.Random(seed)`` in connection order; fully
        deterministic for a given seed and a sequential client.

        *cut_probability_per_chunk*: each forwarded downstream chunk is cut
        with that probability at a random offset inside it.  The random
        sequence is seeded, but chunk boundaries depend on TCP reads, so this
        is only deterministic together with a fixed ``chunk_size``.

        Stops injecting after *max_cuts* chaos cuts (``None`` = unlimited).
        """
        if mean_bytes is None and cut_probability_per_chunk is None:
            raise ValueError("give mean_bytes or cut_probability_per_chunk")
        if mean_bytes is not None and mean_bytes <= 0:
            raise ValueError("mean_bytes must be > 0")
        if cut_probability_per_chunk is not None and not (0.0 <= cut_probability_per_chunk <= 1.0):
            raise ValueError("cut_probability_per_chunk must be in [0, 1]")
        self._chaos_rng = random.Random(seed)
        self._chaos_mean = mean_bytes
        self._chaos_prob = cut_probability_per_chunk
        self._chaos_max = max_cuts
        self._chaos_min = max(0, min_bytes)
        self.chaos_cuts = 0
        for conn in sorted(self._conns.values(), key=lambda c: c.id):
            conn.chaos_at = None
            offset = self._draw_chaos_offset()
            if offset is not None:
                conn.chaos_at = conn.bytes_down + offset

    def stop_chaos(self) -> None:
        self._chaos_rng = None
        self._chaos_mean = None
        self._chaos_prob = None
        for conn in self._conns.values():
            conn.chaos_at = None

    def stall(self, *, new_connections: bool = True) -> None:
        """Stop forwarding in both directions; TCP connections stay open.

        Data read meanwhile is held (with TCP back-pressure) and delivered on
        ``unstall()``.  With *new_connections* (default) connections accepted
        during the stall are stalled too (accepted, upstream connected,
        nothing forwarded); otherwise they flow normally.
        """
        self._stalled = True
        self._stall_new = new_connections
        for conn in self._conns.values():
            conn.gate.clear()

    def unstall(self) -> None:
        self._stalled = False
        for conn in self._conns.values():
            conn.gate.set()

    def delay(self, seconds: float) -> None:
        """Add *seconds* latency to each chunk in each direction (0 = off).

        Applies to chunks read after the call; order is always preserved.
        The round trip grows by 2 * seconds.
        """
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self._delay = seconds

    def refuse(self, *, rst: bool = False) -> None:
        """Accept new connections and close them at once (FIN, or RST)."""
        self._refusing = True
        self._refuse_rst = rst

    def accept(self) -> None:
        """Undo ``refuse()``."""
        self._refusing = False

    def pause_listening(self) -> None:
        """Close the listening socket: new connects get ECONNREFUSED.

        Live connections are not affected.
        """
        self._stop_listening()

    def resume_listening(self) -> None:
        """Listen again on the same port."""
        if self._loop is None:
            raise RuntimeError("FaultProxy not started")
        if self._lsock is None:
            self._listen()

    def set_chunking(self, chunk_size: ChunkSize, pause: float | None = None) -> None:
        """Set ``chunk_size`` (and optionally ``chunk_pause``)."""
        self.chunk_size = chunk_size
        if pause is not None:
            self.chunk_pause = pause

    def heal(self) -> None:
        """Remove every fault: unstall, accept, listen, no delay/cuts/chaos/chunking."""
        self.unstall()
        self.accept()
        self.delay(0.0)
        self.clear_cuts()
        self.stop_chaos()
        self.chunk_size = None
        if self._loop is not None and not self._closing:
            self.resume_listening()

    # ------------------------------------------------------------------
    # internals: listening
    # ------------------------------------------------------------------
    def _listen(self) -> None:
        assert self._loop is not None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.listen_host, self._port))
            sock.listen(128)
            sock.setblocking(False)
            self._loop.add_reader(sock.fileno(), self._on_acceptable, sock)
        except BaseException:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        self._lsock = sock

    def _stop_listening(self) -> None:
        sock, self._lsock = self._lsock, None
        if sock is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(sock.fileno())
        sock.close()

    def _on_acceptable(self, lsock: socket.socket) -> None:
        assert self._loop is not None
        while self._lsock is lsock:
            try:
                csock, _addr = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.connections += 1
            conn_id = self.connections
            if self._refusing:
                self.refused += 1
                if self._refuse_rst:
                    with contextlib.suppress(OSError):
                        csock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
                csock.close()
                self._notify()
                continue
            csock.setblocking(False)
            task = self._loop.create_task(self._handle(csock, conn_id))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
            self._notify()

    # ------------------------------------------------------------------
    # internals: connections
    # ------------------------------------------------------------------
    async def _handle(self, csock: socket.socket, conn_id: int) -> None:
        try:
            creader, cwriter = await asyncio.open_connection(sock=csock)
        except OSError:
            csock.close()
            return
        try:
            ureader, uwriter = await asyncio.wait_for(
                asyncio.open_connection(self.upstream_host, self.upstream_port),
                self.connect_timeout,
            )
        except (TimeoutError, OSError):
            self.upstream_failures += 1
            _hard_close(cwriter.transport, rst=True)
            self._notify()
            return
        except asyncio.CancelledError:
            _hard_close(cwriter.transport, rst=False)
            raise

        gate = asyncio.Event()
        if not (self._stalled and self._stall_new):
            gate.set()
        conn = _Conn(conn_id, cwriter, uwriter, gate)
        if self._next_cut is not None and self._next_cut_remaining != 0:
            conn.cut_at = self._next_cut
            if self._next_cut_remaining is not None:
                self._next_cut_remaining -= 1
        conn.chaos_at = self._draw_chaos_offset()
        self._conns[conn_id] = conn
        self._notify()

        up_q: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(_QUEUE_CHUNKS)
        down_q: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(_QUEUE_CHUNKS)
        conn.tasks = [
            asyncio.create_task(self._read_loop(conn, creader, up_q)),
            asyncio.create_task(self._write_loop(conn, up_q, uwriter, down=False)),
            asyncio.create_task(self._read_loop(conn, ureader, down_q)),
            asyncio.create_task(self._write_loop(conn, down_q, cwriter, down=True)),
        ]
        if conn.cut_at == 0:
            self._kill(conn, REASON_AFTER_BYTES, rst=self.rst)
        elif conn.chaos_at == 0 and self._chaos_allowed():
            self._kill(conn, REASON_CHAOS, rst=self.rst)
        try:
            await asyncio.gather(*conn.tasks, return_exceptions=True)
        finally:
            if not conn.closed:
                # Both directions finished with EOF: close normally.
                conn.closed = True
                for task in conn.tasks:
                    task.cancel()
                cwriter.close()
                uwriter.close()
            self._conns.pop(conn_id, None)
            self._notify()

    async def _read_loop(
        self,
        conn: _Conn,
        reader: asyncio.StreamReader,
        queue: asyncio.Queue[tuple[float, bytes] | None],
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await reader.read(_READ_SIZE)
                if not data:
                    break
                await queue.put((loop.time() + self._delay, data))
        except OSError:
            # Peer reset / error: propagate as a reset to the other side.
            self._kill(conn, None, rst=True)
            return
        await queue.put(None)

    async def _write_loop(
        self,
        conn: _Conn,
        queue: asyncio.Queue[tuple[float, bytes] | None],
        writer: asyncio.StreamWriter,
        *,
        down: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                due, data = item
                await conn.gate.wait()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                pieces = self._split(data) if down else [data]
                for piece in pieces:
                    await conn.gate.wait()
                    if down:
                        send, reason = self._cut_point(conn, piece)
                        if send:
                            writer.write(piece[:send])
                            conn.bytes_down += send
                            self.bytes_down += send
                            await writer.drain()
                        if reason is not None:
                            await self._wait_flushed(writer.transport)
                            self._kill(conn, reason, rst=self.rst)
                            return
                        if len(pieces) > 1:
                            await asyncio.sleep(self.chunk_pause)
                    else:
                        writer.write(piece)
                        conn.bytes_up += len(piece)
                        self.bytes_up += len(piece)
                        await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            self._kill(conn, None, rst=True)

    def _split(self, data: bytes) -> list[bytes]:
        size = self.chunk_size
        if size is None:
            return [data]
        if isinstance(size, int):
            step = max(1, size)
            return [data[i : i + step] for i in range(0, len(data), step)]
        lo, hi = max(1, size[0]), max(1, size[1])
        pieces: list[bytes] = []
        i = 0
        while i < len(data):
            n = self._split_rng.randint(min(lo, hi), max(lo, hi))
            pieces.append(data[i : i + n])
            i += n
        return pieces

    def _chaos_allowed(self) -> bool:
        return self._chaos_rng is not None and (
            self._chaos_max is None or self.chaos_cuts < self._chaos_max
        )

    def _draw_chaos_offset(self) -> int | None:
        if self._chaos_mean is None or not self._chaos_allowed():
            return None
        assert self._chaos_rng is not None
        raw = int(self._chaos_rng.expovariate(1.0 / self._chaos_mean))
        return max(self._chaos_min, raw)

    def _cut_point(self, conn: _Conn, piece: bytes) -> tuple[int, str | None]:
        """How many bytes of *piece* to send, and the cut reason if any."""
        best = len(piece)
        reason: str | None = None
        if conn.cut_at is not None:
            remaining = max(0, conn.cut_at - conn.bytes_down)
            if remaining <= len(piece):
                best, reason = remaining, REASON_AFTER_BYTES
        if self._chaos_allowed():
            if conn.chaos_at is not None:
                remaining = max(0, conn.chaos_at - conn.bytes_down)
                if remaining <= len(piece) and (reason is None or remaining < best):
                    best, reason = remaining, REASON_CHAOS
            if self._chaos_prob is not None and piece:
                assert self._chaos_rng is not None
                if self._chaos_rng.random() < self._chaos_prob:
                    at = self._chaos_rng.randrange(len(piece))
                    if reason is None or at < best:
                        best, reason = at, REASON_CHAOS
        return best, reason

    async def _wait_flushed(self, transport: asyncio.BaseTransport) -> None:
        """Wait until written bytes left the proxy and were acked (bounded)."""
        assert isinstance(transport, asyncio.WriteTransport)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cut_flush_timeout
        while loop.time() < deadline:
            if transport.is_closing():
                return
            if transport.get_write_buffer_size() == 0 and _unsent_bytes(transport) == 0:
                return
            await asyncio.sleep(0.001)

    def _kill(self, conn: _Conn, reason: str | None, *, rst: bool) -> None:
        """Abort both sides of *conn*; *reason* != None records an injected cut."""
        if conn.closed:
            return
        conn.closed = True
        if reason is not None:
            self.cuts += 1
            if reason == REASON_CHAOS:
                self.chaos_cuts += 1
            self.cut_log.append(CutEvent(conn.id, conn.bytes_down, conn.bytes_up, reason))
        for writer in (conn.client, conn.upstream):
            _hard_close(writer.transport, rst)
        current = asyncio.current_task()
        for task in conn.tasks:
            if task is not current:
                task.cancel()
        self._conns.pop(conn.id, None)
        conn.gate.set()  # release anything parked on the gate (they're cancelled)
        self._notify()

    # ------------------------------------------------------------------
    # internals: waiting
    # ------------------------------------------------------------------
    def _notify(self) -> None:
        ev = self._changed
        if ev is not None:
            self._changed = asyncio.Event()
            ev.set()

    async def _wait_until(self, pred: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not pred():
                ev = self._changed
                assert ev is not None, "FaultProxy not started"
                await ev.wait()


class ThreadedFaultProxy:
    """A ``FaultProxy`` on its own event loop in a daemon thread.

    Same API as ``FaultProxy`` but synchronous: every control method is
    executed on the proxy's loop and blocks until it has taken effect.
    Use as ``with ThreadedFaultProxy(upstream_port=...) as proxy:``.
    """

    def __init__(
        self,
        upstream_host: str = "127.0.0.1",
        upstream_port: int = 0,
        *,
        listen_host: str = "127.0.0.1",
        port: int = 0,
        chunk_size: ChunkSize = None,
        chunk_pause: float = 0.0,
        seed: int = 0,
        rst: bool = True,
        connect_timeout: float = 5.0,
        cut_flush_timeout: float = 2.0,
        call_timeout: float = 10.0,
    ) -> None:
        self.proxy = FaultProxy(
            upstream_host,
            upstream_port,
            listen_host=listen_host,
            port=port,
            chunk_size=chunk_size,
            chunk_pause=chunk_pause,
            seed=seed,
            rst=rst,
            connect_timeout=connect_timeout,
            cut_flush_timeout=cut_flush_timeout,
        )
        self.call_timeout = call_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------
    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("ThreadedFaultProxy already started")
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="faultproxy", daemon=True)
        self._thread.start()
        ready.wait(self.call_timeout)
        try:
            self._run(self.proxy.start())
        except BaseException:
            self._shutdown_loop()
            raise
        return self

    def close(self) -> None:
        if self._loop is None:
            return
        try:
            self._run(self.proxy.aclose())
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = None
        self._thread = None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(self.call_timeout)
        if not loop.is_running():
            loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("ThreadedFaultProxy not started")
        fut = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return fut.result(self.call_timeout if timeout is None else timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError("FaultProxy call timed out") from None

    def _call(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        async def invoke() -> _T:
            return fn(*args, **kwargs)

        return self._run(invoke())

    # -- addresses and stats ---------------------------------------------
    @property
    def port(self) -> int:
        return self.proxy.port

    @property
    def host(self) -> str:
        return self.proxy.host

    @property
    def url(self) -> str:
        return self.proxy.url

    @property
    def ws_url(self) -> str:
        return self.proxy.ws_url

    @property
    def connections(self) -> int:
        return self.proxy.connections

    @property
    def refused(self) -> int:
        return self.proxy.refused

    @property
    def cuts(self) -> int:
        return self.proxy.cuts

    @property
    def chaos_cuts(self) -> int:
        return self.proxy.chaos_cuts

    @property
    def upstream_failures(self) -> int:
        return self.proxy.upstream_failures

    @property
    def bytes_up(self) -> int:
        return self.proxy.bytes_up

    @property
    def bytes_down(self) -> int:
        return self.proxy.bytes_down

    @property
    def active(self) -> int:
        return self.proxy.active

    @property
    def listening(self) -> bool:
        return self.proxy.listening

    @property
    def stalled(self) -> bool:
        return self.proxy.stalled

    @property
    def refusing(self) -> bool:
        return self.proxy.refusing

    @property
    def cut_log(self) -> list[CutEvent]:
        return self._call(lambda: list(self.proxy.cut_log))

    @property
    def chunk_size(self) -> ChunkSize:
        return self.proxy.chunk_size

    @chunk_size.setter
    def chunk_size(self, value: ChunkSize) -> None:
        self._call(self.proxy.set_chunking, value)

    @property
    def chunk_pause(self) -> float:
        return self.proxy.chunk_pause

    @chunk_pause.setter
    def chunk_pause(self, value: float) -> None:
        self._call(self.proxy.set_chunking, self.proxy.chunk_size, value)

    @property
    def rst(self) -> bool:
        return self.proxy.rst

    @rst.setter
    def rst(self, value: bool) -> None:
        self._call(setattr, self.proxy, "rst", value)

    def stats(self) -> dict[str, int]:
        return self._call(self.proxy.stats)

    def wait_for_connections(self, n: int, timeout: float = 5.0) -> None:
        self._run(self.proxy.wait_for_connections(n, timeout), timeout + 1.0)

    def wait_for_cuts(self, n: int, timeout: float = 5.0) -> None:
        self._run(self.proxy.wait_for_cuts(n, timeout), timeout + 1.0)

    def wait_for_active(self, n: int, timeout: float = 5.0) -> None:
        self._run(self.proxy.wait_for_active(n, timeout), timeout + 1.0)

    # -- faults -----------------------------------------------------------
    def cut_after_bytes(self, n: int, *, connections: int | None = 1, live: bool = False) -> None:
        self._call(self.proxy.cut_after_bytes, n, connections=connections, live=live)

    def clear_cuts(self) -> None:
        self._call(self.proxy.clear_cuts)

    def cut_now(self) -> int:
        return self._call(self.proxy.cut_now)

    def chaos(
        self,
        seed: int,
        *,
        mean_bytes: float | None = None,
        cut_probability_per_chunk: float | None = None,
        max_cuts: int | None = None,
        min_bytes: int = 1,
    ) -> None:
        self._call(
            self.proxy.chaos,
            seed,
            mean_bytes=mean_bytes,
            cut_probability_per_chunk=cut_probability_per_chunk,
            max_cuts=max_cuts,
            min_bytes=min_bytes,
        )

    def stop_chaos(self) -> None:
        self._call(self.proxy.stop_chaos)

    def stall(self, *, new_connections: bool = True) -> None:
        self._call(self.proxy.stall, new_connections=new_connections)

    def unstall(self) -> None:
        self._call(self.proxy.unstall)

    def delay(self, seconds: float) -> None:
        self._call(self.proxy.delay, seconds)

    def refuse(self, *, rst: bool = False) -> None:
        self._call(self.proxy.refuse, rst=rst)

    def accept(self) -> None:
        self._call(self.proxy.accept)

    def pause_listening(self) -> None:
        self._call(self.proxy.pause_listening)

    def resume_listening(self) -> None:
        self._call(self.proxy.resume_listening)

    def set_chunking(self, chunk_size: ChunkSize, pause: float | None = None) -> None:
        self._call(self.proxy.set_chunking, chunk_size, pause)

    def heal(self) -> None:
        self._call(self.proxy.heal)
