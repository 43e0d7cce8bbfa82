"""The body every streaming command shares: a library stream into a renderer.

library stream (events, filtered) → renderer → stdout
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..client import EventStream
    from ..output.base import Renderer
    from .app import Application


async def render(app: Application, events: EventStream[Any], renderer: Renderer) -> int:
    """Print ``events`` through ``renderer``; return the stream's exit status."""
    try:
        return await events.pump(renderer.render)
    finally:
        try:
            renderer.close()
        finally:
            app.diag.summary()
