"""The reconnect delay: the spec's strategy, 1 s doubling to 30 s, with jitter."""

from __future__ import annotations

import random

from ..constants import BACKOFF_INITIAL, BACKOFF_MAX


class Backoff:
    """1 s, 2 s, 4 s ... capped at 30 s, each with up to 20 % jitter."""

    def __init__(self, initial: float = BACKOFF_INITIAL, cap: float = BACKOFF_MAX) -> None:
        self.initial = initial
        self.cap = cap
        self.attempt = 0

    def next(self) -> float:
        base = min(self.cap, self.initial * (2**self.attempt))
        self.attempt += 1
        return float(base * random.uniform(0.8, 1.0))

    def reset(self) -> None:
        self.attempt = 0
