"""Heartbeats, dead peers and the settle rule: the task beside each connection."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..diagnostics import Diagnostics
    from ..dialects.base import Decoder
    from ..transport import Channel
    from .options import StreamOptions

#: At most this many frames per tick, two ticks running, is live output
#: arriving, not history (ends the backlog without --follow, and for --tail).
TRICKLE = 3


class _LinkState:
    """Shared between a channel's frame loop and its watchdog."""

    __slots__ = ("backlog_over", "frames", "live_from", "settled", "stale", "tick")

    def __init__(self) -> None:
        self.frames = 0
        self.stale = False
        self.settled = False
        #: the watchdog's tick count: frames arriving meanwhile belong to this tick
        self.tick = 0
        #: the history has arrived and live output trickles in since tick ``live_from``
        self.backlog_over = False
        self.live_from = 0


async def _watchdog(
    channel: Channel,
    decoder: Decoder,
    state: _LinkState,
    options: StreamOptions,
    settle: bool,
    diag: Diagnostics,
    backlog: bool = False,
) -> None:
    """Heartbeats, dead-peer detection and (without --follow) the settle rule.

    With ``backlog`` (a follow owing the end-of-history marker), a burst that has
    slowed to a trickle sets ``state.backlog_over``: a process that writes more
    often than the settle time never falls silent, yet its history is over.

    It polls a frame counter instead of arming a timer per frame, so the hot
    path pays one integer increment per frame.
    """
    loop = asyncio.get_running_loop()
    tick = min(options.stale_timeout / 4, options.ping_interval)
    if settle or backlog:
        tick = min(tick, options.settle / 2)
    tick = max(tick, 0.01)
    seen = -1
    seen_partial = 0
    changed = loop.time()
    next_ping = changed + options.ping_interval
    # Frames per tick over the last two ticks: the history arrives as a burst,
    # live output of a busy process as a trickle.
    recent = [TRICKLE + 1, TRICKLE + 1]
    while True:
        await asyncio.sleep(tick)
        now = loop.time()
        delta = state.frames - max(seen, 0)
        partial = channel.progress()
        if partial != seen_partial:
            # Mid-frame: the link is busy, neither silent nor a trickle.
            seen_partial = partial
            changed = now
            delta = max(delta, TRICKLE + 1)
        if state.frames != seen:
            seen = state.frames
            changed = now
        idle = now - changed
        recent = [recent[1], delta]
        # A process writing faster than --settle never falls silent: once the
        # burst has slowed to a trickle, the history is over too.
        trickle = seen > 0 and max(recent) <= TRICKLE
        if backlog and trickle:
            state.live_from = state.tick - 1
            state.backlog_over = True
            backlog = False
        state.tick += 1
        if settle:
            limit = options.settle if seen > 0 else options.first_frame_wait
            # Without --follow, a silence long enough to call the peer dead also
            # ends the backlog: settle rather than reconnect to a silent server forever.
            if idle >= min(limit, options.stale_timeout) or trickle:
                state.settled = True
                await channel.close()
                return
        if idle >= options.stale_timeout:
            diag.trace(f"no frame for {idle:.0f} s: the peer looks dead")
            state.stale = True
            channel.abort()
            return
        if decoder.app_ping is not None and now >= next_ping:
            next_ping = now + options.ping_interval
            diag.trace("sending app-level ping", 2)
            try:
                await channel.send(decoder.app_ping)
            except Exception:  # the frame loop will see the broken link
                return
