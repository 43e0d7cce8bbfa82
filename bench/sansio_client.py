"""Stretch experiment: websockets' sans-I/O ``ClientProtocol`` under an asyncio.Protocol.

``python bench/sansio_client.py URL [--raw]`` does what bench/bare_client.py
does (each text frame re-serialized by orjson as a JSON line, or verbatim with
``--raw``), but frames are handled inside ``data_received``: no future, no task
switch and no queue per frame. A prototype for measuring only; forgectl does
not use it.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

NL = orjson.OPT_APPEND_NEWLINE


class SansIOClient(asyncio.Protocol):
    def __init__(self, url: str, raw: bool, done: asyncio.Future[int]) -> None:
        self.ws = ClientProtocol(parse_uri(url), max_size=None)
        self.raw = raw
        self.done = done
        self.transport: asyncio.Transport | None = None
        self.write = sys.stdout.buffer.write
        self.parts: list[
            bytes | bytearray | memoryview
        ] = []  # a fragmented message being reassembled

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self.send_pending()

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        write = self.write
        raw = self.raw
        loads, dumps = orjson.loads, orjson.dumps
        for event in ws.events_received():
            if type(event) is Frame:
                opcode = event.opcode
                if opcode is Opcode.TEXT or opcode is Opcode.BINARY or opcode is Opcode.CONT:
                    payload = event.data
                    if not event.fin:
                        self.parts.append(payload)
                        continue
                    if self.parts:
                        self.parts.append(payload)
                        payload = b"".join(self.parts)
                        self.parts = []
                    write(payload if raw else dumps(loads(payload), option=NL))
            elif isinstance(event, Response) and event.status_code != 101:
                self.finish(1)
        self.send_pending()

    def eof_received(self) -> bool:
        self.ws.receive_eof()
        self.send_pending()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        close = self.ws.close_rcvd
        self.finish(0 if close is not None and close.code == 1000 else 1)

    def send_pending(self) -> None:
        transport = self.transport
        assert transport is not None
        for data in self.ws.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()
        if self.ws.state is State.CLOSED:
            transport.close()

    def finish(self, status: int) -> None:
        if not self.done.done():
            self.done.set_result(status)


async def main(url: str, raw: bool) -> int:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    parts = urlsplit(url)
    transport, _ = await loop.create_connection(
        lambda: SansIOClient(url, raw, done), parts.hostname or "127.0.0.1", parts.port or 80
    )
    try:
        status = await done
    finally:
        transport.close()
    sys.stdout.buffer.flush()
    return status


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], "--raw" in sys.argv[2:])))
