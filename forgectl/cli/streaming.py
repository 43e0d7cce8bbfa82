"""The body every streaming command shares: open, decode, filter, render.

stream (events) → pipeline (filters, tail, stop rules) → renderer → stdout
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..events import BACKLOG_END

if TYPE_CHECKING:
    from ..dialects.base import StreamRequest
    from ..events import Event
    from ..filters import RawLineFilter, Tail
    from ..output.base import Renderer
    from ..stream import Stream, StreamOptions
    from .app import Application


@dataclass
class Pipeline:
    """What stands between the stream and the renderer."""

    keep: Callable[[Event], bool] | None = None
    lines: RawLineFilter | None = None
    tail: Tail | None = None
    #: Called with every event; a non-None result ends the stream with that status.
    until: Callable[[Event], int | None] | None = None
    #: Called when the backlog has arrived; a non-None result ends the stream.
    at_backlog: Callable[[], int | None] | None = None

    @property
    def empty(self) -> bool:
        return not (self.keep or self.lines or self.tail or self.until or self.at_backlog)


def open_stream(
    app: Application, request: StreamRequest, options: StreamOptions, open_timeout: float
) -> Stream:
    from ..dialects import select_dialect
    from ..stream import Stream

    settings = app.settings
    return Stream(
        select_dialect(settings.api), request, settings.endpoint(open_timeout), options, app.diag
    )


def dialect_name(stream: Stream) -> str:
    chosen = getattr(stream.dialect, "chosen", None)
    return getattr(chosen or stream.dialect, "name", "")


async def follow(
    app: Application,
    stream: Stream,
    renderer: Renderer,
    pipeline: Pipeline | None = None,
) -> int:
    """Stream events into ``renderer`` through ``pipeline``; return the exit status."""
    render = renderer.render
    status = 0
    try:
        if pipeline is None or pipeline.empty:
            await stream.pump(render)
        else:
            status = await _piped(stream, render, pipeline)
    finally:
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.shield(stream.aclose()), 0.5)
        try:
            renderer.close()
        finally:
            app.diag.summary()
    return status


async def _piped(stream: Stream, render: Callable[[Event], None], pipe: Pipeline) -> int:
    keep, lines, tail = pipe.keep, pipe.lines, pipe.tail

    def emit(event: Event) -> None:
        for item in lines(event) if lines is not None else (event,):
            if keep is not None and not keep(item):
                continue
            if tail is not None:
                for kept in tail.push(item):
                    render(kept)
            else:
                render(item)

    events = stream.__aiter__()
    try:
        ended_by = await _consume(events, render, pipe, emit)
    finally:
        # Ending early (--exit-status, --until-idle) must not leave the driver,
        # and its heartbeat task, suspended until interpreter exit.
        await events.aclose()
    if lines is not None:
        for rest in lines.flush():
            if keep is None or keep(rest):
                if tail is not None:
                    tail.push(rest)
                else:
                    render(rest)
    if tail is not None:
        for kept in tail.release():
            render(kept)
    return ended_by or 0


async def _consume(
    events: AsyncGenerator[Event, None],
    render: Callable[[Event], None],
    pipe: Pipeline,
    emit: Callable[[Event], None],
) -> int | None:
    tail, until = pipe.tail, pipe.until
    ended_by: int | None = None
    async for event in events:
        if event is BACKLOG_END:
            if tail is not None:
                for kept in tail.release():
                    render(kept)
            if pipe.at_backlog is not None:
                ended_by = pipe.at_backlog()
                if ended_by is not None:
                    break
            continue
        emit(event)
        if until is not None:
            ended_by = until(event)
            if ended_by is not None:
                break
    return ended_by
