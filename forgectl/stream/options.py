"""What a caller can tune about a stream: reconnects, heartbeats, the history."""

from __future__ import annotations

from dataclasses import dataclass

from ..constants import (
    BACKOFF_INITIAL,
    DEFAULT_PING_INTERVAL,
    DEFAULT_SETTLE,
    DEFAULT_STALE_TIMEOUT,
)


@dataclass(slots=True)
class StreamOptions:
    reconnect: bool = True
    #: Bound on the total time spent waiting for a server (first connect included:
    #: without it a refused first connection fails at once).
    retry_for: float | None = None
    ping_interval: float = DEFAULT_PING_INTERVAL
    stale_timeout: float = DEFAULT_STALE_TIMEOUT
    settle: float = DEFAULT_SETTLE
    #: Without --follow, how long to wait for a first frame before calling the
    #: backlog empty.
    first_frame_wait: float = 5.0
    #: Keep polling this long for a process or attempt that does not exist yet (404).
    wait_start: float | None = None
    #: Yield :data:`~forgectl.events.BACKLOG_END` once the history sent on
    #: connecting has arrived (the stream first went quiet for ``settle`` s).
    mark_backlog: bool = False
    #: First reconnect delay (the spec's 1 s); tests shorten it.
    backoff_initial: float = BACKOFF_INITIAL
