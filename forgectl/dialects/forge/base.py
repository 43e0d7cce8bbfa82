"""What the real server's decoders share: frame parsing and bad-frame reports."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ...events import BACKLOG_END, Event
from ..base import Decoder
from ..patch import READY, BadFrame, Frame, load, shape

if TYPE_CHECKING:
    from ...diagnostics import Diagnostics

#: The ``Ready`` marker's frame is this short (``{"Ready": true}``, give or take spaces).
_MARKER_MAX = 64
_READY_BYTES = READY.encode()

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
            if parsed.ready:
                return self.ready()
            return self.apply(parsed)
        except BadFrame as bad:
            self.diag.bad_frame(bad.kind, bad.detail)
            return ()

    def apply(self, frame: Frame) -> list[Event]:
        raise NotImplementedError

    def marks_history(self, frame: bytes | str) -> bool:
        if len(frame) > _MARKER_MAX:
            return False
        if (_READY_BYTES not in frame) if isinstance(frame, bytes) else (READY not in frame):
            return False
        try:
            return shape(load(frame)).ready
        except BadFrame:
            return False

    def ready(self) -> list[Event]:
        """The server marked the end of the history (``{"Ready": true}``): from
        now on this decoder knows where it ends, and it ends here. A decoder that
        knew already (a snapshot frame told it) takes the marker as a repeat."""
        if self.knows_history:
            return []
        self.knows_history = True
        holding = self.holding()
        out = list(self.history_over())
        if not holding:  # a decoder holding events places the end among them
            out.append(BACKLOG_END)
        return out

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
