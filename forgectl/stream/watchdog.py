"""Heartbeats and dead peers: the task beside each connection.

A peer is alive while it says anything: a frame, or a pong to the protocol
pings sent every ``ping_interval`` and whenever the link has been silent for
half of ``stale_timeout``. So a server that answers pings is alive however
quiet its stream is; one that has heard nothing for ``stale_timeout`` seconds
(no frame, no pong — a half-received frame does not count) is dead, and the
driver reconnects. On the documented API the spec's app-level
``{"type":"ping"}`` goes out every ``ping_interval`` too.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..diagnostics import Diagnostics
    from ..dialects.base import Decoder
    from ..transport import Channel
    from .options import StreamOptions


class Watch:
    """What the watchdog found, for the driver."""

    __slots__ = ("stale",)

    def __init__(self) -> None:
        self.stale = False


async def watchdog(
    channel: Channel,
    decoder: Decoder,
    options: StreamOptions,
    diag: Diagnostics,
    watch: Watch,
) -> None:
    loop = asyncio.get_running_loop()
    interval = options.ping_interval
    stale = options.stale_timeout
    probe_after = stale / 2
    next_ping = loop.time() + interval
    probed = -math.inf  # when the link was last probed
    while True:
        now = loop.time()
        heard = channel.last_heard()
        silent = now - heard
        if silent >= stale:
            diag.trace(f"nothing heard for {silent:.1f} s, not even a pong: the peer looks dead")
            watch.stale = True
            channel.abort()
            return
        try:
            if silent >= probe_after and probed < heard:
                probed = now
                diag.trace(f"silent for {silent:.1f} s: pinging the peer", 2)
                await channel.ping()
            if now >= next_ping:
                next_ping = now + interval
                await channel.ping()
                if decoder.app_ping is not None:
                    diag.trace("sending app-level ping", 2)
                    await channel.send(decoder.app_ping)
        except Exception:  # the frame loop sees the broken link
            return
        wake = min(next_ping, heard + (probe_after if probed < heard else stale))
        await asyncio.sleep(max(0.005, wake - loop.time()))
