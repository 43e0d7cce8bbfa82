"""Where the history a server sends on connecting ends, and live output begins."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from ..events import BACKLOG_END, Event
from .watchdog import TRICKLE, _LinkState


class _HistoryEnd:
    """Where the history ends, for ``--follow --tail``, when live output trickles in.

    The watchdog calls two ticks of at most TRICKLE frames a trickle: live output,
    so the history ended before them. Live frames may also have come in the tick
    of the burst's end, after it: the first pause of BURST_GAP before the trickle
    marks where the burst really ended. So the last 3 x TRICKLE frames' events
    are held back (for half a second at most) until the end of the history is known.
    """

    #: A pause this long between two frames ends a burst.
    BURST_GAP = 0.05

    def __init__(self, state: _LinkState) -> None:
        self.state = state
        #: (arrival time, watchdog tick, events) of the latest frames
        self.held: deque[tuple[float, int, list[Event]]] = deque()
        self.before = -math.inf  # arrival time of the last frame passed on

    def frame(self, events: Iterable[Event], now: float) -> list[Event]:
        """One frame's events; returns those of the frames that cannot be live."""
        held = self.held
        held.append((now, self.state.tick, list(events)))
        out: list[Event] = []
        while len(held) > 3 * TRICKLE:
            self.before, _, old = held.popleft()
            out.extend(old)
        return out

    def over(self) -> list[Event]:
        """The trickle was called: the history, the marker, then what was live."""
        frames = list(self.held)
        self.held.clear()
        live_from = self.state.live_from
        cut = next((i for i, f in enumerate(frames) if f[1] >= live_from), len(frames))
        previous = self.before
        for i, (at, _, _) in enumerate(frames[:cut]):
            if at - previous >= self.BURST_GAP and previous > -math.inf:
                cut = i
                break
            previous = at
        out = [event for _, _, events in frames[:cut] for event in events]
        out.append(BACKLOG_END)
        out.extend(event for _, _, events in frames[cut:] for event in events)
        return out

    def flush(self) -> list[Event]:
        out = [event for _, _, events in self.held for event in events]
        self.held.clear()
        return out
