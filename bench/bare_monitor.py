"""The reference for ``forgectl monitor --history --until-idle``: websockets + orjson, bare.

``python bench/bare_monitor.py URL [--settle SECONDS]`` prints every process event
of the documented event stream as one JSON line (orjson parse/dump), keeps the
set of running processes (``process_started`` adds, the end events remove), and
exits once the history is over (no frame for ``--settle`` seconds, 0.5 as
forgectl's default) and nothing runs, with a normal close. Nothing else: no
filter, no resend bookkeeping, no heartbeat.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK

NL = orjson.OPT_APPEND_NEWLINE
ENDS = frozenset({"process_completed", "process_failed", "process_stopped"})


async def main(url: str, settle: float) -> None:
    write = sys.stdout.buffer.write
    loads, dumps = orjson.loads, orjson.dumps
    running: set[str] = set()
    loop = asyncio.get_running_loop()
    clock = loop.time
    last = clock()

    async def watch() -> None:
        # One timer for the whole stream, not one per frame: the history is
        # over once no frame came for `settle` seconds.
        while clock() - last < settle or running:
            await asyncio.sleep(settle / 5)
        await ws.close()

    async with connect(url, max_size=None) as ws:
        watcher = asyncio.create_task(watch())
        recv = ws.recv
        try:
            while True:
                event = loads(await recv(False))
                last = clock()
                kind = event.get("type")
                if kind == "process_started":
                    running.add(event["processId"])
                elif kind in ENDS:
                    running.discard(event.get("processId"))
                write(dumps(event, option=NL))
        except ConnectionClosedOK:
            pass
        await watcher
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--settle", type=float, default=0.5)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.settle))
