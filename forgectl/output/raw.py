"""Raw process output: the bytes the process wrote, nothing added.

Into a file or a pipe the bytes are written exactly as they came. On a terminal
(``sanitize``) they pass :class:`~forgectl.escape.TerminalFilter` first: colours,
``\\r`` and line erase still work, but a process (or a server) cannot set the
title, clear the screen or write to the clipboard. ``logs --raw --verbatim``
turns that off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from ..escape import TerminalFilter
from ..events import Event, RawChunk
from .base import LineStamper, Renderer

NEUTRALIZED = (
    "terminal control sequences in the raw output (titles, clipboard, screen and "
    "mode changes) are not passed to the terminal; --verbatim passes them, and a "
    "file or pipe gets every byte"
)


class RawRenderer(Renderer):
    """Writes raw chunks verbatim; with ``timestamps``, each line starts with the
    local time it arrived (chunks are not lines, so the prefix goes after each
    newline, never inside a line); with ``sanitize``, through a terminal filter,
    saying once through ``notice`` that it removed something.

    Chunks are not frames: a decoder may hand it the output of many frames as one
    chunk (``fuses``)."""

    fuses: ClassVar[str | None] = "raw"

    def __init__(
        self,
        *args: object,
        timestamps: bool = False,
        sanitize: bool = False,
        notice: Callable[[str], None] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.timestamps = timestamps
        self.stamper = LineStamper()
        self.filter = TerminalFilter() if sanitize else None
        self.notice = notice

    def render(self, event: Event) -> None:
        if type(event) is RawChunk and not self.timestamps and self.filter is None:
            self.write(event.raw)  # the hot path of ``logs --raw``
            return
        if isinstance(event, RawChunk):
            data = event.raw
        else:  # a normalized entry in a raw view: its message is the line
            message = event.get("message")
            data = (message if isinstance(message, str) else "").encode() + b"\n"
        if self.filter is not None:
            data = self._filtered(self.filter.feed(data))
        if self.timestamps and data:
            data = self.stamper.stamp_bytes(data)
        self.write(data)

    def _filtered(self, data: bytes) -> bytes:
        if self.notice is not None and self.filter is not None and self.filter.removed:
            self.notice(NEUTRALIZED)
            self.notice = None
        return data

    def close(self) -> None:
        if self.filter is not None:
            tail = self._filtered(self.filter.finish())
            if tail:
                if self.timestamps:
                    tail = self.stamper.stamp_bytes(tail)
                self.write(tail)
        super().close()
