"""The real Forge server (``@automagik/forge``): JSON Patch streams under ``/api/...``.

Every stream is translated into the documented event model, so a script sees
the same JSON whichever server it talks to. The server resends each stream from
the start on every connection; decoders skip what they already emitted (by entry
index for logs, by record state for processes, by content for diffs).

- :mod:`.schema` — real-server entries and records → documented events.
- :mod:`.logs`, :mod:`.processes`, :mod:`.diffs` — one decoder per stream.
- :mod:`.routes` — :class:`ForgeDialect`: which route serves a request.
"""

from __future__ import annotations

from .diffs import ForgeDiffDecoder
from .logs import ForgeLogsDecoder, ForgeRawAsLogsDecoder, ForgeRawDecoder
from .processes import ForgeMonitorDecoder
from .routes import ForgeDialect, probe_forge
from .schema import normalize_entry, process_events

__all__ = [
    "ForgeDialect",
    "ForgeDiffDecoder",
    "ForgeLogsDecoder",
    "ForgeMonitorDecoder",
    "ForgeRawAsLogsDecoder",
    "ForgeRawDecoder",
    "normalize_entry",
    "probe_forge",
    "process_events",
]
