"""A second reading of a stream's history, to find what the first one missed.

The real server drops messages when a client joins a busy stream (between
copying its history and subscribing to live output). A second connection,
opened once the first has its first frame, gets a later copy of the history
that includes them; the decoder compares (see
:meth:`~forgectl.dialects.forge.logs.ForgeLogsDecoder.verified`). This module
only reads it: to the end of that history (the late rule of
:mod:`.history`) and as far as the verifier says it must, or to the stream's end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .history import CUT, SettledHistory

if TYPE_CHECKING:
    from ..dialects.base import Verifier
    from ..transport import Channel


async def read_history(
    open_channel: Callable[[], Awaitable[Channel]],
    verifier: Verifier,
    settle: float,
    first_wait: float,
) -> Verifier:
    """Feed ``verifier`` the history of a fresh connection; raises ForgeError
    (or StreamLost) when it cannot be read."""
    loop = asyncio.get_running_loop()
    channel = await open_channel()
    try:
        receive = channel.receiver()
        history: SettledHistory | None = SettledHistory(loop.time(), settle, first_wait)
        while not verifier.finished:
            if history is None and not verifier.needs_more():
                return verifier
            since = loop.time()
            before = channel.received()
            try:
                if history is None:
                    batch = await receive()
                else:
                    async with asyncio.timeout_at(history.due()):
                        batch = await receive()
            except TimeoutError:
                assert history is not None
                history.wait(since, loop.time(), channel.received() - before)
                if history.over:
                    history = None
                continue
            except Exception as exc:
                channel.closed_by(exc)  # raises unless closed cleanly
                return verifier
            if history is None:
                for frame in batch:
                    verifier.feed(frame)
                continue
            now = loop.time()
            for frames in history.batch(now, now - since, channel.received() - before, batch):
                if frames is CUT:
                    history = None
                    continue
                for frame in frames:
                    verifier.feed(frame)
        return verifier
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(0.5):
                await channel.close()
        channel.abort()
