"""The body every streaming command shares: a library stream into a renderer.

library stream (events, filtered) → renderer → stdout
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..events import Event
    from ..output.base import Renderer
    from .app import Application


class Pumped(Protocol):
    """A library stream: an :class:`~forgectl.client.EventStream`, or an attempt's logs."""

    async def pump(self, sink: Callable[[Event], object], *, fused: str | None = None) -> int: ...


async def render(app: Application, events: Pumped, renderer: Renderer) -> int:
    """Print ``events`` through ``renderer``; return the stream's exit status."""
    try:
        return await events.pump(renderer.render, fused=renderer.fuses)
    finally:
        try:
            renderer.close()
        finally:
            app.diag.summary()
