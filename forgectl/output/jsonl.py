"""JSON lines: one server object per line, unchanged, for jq and scripts."""

from __future__ import annotations

from typing import ClassVar

from orjson import OPT_APPEND_NEWLINE, dumps

from ..events import Encoded, Event, json_line
from .base import Renderer

_NL = OPT_APPEND_NEWLINE


class JsonLinesRenderer(Renderer):
    #: Lines a decoder wrote itself are taken as they are (see :class:`~forgectl.events.Encoded`).
    fuses: ClassVar[str | None] = "json"

    def render(self, event: Event) -> None:
        if type(event) is Encoded:
            self.write(event.lines)
            return
        try:
            line = dumps(event.data, option=_NL)  # json_line, inlined: the per-event path
        except TypeError:
            line = json_line(event.data)
        self.write(line)
