"""Splitting a server's byte stream into messages: the common frame in bulk,
everything else through websockets.

Nearly every frame a server sends is final, unmasked, uncompressed text or
binary, and small. websockets parses each frame with generators and builds an
``Opcode`` enum and a ``Frame`` for it (about 7 µs); :class:`FrameReader` slices
such frames out of a network read itself (well under 1 µs each).

websockets still decides the protocol. It parses the handshake, and every frame
that is not the common case goes to it byte for byte: control frames (pings are
answered, closes echoed), fragments, compressed frames, masked frames, reserved
bits, bad opcodes, frames over the size limit. It sees those bytes when it would
have seen them alone, so it raises the same errors at the same moment and closes
with the same code. The bytes it does not see are only whole common frames,
taken while it waits at a frame boundary with nothing buffered: the one state
where such a frame changes nothing in it (no fragment in progress, nothing to
answer). Once the connection is anything but open, or if websockets logs frames
(debug logging) or negotiated an extension other than permessage-deflate (whose
decoder passes uncompressed frames through untouched), every byte goes to it.

Frames are never decoded: bad UTF-8 in a text frame is the dialect's business,
as it is with websockets' sans-I/O protocol alone.
"""

from __future__ import annotations

import io
import sys

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.protocol import State

_OPEN = State.OPEN
_CONNECTING = State.CONNECTING
_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY
_CONT = Opcode.CONT
#: The first byte of a final, uncompressed text or binary frame.
_FIN_TEXT = 0x81
_FIN_BINARY = 0x82
#: No limit: larger than any 64-bit frame length.
_UNLIMITED = 1 << 64
_END_OF_HEADERS = b"\r\n\r\n"
#: A frame this large makes the allocator give large blocks back (see :func:`large_frames`).
LARGE = 1 << 20
#: glibc's mallopt() parameter for the size from which blocks are mapped on their own.
_M_MMAP_THRESHOLD = -3
_large_seen = False


def large_frames() -> None:
    """From now on, have glibc's malloc give every block of :data:`LARGE` or
    more back to the system when it is freed (once, at the first large frame).

    glibc maps such blocks on their own, but each time one is freed it raises
    that threshold to the block's size (up to 32 MiB): the next frame's copies
    then come from the heap, which keeps what is freed, resident. Two 16 MiB
    JSON messages in a row peaked at 3.2x a frame over the start-up RSS instead
    of the 2x that one does. A threshold set with mallopt() stays where it is
    set. Elsewhere than glibc nothing happens; ctypes is loaded only here."""
    global _large_seen
    if _large_seen:
        return
    _large_seen = True
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (ImportError, OSError, AttributeError):  # not glibc (musl has it as a no-op)
        return
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    mallopt(_M_MMAP_THRESHOLD, LARGE)


