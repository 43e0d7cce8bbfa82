"""What the real server's decoders share: frame parsing and bad-frame reports."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ...events import Event
from ..base import Decoder
from ..patch import BadFrame, Frame, load, shape

if TYPE_CHECKING:
    from ...diagnostics import Diagnostics

ENTRIES = "/entries/"
_ENTRIES_LEN = len(ENTRIES)
PROCESSES = "/execution_processes"


class PatchDecoder(Decoder):
    """Shared frame parsing and bad-frame reporting."""

    def __init__(self, diag: Diagnostics) -> None:
        self.diag = diag

    def feed(self, frame: bytes | str) -> Iterable[Event]:
        try:
            obj = load(frame)
        except BadFrame as bad:
            self.diag.bad_frame(bad.kind, bad.detail)
            return ()
        return self.feed_object(obj)

    def feed_object(self, obj: Any) -> Iterable[Event]:
        """The general path, for a frame already parsed."""
        try:
            parsed = shape(obj)
            if parsed.finished:
                self.done = True
                return self.finish()
            return self.apply(parsed)
        except BadFrame as bad:
            self.diag.bad_frame(bad.kind, bad.detail)
            return ()

    def apply(self, frame: Frame) -> list[Event]:
        raise NotImplementedError

    def finish(self) -> list[Event]:
        return []

    def unknown_path(self, op: str, path: str) -> None:
        self.diag.bad_frame("JSON Patch op on an unknown path", f"{op} {path}")


#: An entry index further than this past the next one is not applied: the server
#: numbers entries in order, and a gap costs memory for every index skipped.
MAX_AHEAD = 1_000_000


def _index(rest: str | None) -> int | None:
    """An entry index in decimal ASCII digits (``"²"`` is a digit to str.isdigit)."""
    if rest is None or len(rest) > 15 or not (rest.isascii() and rest.isdigit()):
        return None
    return int(rest)
