"""forgectl monitor: execution-process lifecycle events."""

from __future__ import annotations

from typing import Any

import click

from .app import Application, pass_app
from .options import CONNECTION_OPTIONS, connection_options, output_options, stream_options


@click.command(
    "monitor",
    epilog="""\b
Examples:
  forgectl monitor
  forgectl monitor --attempt 8c1e... --json | jq -c 'select(.type=="process_failed")'""",
)
@click.option("--attempt", "-a", metavar="ATTEMPT_ID", help="Only processes of this task attempt.")
@click.option(
    "--history",
    is_flag=True,
    help="Also report processes that had already ended when the stream opened.",
)
@output_options
@stream_options
@connection_options(root=False)
@pass_app
def monitor(
    app: Application,
    /,
    attempt: str | None,
    history: bool,
    output: str | None,
    color: str,
    **kwargs: Any,
) -> None:
    """Stream execution-process events until interrupted.

    process_started, process_progress, process_completed, process_failed and
    process_stopped, plus any other type the server sends, unchanged. Processes
    already running when the stream opens are reported as process_started.
    """
    from ..dialects.base import StreamRequest
    from .runner import run
    from .streaming import follow as follow_stream

    app.override({k: kwargs.pop(k) for k in list(kwargs) if k in CONNECTION_OPTIONS})
    request = StreamRequest("monitor", attempt, follow=True, history=history)
    options = app.stream_options(kwargs)
    renderer = app.renderer(app.output_mode(output), color)

    def keep(event: Any) -> bool:
        return attempt is None or event.get("taskAttemptId") in (None, attempt)

    run(app, lambda: follow_stream(app, request, renderer, options, kwargs["open_timeout"], keep))
