"""Raw process output: the bytes the process wrote, nothing added."""

from __future__ import annotations

from ..events import Event, RawChunk
from .base import LineStamper, Renderer


class RawRenderer(Renderer):
    """Writes raw chunks verbatim; with ``timestamps``, each line starts with the
    local time it arrived (chunks are not lines, so the prefix goes after each
    newline, never inside a line)."""

    def __init__(self, *args: object, timestamps: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.timestamps = timestamps
        self.stamper = LineStamper()

    def render(self, event: Event) -> None:
        if type(event) is RawChunk and not self.timestamps:
            self.write(event.raw)  # the hot path of ``logs --raw``
            return
        if isinstance(event, RawChunk):
            data = event.raw
        else:  # a normalized entry in a raw view: its message is the line
            message = event.get("message")
            data = (message if isinstance(message, str) else "").encode() + b"\n"
        if self.timestamps and data:
            data = self.stamper.stamp_bytes(data)
        self.write(data)
