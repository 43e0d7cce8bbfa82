"""Recognising the history a server sends again after a reconnect."""

from __future__ import annotations

import zlib
from array import array
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..diagnostics import Diagnostics

#: The first this many messages keep one checksum each: whether a server resends
#: its history at all, and where a short history differs, is known exactly.
EXACT = 1024
#: Past those, a checksum is kept every this many messages: memory stays flat
#: (4 bytes per 64 messages) over millions of lines.
CHECKPOINT = 64
CHECKPOINT_MASK = CHECKPOINT - 1  # CHECKPOINT is a power of two


class ResendFilter:
    """Skips a resent prefix identical to what was already emitted.

    The documented dialect gives messages no ids, so after a reconnect the only
    sound rule is: a server that resends its history resends the same messages in
    the same order. Running CRC-32 checksums of what was emitted are compared with
    what arrives after a reconnect. A server that does not resend (its first
    message differs) loses nothing; a history that differs later is reported on
    stderr, and the messages since the last matching checkpoint are printed again
    rather than risk losing one.
    """

    __slots__ = ("count", "crc", "diag", "exact", "marks", "pos", "pos_crc", "what", "window")

    def __init__(self, diag: Diagnostics, what: str = "messages") -> None:
        self.diag = diag
        self.what = what
        self.count = 0  # messages emitted
        self.crc = 0  # running checksum of them
        self.exact = array("I")  # running checksum after each of the first EXACT
        self.marks = array("I")  # ... then after every CHECKPOINT-th
        self.pos = -1  # while replaying: messages of the resent history matched; else -1
        self.pos_crc = 0
        self.window: list[bytes] = []  # resent messages since the last checkpoint

    @property
    def replaying(self) -> bool:
        return self.pos >= 0

    def connected(self) -> None:
        if self.count:
            self.pos = 0
            self.pos_crc = 0
            self.window = []

    def take(self, frame: bytes) -> None:
        """Record ``frame`` as emitted (the per-message cost when not replaying:
        :meth:`took` inlined)."""
        crc = self.crc = zlib.crc32(frame, self.crc)
        count = self.count = self.count + 1
        if count <= EXACT:
            self.exact.append(crc)
        elif not count & CHECKPOINT_MASK:
            self.marks.append(crc)

    def took(self, crc: int) -> None:
        """Record a message as emitted, by the running checksum it brings the
        history to (``zlib.crc32(frame, self.crc)``)."""
        self.crc = crc
        count = self.count = self.count + 1
        if count <= EXACT:
            self.exact.append(crc)
        elif not count & CHECKPOINT_MASK:
            self.marks.append(crc)

    def replay(self, frame: bytes) -> list[bytes]:
        """While replaying: the messages to emit now (none while the history matches)."""
        pos = self.pos + 1
        crc = zlib.crc32(frame, self.pos_crc)
        if pos <= EXACT:
            if self.exact[pos - 1] != crc:
                return self._diverged(pos - 1, self.pos_crc, [frame])
            self._advance(pos, crc)
            return []
        self.window.append(frame)
        if pos & CHECKPOINT_MASK and pos != self.count:
            self.pos, self.pos_crc = pos, crc
            return []
        expected = self.crc if pos == self.count else self.marks[(pos - EXACT) // CHECKPOINT - 1]
        if crc != expected:
            frames = self.window
            good = pos - len(frames)
            return self._diverged(good, self._crc_at(good), frames)
        self.window = []
        self._advance(pos, crc)
        return []

    def _advance(self, pos: int, crc: int) -> None:
        self.pos, self.pos_crc = pos, crc
        if pos == self.count:  # the whole history was resent: back to live
            self.pos = -1

    def _crc_at(self, count: int) -> int:
        if count == 0:
            return 0
        if count <= EXACT:
            return self.exact[count - 1]
        return self.marks[(count - EXACT) // CHECKPOINT - 1]

    def _diverged(self, good: int, good_crc: int, frames: list[bytes]) -> list[bytes]:
        """The resent history stops matching after ``good`` messages."""
        if good or len(frames) > 1:
            repeated = (
                f"; up to {len(frames) - 1} {self.what} may be repeated" if len(frames) > 1 else ""
            )
            self.diag.warning(
                f"after reconnecting, the server resent a history that differs from what "
                f"was printed after {self.what[:-1]} #{good}; printing from there{repeated}"
            )
        # The history as resent up to ``good`` is the reference from now on.
        self.count, self.crc, self.pos, self.window = good, good_crc, -1, []
        del self.exact[min(good, EXACT) :]
        del self.marks[max(0, (good - EXACT) // CHECKPOINT) :]
        for frame in frames:
            self.take(frame)
        return frames
