"""The stream driver: one loop from a route's channel to events, over reconnects.

- :mod:`.driver` — :class:`Stream`: connect, feed the decoder, reconnect.
- :mod:`.backoff` — the reconnect delay policy.
- :mod:`.watchdog` — heartbeats, dead peers, the settle rule.
- :mod:`.history` — where the history ends and live output begins.
- :mod:`.options` — :class:`StreamOptions`.
"""

from __future__ import annotations

from .backoff import Backoff
from .driver import Stream
from .options import StreamOptions

__all__ = ["Backoff", "Stream", "StreamOptions"]
