"""JSON lines: one server object per line, unchanged, for jq and scripts."""

from __future__ import annotations

import orjson

from ..events import Event
from .base import Renderer

_NL = orjson.OPT_APPEND_NEWLINE
_dumps = orjson.dumps


class JsonLinesRenderer(Renderer):
    def render(self, event: Event) -> None:
        self.write(_dumps(event.data, option=_NL))
