"""JSON lines: one server object per line, unchanged, for jq and scripts."""

from __future__ import annotations

import orjson

from ..events import Event, deep_json
from .base import Renderer

_NL = orjson.OPT_APPEND_NEWLINE
_dumps = orjson.dumps


class JsonLinesRenderer(Renderer):
    def render(self, event: Event) -> None:
        try:
            line = _dumps(event.data, option=_NL)
        except TypeError:  # nested too deep for orjson: the server's object still prints
            line = deep_json(event.data) + b"\n"
        self.write(line)
