"""Memory bounded by the frame: 16 MiB messages through ``logs --raw`` and
``logs --json``, as a process, its peak RSS compared with a one-line run.

``--raw`` holds the message once (its payload is written into one buffer as it
arrives and handed over without a copy); ``--json`` twice at its peak: the
frame and its text, then the text and the entry, then the entry and its line
(``orjson.loads`` alone would hold it three times: it parses a copy of its
input; the bare websockets+orjson client peaks so). Two messages in a row: the
second arrives once the first, and what it became, are gone. The server writes
each frame in one go; stdout is a file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol

pytestmark = pytest.mark.timeout(120)

MIB = 1 << 20
#: Under and over glibc's largest mmap threshold (32 MiB): a freed 16 MiB block
#: would stay in the heap, resident, had forgectl not fixed that threshold at
#: the first large frame (transport.frames.large_frames).
SIZES = [16 * MIB, 40 * MIB]

#: Runs forgectl in this process and records its own peak RSS (VmHWM: the
#: high-water mark of this address space, not inherited across exec as
#: getrusage's ru_maxrss is).
WRAPPER = """
import atexit, os, sys
def record():
    with open("/proc/self/status") as status:
        peak = next(line for line in status if line.startswith("VmHWM:")).split()[1]
    with open(os.environ["PEAK_FILE"], "w") as out:
        out.write(peak)
atexit.register(record)
sys.argv = ["forgectl", *sys.argv[1:]]
from forgectl.cli import entry
entry()
"""


def payload(kind: str, size: int) -> bytes:
    if kind == "raw":
        return b"x" * (size - 1) + b"\n"
    head, tail = b'{"level":"info","message":"', b'","source":"stdout"}'
    return head + b"y" * (size - len(head) - len(tail)) + tail


class OneFrameServer:
    """Loopback WebSocket server: each connection gets ``payload(kind, size)`` for
    the process id ``<kind>-<size>-<count>``, ``count`` times, a frame each, then
    a normal close."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> OneFrameServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()
        server.close()
        self.loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            proto = ServerProtocol(max_size=None)
            proto.receive_data(await reader.readuntil(b"\r\n\r\n"))
            (request,) = proto.events_received()
            proto.send_response(proto.accept(request))  # type: ignore[arg-type]
            writer.write(b"".join(proto.data_to_send()))
            path = request.path.split("?")[0]  # type: ignore[union-attr]
            kind, size, count = path.split("/")[3].split("-")
            frame = Frame(Opcode.TEXT, payload(kind, int(size)))
            for _ in range(int(count)):
                writer.write(frame.serialize(mask=False, extensions=[]))
                await writer.drain()
            proto.send_close(1000)
            writer.write(b"".join(proto.data_to_send()))
            await writer.drain()
            await reader.read()  # until the client closes
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture(scope="module")
def server() -> Iterator[OneFrameServer]:
    with OneFrameServer() as srv:
        yield srv


def peak_rss(
    srv: OneFrameServer, kind: str, size: int, tmp: Path, count: int = 1
) -> tuple[int, bytes]:
    """forgectl's peak RSS (bytes) for ``count`` messages of ``size`` bytes; its output."""
    out = tmp / f"out-{kind}-{size}"
    peak = tmp / f"peak-{kind}-{size}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORGE_", "FORGECTL_"))}
    env["PEAK_FILE"] = str(peak)
    argv = ["--server", f"http://127.0.0.1:{srv.port}", "--api", "documented", "logs"]
    argv += [f"{kind}-{size}-{count}", f"--{kind}", "--follow"]
    with out.open("wb") as stdout:
        proc = subprocess.run(
            [sys.executable, "-c", WRAPPER, *argv],
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
            timeout=100,
        )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    return int(peak.read_text()) * 1024, out.read_bytes()


@pytest.mark.parametrize("size", SIZES, ids=[f"{s // MIB}MiB" for s in SIZES])
@pytest.mark.parametrize(("kind", "bound"), [("raw", 1.4), ("json", 2.4)])
def test_peak_memory_is_bounded_by_the_frame(
    kind: str, bound: float, size: int, server: OneFrameServer, tmp_path: Path
) -> None:
    base, _ = peak_rss(server, kind, 200, tmp_path)
    peak, output = peak_rss(server, kind, size, tmp_path, count=2)
    sent = payload(kind, size)
    expected = 2 * (sent if kind == "raw" else sent + b"\n")  # orjson writes it back the same
    assert len(output) == len(expected)
    assert hashlib.sha256(output).digest() == hashlib.sha256(expected).digest()
    grown = (peak - base) / size
    assert grown <= bound, (
        f"{kind}: peak {peak / MIB:.1f} MiB, {grown:.2f}x the frame over {base / MIB:.1f} MiB"
    )
