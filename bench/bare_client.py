"""The reference client: websockets' asyncio API plus orjson, nothing else.

``python bench/bare_client.py URL [--raw]`` writes every text frame to stdout,
re-serialized by orjson as one JSON line (or verbatim with ``--raw``), through
stdout's buffer, flushed once at the end. This is the floor forgectl is held to.
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
    asyncio.run(main(sys.argv[1], "--raw" in sys.argv[2:]))
