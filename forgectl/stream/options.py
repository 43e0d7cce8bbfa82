"""What a caller can tune about a stream: reconnects, heartbeats, the history."""

from __future__ import annotations

from dataclasses import dataclass

from ..constants import (
    BACKOFF_INITIAL,
    DEFAULT_PING_INTERVAL,
    DEFAULT_SETTLE,
    DEFAULT_STALE_TIMEOUT,
    MAX_MESSAGE_SIZE,
)


@dataclass(slots=True)
class StreamOptions:
    reconnect: bool = True
    #: Bound on the total time spent waiting for a server (first connect included:
    #: without it a refused first connection fails at once).
    retry_for: float | None = None
    ping_interval: float = DEFAULT_PING_INTERVAL
    stale_timeout: float = DEFAULT_STALE_TIMEOUT
    #: The history is over once this long passes without a burst of frames
    #: (see :mod:`forgectl.stream.history`).
    settle: float = DEFAULT_SETTLE
    #: How long to wait for the first frame of a history before calling it empty
    #: (the server sends a history at once on connecting).
    first_frame_wait: float = 1.0
    #: The largest message accepted (a bigger one is an error, not retried).
    max_message_size: int = MAX_MESSAGE_SIZE
    #: Keep polling this long for a process or attempt that does not exist yet (404).
    wait_start: float | None = None
    #: Yield :data:`~forgectl.events.BACKLOG_END` where the history sent on
    #: connecting ends and live output begins.
    mark_backlog: bool = False
    #: Find that end early rather than late (``--tail``: a late end would move
    #: live lines into the tail); else late (``--until-idle``: every process seen).
    tail_history: bool = False
    #: First reconnect delay (the spec's 1 s); tests shorten it.
    backoff_initial: float = BACKOFF_INITIAL
