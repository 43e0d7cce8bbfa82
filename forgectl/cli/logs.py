"""forgectl logs: an execution process's output."""

from __future__ import annotations

from typing import Any

import click

from .app import Application, pass_app
from .options import CONNECTION_OPTIONS, connection_options, output_options, stream_options


@click.command(
    "logs",
    epilog="""\b
Examples:
  forgectl logs 3f2a... --follow
  forgectl logs 3f2a... --json | jq -r 'select(.level=="error") | .message'
  forgectl logs 3f2a... --raw > build.log""",
)
@click.argument("process_id", metavar="PROCESS_ID")
@click.option(
    "--raw",
    is_flag=True,
    help="The process's raw output, byte for byte, instead of normalized entries.",
)
@click.option("--follow", "-f", is_flag=True, help="Keep streaming until the process ends.")
@output_options
@stream_options
@connection_options(root=False)
@pass_app
def logs(
    app: Application,
    /,
    process_id: str,
    raw: bool,
    follow: bool,
    output: str | None,
    color: str,
    **kwargs: Any,
) -> None:
    """Print the logs of an execution process.

    Normalized entries by default ({level, message, timestamp, source, metadata}
    as JSON lines when piped); --raw for the raw output. Without --follow, logs
    prints what the process has logged so far and exits: at once when the
    process has finished (the server ends the stream), otherwise once the
    server has been quiet for --settle seconds. With --follow it streams until
    the process ends.
    """
    from ..dialects.base import StreamRequest
    from .runner import run
    from .streaming import follow as follow_stream

    app.override({k: kwargs.pop(k) for k in list(kwargs) if k in CONNECTION_OPTIONS})
    mode = output or ("raw" if raw else app.output_mode(None))
    if raw and mode == "pretty" and output is None:
        mode = "raw"
    request = StreamRequest("raw" if raw else "logs", process_id, follow=follow)
    options = app.stream_options(kwargs)
    renderer = app.renderer(mode, color)
    run(app, lambda: follow_stream(app, request, renderer, options, kwargs["open_timeout"]))
