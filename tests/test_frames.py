"""The fast frame parser (forgectl.transport.frames) against websockets' ClientProtocol alone.

The same byte stream, cut at the same places, goes to a bare ``ClientProtocol``
(the reference: every byte through websockets, messages assembled from its
events) and to a ``FrameReader`` over another one. After every read both must
have produced the same messages, be in the same state, have sent the same frames
(pongs, close echoes) and failed with the same error and close code. The streams
mix every opcode, each length encoding (7-bit, 16-bit, 64-bit, and needlessly
wide ones), fragments with control frames between them, compressed frames,
masked frames, reserved bits, oversize frames, bad close frames, invalid UTF-8,
handshake refusals, and an end of stream anywhere.
"""

from __future__ import annotations

import functools
import itertools
import random
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import (
    ServerPerMessageDeflateFactory,
    enable_client_permessage_deflate,
)
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from forgectl.transport.frames import FrameReader

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
URI = parse_uri("ws://127.0.0.1:1/ws/execution-processes/p1/logs/raw")


class Counted(ClientProtocol):
    """A ClientProtocol that counts the bytes it was given."""

    fed = 0

    def receive_data(self, data: bytes | bytearray) -> None:
        self.fed += len(data)
        super().receive_data(data)


def client(pmd: bool, max_size: int | None) -> Counted:
    ws = Counted(
        URI,
        extensions=enable_client_permessage_deflate(None) if pmd else None,
        max_size=max_size,
    )
    ws.key = KEY  # both sides of a comparison get the same handshake answer
    ws.send_request(ws.connect())
    ws.data_to_send()
    return ws


def handshake(pmd: bool) -> tuple[bytes, ServerProtocol]:
    """The server's 101 answer to :func:`client`, and the server (its compressor)."""
    probe = client(pmd, None)
    probe.key = KEY
    request = probe.connect()
    server = ServerProtocol(extensions=[ServerPerMessageDeflateFactory()] if pmd else None)
    raw = b"GET " + request.path.encode() + b" HTTP/1.1\r\n"
    raw += b"".join(f"{k}: {v}\r\n".encode() for k, v in request.headers.raw_items()) + b"\r\n"
    server.receive_data(raw)
    (req,) = server.events_received()
    assert isinstance(req, Request)
    response = server.accept(req)
    server.send_response(response)
    assert response.status_code == 101
    return b"".join(server.data_to_send()), server


def raw_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    width: int | None = None,
) -> bytes:
    """A frame header and payload, written by hand so that any of them can be wrong."""
    n = len(payload)
    if width is None:
        width = 7 if n < 126 else 16 if n < 65536 else 64
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    flag = 0x80 if mask is not None else 0
    if width == 7:
        head = bytes([first, flag | n])
    elif width == 16:
        head = bytes([first, flag | 126]) + struct.pack("!H", n)
    else:
        head = bytes([first, flag | 127]) + struct.pack("!Q", n)
    if mask is not None:
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


def compressed(server: ServerProtocol, opcode: Opcode, payload: bytes) -> bytes:
    """A frame compressed by the server's permessage-deflate (RSV1 set)."""
    return Frame(opcode, payload).serialize(mask=False, extensions=server.extensions)


def sent(ws: ClientProtocol) -> list[tuple[int, bytes, bool] | str]:
    """What the client wrote since last asked: its frames unmasked, and EOF."""
    out: list[tuple[int, bytes, bool] | str] = []
    for data in ws.data_to_send():
        if not data:
            out.append("EOF")
            continue
        length = data[1] & 0x7F
        pos = 2
        if length == 126:
            (length,) = struct.unpack("!H", data[2:4])
            pos = 4
        elif length == 127:
            (length,) = struct.unpack("!Q", data[2:10])
            pos = 10
        mask = data[pos : pos + 4]
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(data[pos + 4 :]))
        assert len(body) == length
        out.append((data[0], body, bool(data[0] & 0x80)))
    return out


@dataclass
class Reference:
    """websockets alone: every byte through ``receive_data``, messages from its events."""

    ws: Counted
    messages: list[bytes] = field(default_factory=list)
    parts: list[bytes] = field(default_factory=list)

    def feed(self, data: bytes) -> None:
        self.ws.receive_data(data)
        self._events()

    def feed_eof(self) -> None:
        self.ws.receive_eof()
        self._events()

    def _events(self) -> None:
        for event in self.ws.events_received():
            if not isinstance(event, Frame):
                continue
            if event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                self.parts.append(bytes(event.data))
                if event.fin:
                    self.messages.append(b"".join(self.parts))
                    self.parts = []


