"""Recognising the history a server sends again after a reconnect."""

from __future__ import annotations

import zlib
from array import array
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..diagnostics import Diagnostics

#: A checksum is kept for every this many frames: memory stays flat (4 bytes per
#: 64 frames) and a history that differs is noticed within this many frames.
CHECKPOINT = 64


class ResendFilter:
    """Skips a resent prefix identical to what was already emitted.

    The documented dialect gives frames no ids, so after a reconnect the only sound
    rule is: a server that resends its history resends the same frames in the same
    order. Running CRC-32 checksums of what was emitted are compared with the
    resent frames; a difference is reported on stderr, never hidden.
    """

    __slots__ = ("count", "crc", "diag", "marks", "pos", "pos_crc", "what")

    def __init__(self, diag: Diagnostics, what: str = "items") -> None:
        self.count = 0
        self.crc = 0
        self.marks = array("I")
        self.pos = -1  # -1: not replaying
        self.pos_crc = 0
        self.diag = diag
        self.what = what

    def connected(self) -> None:
        if self.count:
            self.pos = 0
            self.pos_crc = 0

    @property
    def replaying(self) -> bool:
        """True while a resent history is being skipped."""
        return self.pos >= 0

    def fresh(self, frame: bytes) -> bool:
        """True when ``frame`` is new and must be emitted."""
        if self.pos >= 0:
            pos = self.pos = self.pos + 1
            crc = self.pos_crc = zlib.crc32(frame, self.pos_crc)
            if pos == self.count:
                self.pos = -1
                if crc != self.crc:
                    self._diverged(pos)
                return False
            if pos % CHECKPOINT == 0 and self.marks[pos // CHECKPOINT - 1] != crc:
                self.pos = -1
                self._diverged(pos)
                return self._take(frame)
            return False
        return self._take(frame)

    def _take(self, frame: bytes) -> bool:
        self.count += 1
        self.crc = zlib.crc32(frame, self.crc)
        if self.count % CHECKPOINT == 0:
            self.marks.append(self.crc)
        return True

    def _diverged(self, pos: int) -> None:
        self.diag.warning(
            f"after reconnecting, the server resent a history that differs from what "
            f"was printed (near {self.what} #{pos}); up to {CHECKPOINT} {self.what} "
            "around there may be missing or repeated"
        )
        # From here on the new history is the reference.
        self.count = 0
        self.crc = 0
        self.marks = array("I")
