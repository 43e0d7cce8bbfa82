"""The reference client: websockets' asyncio API plus orjson, nothing else.

``python bench/bare_client.py URL [--raw] [--with-click]`` writes every text frame to
stdout, re-serialized by orjson as one JSON line (or verbatim with ``--raw``), through
stdout's buffer, flushed once at the end. This is the floor forgectl is held to.
``--with-click`` also imports click, and nothing else changes: the floor for a
command line built on click, in the one-frame rows where start-up is the run.
"""

from __future__ import annotations

import asyncio
import sys

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK

NL = orjson.OPT_APPEND_NEWLINE


async def main(url: str, raw: bool) -> None:
    write = sys.stdout.buffer.write
    loads, dumps = orjson.loads, orjson.dumps
    async with connect(url, max_size=None) as ws:
        recv = ws.recv
        try:
            if raw:
                while True:
                    write(await recv(False))
            else:
                while True:
                    write(dumps(loads(await recv(False)), option=NL))
        except ConnectionClosedOK:
            pass
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    if "--with-click" in sys.argv[2:]:
        import click  # noqa: F401
    asyncio.run(main(sys.argv[1], "--raw" in sys.argv[2:]))