@dataclass
class Fast:
    ws: Counted
    reader: FrameReader = field(init=False)
    messages: list[bytes] = field(default_factory=list)
    size: int = 0

    def __post_init__(self) -> None:
        self.reader = FrameReader(self.ws)

    def feed(self, data: bytes) -> None:
        self.size += self.reader.feed(data, self.messages)

    def feed_eof(self) -> None:
        self.size += self.reader.feed_eof(self.messages)


def _exc(exc: BaseException | None) -> tuple[str, str] | None:
    return None if exc is None else (type(exc).__name__, str(exc))


def observe(ws: ClientProtocol, messages: list[bytes]) -> dict[str, Any]:
    return {
        "messages": list(messages),
        "state": ws.state,
        "close_rcvd": ws.close_rcvd,
        "close_sent": ws.close_sent,
        "close_rcvd_then_sent": ws.close_rcvd_then_sent,
        "parser_exc": _exc(ws.parser_exc),
        "handshake_exc": _exc(ws.handshake_exc),
        "current_size": ws.current_size,
        "close_expected": ws.close_expected(),
        "sent": sent(ws),
        "extensions": [type(e).__name__ for e in ws.extensions],
    }


def act(ws: ClientProtocol, action: str) -> None:
    """What the link does on its own: close (Ctrl-C, the end of a stream) or fail
    (a keepalive timeout)."""
    if ws.state is not State.OPEN:
        return
    if action == "close":
        ws.send_close(1000)
    else:
        ws.fail(1011, "keepalive ping timeout")


def compare(
    stream: bytes,
    cuts: list[int],
    *,
    pmd: bool,
    max_size: int | None,
    eof: bool,
    action: tuple[int, str] | None = None,
) -> tuple[Reference, Fast]:
    """Feed ``stream`` cut at ``cuts`` to both; they agree after every read.
    ``action``: after that many bytes, both close or fail the connection."""
    ref = Reference(client(pmd, max_size))
    fast = Fast(client(pmd, max_size))
    marks = set(cuts) | ({action[0]} if action else set())
    bounds = [0, *sorted(c for c in marks if 0 < c < len(stream)), len(stream)]
    for lo, hi in itertools.pairwise(bounds):
        chunk = stream[lo:hi]
        ref.feed(chunk)
        fast.feed(chunk)
        assert observe(fast.ws, fast.messages) == observe(ref.ws, ref.messages), (lo, hi)
        if action is not None and hi == action[0]:
            act(ref.ws, action[1])
            act(fast.ws, action[1])
            assert observe(fast.ws, fast.messages) == observe(ref.ws, ref.messages), action
    if eof:
        ref.feed_eof()
        fast.feed_eof()
        assert observe(fast.ws, fast.messages) == observe(ref.ws, ref.messages), "eof"
    assert fast.size == sum(len(m) for m in fast.messages)
    assert all(type(m) is bytes for m in fast.messages)
    if action is None and len(bounds) > 2:
        # Which frames take the fast path depends on the stream, never on where
        # it was cut: websockets is given the same bytes as when read in one piece.
        assert fast.ws.fed == fed_in_one_piece(stream, pmd, max_size, eof)
    return ref, fast


@functools.lru_cache(maxsize=4)
def fed_in_one_piece(stream: bytes, pmd: bool, max_size: int | None, eof: bool) -> int:
    """How many bytes websockets reads under the fast path when ``stream`` comes whole."""
    fast = Fast(client(pmd, max_size))
    fast.feed(stream)
    if eof:
        fast.feed_eof()
    return fast.ws.fed


# -- examples worth naming -------------------------------------------------------------


def test_common_frames_never_reach_websockets() -> None:
    """The fast path is taken: websockets reads the handshake and nothing else."""
    answer, _ = handshake(False)
    frames = [
        raw_frame(1, b"small"),
        raw_frame(2, b"\x00" * 126),  # 16-bit length
        raw_frame(1, b"x" * 70_000),  # 64-bit length
        raw_frame(1, b"wide", width=64),  # a needlessly wide length is still valid
        raw_frame(1, b""),
        raw_frame(1, b"bad \xff\xfe utf-8"),  # never decoded, as websockets alone
    ]
    stream = answer + b"".join(frames)
    for cuts in ([], list(range(len(answer) - 5, len(stream), 7)), [len(answer) + 1]):
        ref, fast = compare(stream, cuts, pmd=False, max_size=1 << 20, eof=False)
        assert len(fast.messages) == 6
        assert fast.ws.fed == len(answer)
        assert ref.ws.fed == len(stream)


