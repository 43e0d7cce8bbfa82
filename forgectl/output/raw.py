"""Raw process output: the bytes the process wrote, nothing added."""

from __future__ import annotations

from datetime import datetime

from ..events import Event, RawChunk
from .base import Renderer


class RawRenderer(Renderer):
    """Writes raw chunks verbatim; with ``timestamps``, each line starts with the
    local time it arrived (chunks are not lines, so the prefix goes after each
    newline, never inside a line)."""

    def __init__(self, *args: object, timestamps: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.timestamps = timestamps
        self._at_line_start = True

    def render(self, event: Event) -> None:
        if isinstance(event, RawChunk):
            data = event.raw
        else:  # a normalized entry in a raw view: its message is the line
            message = event.get("message")
            data = (message if isinstance(message, str) else "").encode() + b"\n"
        if self.timestamps and data:
            data = self._stamp(data)
        self.write(data)

    def _stamp(self, data: bytes) -> bytes:
        stamp = datetime.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3].encode() + b" "
        lines = data.split(b"\n")
        out = []
        for i, line in enumerate(lines):
            last = i == len(lines) - 1
            if last and not line:
                break
            if self._at_line_start:
                out.append(stamp)
            out.append(line)
            if not last:
                out.append(b"\n")
                self._at_line_start = True
            else:
                self._at_line_start = False
        return b"".join(out)
