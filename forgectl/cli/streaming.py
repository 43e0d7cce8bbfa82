"""The body every streaming command shares: open, decode, filter, render."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..dialects.base import StreamRequest
    from ..events import Event
    from ..output.base import Renderer
    from ..stream import StreamOptions
    from .app import Application


async def follow(
    app: Application,
    request: StreamRequest,
    renderer: Renderer,
    options: StreamOptions,
    open_timeout: float,
    keep: Callable[[Event], bool] | None = None,
    until: Callable[[Event], int | None] | None = None,
) -> int:
    """Stream ``request`` into ``renderer``; return the exit status.

    ``keep`` filters events; ``until`` may end the stream early with a status.
    """
    from ..dialects import select_dialect
    from ..stream import Stream

    settings = app.settings
    stream = Stream(
        select_dialect(settings.api), request, settings.endpoint(open_timeout), options, app.diag
    )
    render = renderer.render
    status = 0
    try:
        async for event in stream:
            if keep is None or keep(event):
                render(event)
            if until is not None:
                result = until(event)
                if result is not None:
                    status = result
                    break
    finally:
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.shield(stream.aclose()), 0.5)
        try:
            renderer.close()
        finally:
            app.diag.summary()
    return status