def test_every_split_of_a_mixed_stream() -> None:
    """Each opcode and length encoding, cut at every byte, then at every pair of bytes
    near the interesting places."""
    answer, server = handshake(True)
    stream = answer + b"".join(
        [
            raw_frame(1, b"a" * 125),
            raw_frame(9, b"ping!"),
            raw_frame(1, b"frag", fin=False),
            raw_frame(10, b"pong"),
            raw_frame(0, b"ment", fin=False),
            raw_frame(0, b"ed", fin=True),
            raw_frame(2, b"b" * 300),
            compressed(server, Opcode.TEXT, b"squeezed " * 20),
            raw_frame(2, b"d" * 200, fin=False),  # uncommon, with a 16-bit length
            raw_frame(9, b"wide ping", width=16),
            raw_frame(0, b"e" * 10, width=64),
            raw_frame(1, b"c" * 65_536),
            raw_frame(1, b"after"),
            raw_frame(8, Close(1000, "bye").serialize()),
            raw_frame(1, b"after the close: discarded"),
        ]
    )
    expected = [
        b"a" * 125,
        b"fragmented",
        b"b" * 300,
        b"squeezed " * 20,
        b"d" * 200 + b"e" * 10,
        b"c" * 65_536,
        b"after",
    ]
    ref, _ = compare(stream, [], pmd=True, max_size=1 << 20, eof=True)
    assert ref.messages == expected
    big = stream.index(b"c" * 65_536)  # not cut everywhere inside its payload
    places = [*range(len(answer) - 3, big + 3), big + 30_000, *range(big + 65_530, len(stream))]
    for cut in places:
        compare(stream, [cut], pmd=True, max_size=1 << 20, eof=True)
        compare(stream, [cut, cut + 1, cut + 3], pmd=True, max_size=1 << 20, eof=True)
        for action in ACTIONS:
            compare(stream, [], pmd=True, max_size=1 << 20, eof=True, action=(cut, action))


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (raw_frame(3, b"x"), "invalid opcode"),
        (raw_frame(11, b"x"), "invalid opcode"),
        (raw_frame(1, b"x", mask=b"\x01\x02\x03\x04"), "incorrect masking"),
        (raw_frame(1, b"x", rsv=4), "reserved bits must be 0"),
        (raw_frame(2, b"x", rsv=1), "reserved bits must be 0"),  # RSV1 without compression
        (raw_frame(1, b"x" * 301), "exceeds limit"),
        (raw_frame(1, b"x" * 10, width=64)[:2] + b"\xff" * 8, "exceeds limit"),
        (raw_frame(0, b"x"), "unexpected continuation frame"),
        (raw_frame(1, b"a", fin=False) + raw_frame(1, b"b"), "expected a continuation frame"),
        (raw_frame(9, b"p" * 126), "control frame too long"),
        (raw_frame(9, b"p", fin=False), "fragmented control frame"),
        (raw_frame(8, b"\x03"), "close frame too short"),
        (raw_frame(8, b"\x03\xe8\xff"), "invalid start byte"),  # bad UTF-8 close reason
        (raw_frame(8, b"\x03\xed"), "invalid status code"),  # 1005 may not be sent
        (raw_frame(1, b"half a frame")[:-4], "stream ends after"),  # and nothing after it
        (raw_frame(1, b"x" * 200)[:-50], "stream ends after"),
    ],
)
def test_bad_frames_fail_alike(frame: bytes, error: str) -> None:
    answer, _ = handshake(False)
    after = b"" if error == "stream ends after" else raw_frame(1, b"never")
    stream = answer + raw_frame(1, b"before") + frame + after
    for cut in [None, *range(len(answer), len(stream))]:
        ref, fast = compare(stream, [] if cut is None else [cut], pmd=False, max_size=300, eof=True)
        assert fast.messages[0] == b"before"
        assert b"never" not in fast.messages
        assert ref.ws.state is State.CLOSED
        assert error in str(ref.ws.parser_exc)


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\nnope" + raw_frame(1, b"x"),
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>" + b"\x81\x01x",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n" + raw_frame(1, b"x"),
        b"\x15\x03\x01\x00\x02\x02\x46",  # a TLS alert: http:// to a TLS port
        b"HTTP/1.1 101 OK\r\n" + b"X: " + b"y" * 9000 + b"\r\n\r\n",
    ],
    ids=["401", "html", "bad-accept", "tls-alert", "long-header"],
)
def test_refused_handshakes_fail_alike(answer: bytes) -> None:
    for cut in [None, *range(1, len(answer), 1 + len(answer) // 200)]:
        ref, fast = compare(answer, [] if cut is None else [cut], pmd=False, max_size=300, eof=True)
        assert ref.ws.handshake_exc is not None
        assert fast.messages == []


# -- the fuzzer ------------------------------------------------------------------------

OPCODES = [1, 2, 1, 2, 1, 2, 0, 8, 9, 10, 3, 4, 5, 6, 7, 11, 12, 13, 14, 15]


@st.composite
def frames(draw: st.DrawFn, server: ServerProtocol, pmd: bool) -> bytes:
    """One frame, usually a common one, sometimes anything a server could send."""
    opcode = draw(st.sampled_from(OPCODES))
    size = draw(
        st.one_of(
            st.integers(0, 125),
            st.integers(0, 125),
            st.integers(126, 400),
            st.sampled_from([65_535, 65_536, 70_000]),
        )
    )
    if size > 400:
        payload = random.Random(size).randbytes(size)
    elif draw(st.booleans()):
        payload = draw(st.binary(min_size=size, max_size=size))
    else:  # text, sometimes broken
        text = draw(st.text(max_size=size // 2)).encode()
        payload = text + (b"\xff" if draw(st.integers(0, 9)) == 0 else b"")
    if opcode == 8 and draw(st.booleans()):
        code = draw(st.sampled_from([1000, 1001, 1011, 3000, 4999, 1005, 999]))
        payload = struct.pack("!H", code) + draw(st.text(max_size=20)).encode()
    if pmd and opcode in (1, 2) and draw(st.integers(0, 3)) == 0:
        return compressed(server, Opcode(opcode), payload)
    fin = draw(st.integers(0, 5)) > 0
    rsv = draw(st.sampled_from([0] * 12 + [1, 2, 4, 7]))
    mask = b"\x11\x22\x33\x44" if draw(st.integers(0, 15)) == 0 else None
    width = draw(st.sampled_from([None] * 8 + [16, 64])) if size < 65_536 else None
    if width == 16 and size >= 65_536:
        width = None
    return raw_frame(opcode, payload, fin=fin, rsv=rsv, mask=mask, width=width)


@st.composite
def streams(draw: st.DrawFn) -> Case:
    pmd = draw(st.booleans())
    answer, server = handshake(pmd)
    body = b"".join(draw(st.lists(frames(server, pmd), max_size=12)))
    if draw(st.integers(0, 4)) == 0:  # the connection ends in the middle of something
        body = body[: draw(st.integers(0, len(body)))]
    stream = answer + body
    cuts = draw(st.lists(st.integers(0, len(stream)), max_size=12))
    if draw(st.integers(0, 3)) == 0:  # some reads a few bytes long
        start = draw(st.integers(len(answer) - 2, max(len(answer) - 2, len(stream) - 1)))
        cuts += range(start, min(len(stream), start + 40), draw(st.integers(1, 5)))
    max_size = draw(st.sampled_from([300, 66_000, 1 << 20, None]))
    action = None
    if draw(st.integers(0, 4)) == 0:
        action = (draw(st.integers(len(answer), len(stream))), draw(st.sampled_from(ACTIONS)))
    return Case(stream, cuts, pmd, max_size, draw(st.booleans()), action)


ACTIONS = ["close", "fail"]


@dataclass
class Case:
    stream: bytes
    cuts: list[int]
    pmd: bool
    max_size: int | None
    eof: bool
    action: tuple[int, str] | None


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(streams())
def test_fuzz_against_websockets(case: Case) -> None:
    compare(
        case.stream,
        case.cuts,
        pmd=case.pmd,
        max_size=case.max_size,
        eof=case.eof,
        action=case.action,
    )


def test_compressed_stream_interleaved_with_plain_frames() -> None:
    """permessage-deflate negotiated: compressed messages (context takeover) between
    uncompressed ones, which take the fast path."""
    answer, server = handshake(True)
    rng = random.Random(7)
    parts = []
    plain = 0
    for i in range(200):
        if rng.random() < 0.3:
            parts.append(compressed(server, Opcode.TEXT, f"squeezed {i} ".encode() * 10))
        else:
            parts.append(raw_frame(1, f"plain {i}".encode()))
            plain += len(parts[-1])
    stream = answer + b"".join(parts)
    ref, fast = compare(
        stream, list(range(0, len(stream), 97)), pmd=True, max_size=1 << 20, eof=True
    )
    assert len(fast.messages) == 200
    assert fast.ws.fed == len(stream) - plain
    assert zlib.crc32(b"".join(ref.messages)) == zlib.crc32(b"".join(fast.messages))