class FrameReader:
    """Bytes from the server in, complete messages out (``bytes``, in order).

    :meth:`feed` and :meth:`feed_eof` take the place of ``ws.receive_data`` and
    ``ws.receive_eof``; afterwards the caller sends ``ws.data_to_send()`` and
    reads the handshake outcome from ``ws`` as usual. Events are taken from
    ``ws`` here: the handshake's ``Response`` is dropped (``ws.state`` and
    ``ws.handshake_exc`` tell the outcome), data frames become messages, and
    control frames have been answered by websockets already.
    """

    __slots__ = (
        "body",
        "direct",
        "fragments",
        "frames",
        "head",
        "header",
        "held",
        "max_size",
        "need",
        "owed",
        "probe",
        "ws",
    )

    def __init__(self, ws: ClientProtocol) -> None:
        self.ws = ws
        #: The handshake answer so far, until its headers end (then None).
        self.head: bytearray | None = bytearray()
        #: Every byte goes to websockets (set once, never cleared).
        self.direct = bool(ws.debug) or ws.max_fragment_size is not None
        limit = ws.max_message_size
        self.max_size = _UNLIMITED if limit is None else limit
        #: The start of a frame too short to classify yet (not given to websockets).
        self.held = b""
        #: A common frame being collected: its header, its payload so far, and
        #: how many payload bytes are still to come (0: none being collected).
        #: The payload is written into a BytesIO, whose getvalue() hands over
        #: its own buffer: a 64 MiB message is held once, not twice.
        self.header = b""
        self.body: io.BytesIO | None = None
        self.need = 0
        #: A frame websockets is reading: bytes of it still to pass on, and
        #: while its header is incomplete, the header bytes passed on so far.
        self.owed = 0
        self.probe = b""
        #: Whole frames websockets parsed (pongs, closes, fragments...): with the
        #: messages, whether the peer said anything whole.
        self.frames = 0
        #: A fragmented message websockets is delivering.
        self.fragments: io.BytesIO | None = None

    def pending(self) -> int:
        """Bytes received towards a message not yet complete."""
        size = len(self.ws.reader.buffer) + len(self.held)
        for body in (self.body, self.fragments):
            if body is not None:
                size += body.tell()
        return size

    # -- bytes in ------------------------------------------------------------------

    def feed(self, data: bytes, out: list[bytes]) -> int:
        """Read ``data``; append the messages it completes to ``out``; their size."""
        if self.direct:
            return self._to_ws(data, out)
        if self.head is not None:
            return self._handshake(data, out)
        if self.ws.state is not _OPEN:  # closing or failed: websockets reads the rest
            return self._hand_over(out) + self._to_ws(data, out)
        size = 0
        pos = 0
        if self.need:  # the rest of a common frame (websockets never saw its start)
            need = self.need
            body = self.body
            assert body is not None
            if len(data) < need:
                body.write(data)
                self.need = need - len(data)
                return 0
            body.write(memoryview(data)[:need] if need < len(data) else data)
            message = body.getvalue()
            self.header, self.body, self.need = b"", None, 0
            out.append(message)
            size = len(message)
            pos = need
        elif self.held:
            data = self.held + data
            self.held = b""
        if self.owed:  # the rest of a frame websockets is reading
            owed = self.owed
            if len(data) <= owed:
                self.owed = owed - len(data)
                return self._to_ws(data, out)
            self.owed = 0
            size = self._to_ws(data[:owed], out)
            pos = owed
        elif self.probe:  # websockets is reading a header: how long is its frame?
            passed = len(self.probe)
            total = _frame_length(self.probe + data[:14])
            if total is None:
                self.probe += data
                return self._to_ws(data, out)
            self.probe = b""
            rest = total - passed
            if len(data) <= rest:
                self.owed = rest - len(data)
                return self._to_ws(data, out)
            size = self._to_ws(data[:rest], out)
            pos = rest
        if pos >= len(data):
            return size
        if self.ws.state is not _OPEN:  # closing or failed: websockets reads the rest
            self.direct = True
            return size + self._to_ws(data[pos:] if pos else data, out)
        return size + self._frames(data, pos, out)

    def feed_eof(self, out: list[bytes]) -> int:
        """The server closed its side; what was held goes to websockets first."""
        size = self._hand_over(out)
        ws = self.ws
        if not ws.reader.eof:
            ws.receive_eof()
            size += self._events(out)
        return size

    def _hand_over(self, out: list[bytes]) -> int:
        """From now on websockets reads every byte: it gets what was held back
        (the start of a frame it never saw), so that it decides what that means
        (a frame delivered while closing, discarded after a failure, cut short)."""
        self.direct = True
        self.head = None
        size = 0
        if self.need:
            assert self.body is not None
            pieces = [self.header, self.body.getvalue()]
            self.header, self.body, self.need = b"", None, 0
            for piece in pieces:
                size += self._to_ws(piece, out)
        elif self.held:
            held, self.held = self.held, b""
            size += self._to_ws(held, out)
        return size

    # -- the parser ----------------------------------------------------------------

    def _frames(self, data: bytes, pos: int, out: list[bytes]) -> int:
        """Frames from ``data[pos:]``, which starts at a frame boundary."""
        ws = self.ws
        end = len(data)
        size = 0
        fast = ws.current_size is None  # no fragmented message in progress
        max_size = self.max_size
        append = out.append
        while pos < end:
            if end - pos < 2:
                self.held = data[pos:]
                return size
            first = data[pos]
            length = data[pos + 1]  # the mask bit makes it >= 128: not common
            if _FIN_TEXT <= first <= _FIN_BINARY and length < 128 and fast:
                if length < 126:
                    start = pos + 2
                elif length == 126:
                    start = pos + 4
                    if start > end:
                        self.held = data[pos:]
                        return size
                    length = (data[pos + 2] << 8) | data[pos + 3]
                else:
                    start = pos + 10
                    if start > end:
                        self.held = data[pos:]
                        return size
                    length = int.from_bytes(data[pos + 2 : start], "big")
                if length <= max_size:
                    stop = start + length
                    if stop <= end:
                        append(data[start:stop])
                        size += length
                        pos = stop
                        continue
                    # Longer than this read: collect the payload, join it once.
                    if length >= LARGE and not _large_seen:
                        large_frames()
                    self.header = data[pos:start]
                    body = self.body = io.BytesIO()
                    body.write(memoryview(data)[start:])
                    self.need = stop - end
                    return size
            # Not the common frame: websockets reads it.
            total = _frame_length(data[pos : pos + 14])
            if total is None:  # a header cut short: pass it on, learn its length later
                self.probe = data[pos:]
                return size + self._to_ws(self.probe, out)
            stop = pos + total
            if stop > end:
                self.owed = stop - end
                return size + self._to_ws(data[pos:] if pos else data, out)
            size += self._to_ws(data[pos:stop], out)
            pos = stop
            if ws.state is not _OPEN:
                self.direct = True
                if pos < end:
                    size += self._to_ws(data[pos:], out)
                return size
            fast = ws.current_size is None
        return size

    def _handshake(self, data: bytes, out: list[bytes]) -> int:
        """Until the handshake answer's headers end, websockets reads everything."""
        head = self.head
        assert head is not None
        seen = len(head)
        head += data
        found = head.find(_END_OF_HEADERS, max(0, seen - 3))
        if found < 0:
            size = self._to_ws(data, out)
            if self.ws.state is not _CONNECTING or self.ws.handshake_exc is not None:
                self.head = None
                self.direct = True
            return size
        self.head = None
        cut = found + 4 - seen
        size = self._to_ws(data[:cut] if cut < len(data) else data, out)
        ws = self.ws
        if ws.state is not _OPEN or not all(
            isinstance(extension, PerMessageDeflate) for extension in ws.extensions
        ):
            self.direct = True
            return size + (self._to_ws(data[cut:], out) if cut < len(data) else 0)
        return size + (self._frames(data, cut, out) if cut < len(data) else 0)

    # -- websockets' side ----------------------------------------------------------

    def _to_ws(self, data: bytes, out: list[bytes]) -> int:
        ws = self.ws
        if ws.reader.eof:  # nothing is read after the end of the stream
            return 0
        ws.receive_data(data)
        return self._events(out)

    def _events(self, out: list[bytes]) -> int:
        """Messages from the frames websockets parsed; the rest it has handled."""
        size = 0
        events = self.ws.events_received()
        self.frames += len(events)
        for event in events:
            if type(event) is not Frame:
                continue  # the handshake's Response: ws.state tells the outcome
            opcode = event.opcode
            if opcode is _TEXT or opcode is _BINARY:
                payload = event.data
                if event.fin:
                    message = payload if type(payload) is bytes else bytes(payload)
                    out.append(message)
                    size += len(message)
                else:
                    self.fragments = io.BytesIO()
                    self.fragments.write(payload)
            elif opcode is _CONT:
                fragments = self.fragments
                assert fragments is not None  # else websockets refused the frame
                fragments.write(event.data)
                if event.fin:
                    message = fragments.getvalue()
                    self.fragments = None
                    out.append(message)
                    size += len(message)
        return size


def _frame_length(header: bytes) -> int | None:
    """The whole length of the frame ``header`` starts, or None if cut short."""
    if len(header) < 2:
        return None
    length = header[1] & 0x7F
    size = 2 + (4 if header[1] & 0x80 else 0)
    if length == 126:
        size += 2
        if len(header) < 4:
            return None
        length = int.from_bytes(header[2:4], "big")
    elif length == 127:
        size += 8
        if len(header) < 10:
            return None
        length = int.from_bytes(header[2:10], "big")
    if len(header) < size:
        return None
    return size + length
