"""The reference for the real server's JSON Patch log streams: websockets + orjson, bare.

``python bench/bare_forge_client.py URL [--raw]`` reads a ``/normalized-logs/ws``
(or, with ``--raw``, ``/raw-logs/ws``) stream until ``{"finished":true}`` and
applies the ``add`` / ``replace`` ops on ``/entries/N`` itself:

- normalized: each entry becomes the documented JSON line forgectl prints
  (``{level, message, timestamp, source, metadata: {entryType, index,
  revision}}``), printed once the entry stops changing: the newest entry is held
  until another index arrives or the stream finishes; an entry replaced after it
  was printed is printed again with the next revision;
- raw: each ``STDOUT`` / ``STDERR`` entry's content, verbatim.

It does nothing else (no resend bookkeeping, no diagnostics, no tool details),
so it is the floor for what forgectl's real-server dialect does on these streams.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

import orjson
from websockets.asyncio.client import connect

NL = orjson.OPT_APPEND_NEWLINE
#: The README's table: entry type -> (level, source), for the kinds without details.
KINDS = {
    "assistant_message": ("info", "assistant"),
    "system_message": ("info", "system"),
    "user_message": ("info", "user"),
    "user_feedback": ("info", "user"),
    "next_action": ("info", "executor"),
    "thinking": ("debug", "assistant"),
    "loading": ("debug", "executor"),
    "error_message": ("error", "executor"),
    "tool_use": ("info", "tool"),
}
PREFIX = "/entries/"


def documented(index: int, value: dict[str, Any], revision: int) -> dict[str, Any] | None:
    """A ``NORMALIZED_ENTRY`` as a documented log object (None for anything else)."""
    if value.get("type") != "NORMALIZED_ENTRY":
        return None
    content = value["content"]
    kind = content["entry_type"]["type"]
    level, source = KINDS.get(kind, ("info", "executor"))
    return {
        "level": level,
        "message": content.get("content") or "",
        "timestamp": content.get("timestamp"),
        "source": source,
        "metadata": {"entryType": kind, "index": index, "revision": revision},
    }


class Normalized:
    """The apply-and-hold state of one normalized stream; ``feed`` takes one frame.

    ``emit`` gets each documented object to print (bench/bench_patch.py times
    this class in-process with an ``emit`` that prints nothing).
    """

    def __init__(self, emit: Callable[[dict[str, Any]], object]) -> None:
        self.emit = emit
        self.held: tuple[int, dict[str, Any]] | None = None
        self.printed: dict[int, int] = {}  # index -> versions printed

    def feed(self, frame: bytes | str) -> bool:
        """Apply one frame; False once the stream has finished."""
        obj = orjson.loads(frame)
        ops = obj.get("JsonPatch")
        if ops is None:
            return not obj.get("finished")
        for op in ops:
            path = op.get("path", "")
            if op.get("op") in ("add", "replace") and path.startswith(PREFIX):
                index = int(path[len(PREFIX) :])
                held = self.held
                if held is not None and held[0] != index:
                    self.flush()
                self.held = (index, op["value"])
        return True

    def flush(self) -> None:
        if self.held is None:
            return
        index, value = self.held
        self.held = None
        revision = self.printed.get(index, 0)
        doc = documented(index, value, revision)
        if doc is not None:
            self.printed[index] = revision + 1
            self.emit(doc)


class Raw:
    """Raw entries: each ``STDOUT`` / ``STDERR`` content as it comes."""

    def __init__(self, write: Callable[[bytes], object]) -> None:
        self.write = write

    def feed(self, frame: bytes | str) -> bool:
        obj = orjson.loads(frame)
        ops = obj.get("JsonPatch")
        if ops is None:
            return not obj.get("finished")
        for op in ops:
            if op.get("op") in ("add", "replace") and op.get("path", "").startswith(PREFIX):
                value = op["value"]
                if value.get("type") in ("STDOUT", "STDERR"):
                    self.write(value["content"].encode())
        return True

    def flush(self) -> None:
        pass


async def main(url: str, raw: bool) -> None:
    out = sys.stdout.buffer
    write, dumps = out.write, orjson.dumps
    state = Raw(write) if raw else Normalized(lambda doc: write(dumps(doc, option=NL)))
    feed = state.feed
    async with connect(url, max_size=None) as ws:
        recv = ws.recv
        while feed(await recv(False)):
            pass
    state.flush()
    out.flush()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], "--raw" in sys.argv[2:]))
