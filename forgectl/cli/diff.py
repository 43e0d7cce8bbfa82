"""forgectl diff: the live git diff of a task attempt."""

from __future__ import annotations

from typing import Any

import click

from ..constants import DEFAULT_FIRST_WAIT
from .app import Application, pass_app
from .complete import complete_attempt_id
from .options import (
    CONNECTION_OPTIONS,
    Seconds,
    connection_options,
    nonempty_id,
    output_options,
    stream_options,
)


@click.command(
    "diff",
    epilog="""\b
Examples:
  forgectl diff 8c1e...
  forgectl diff 8c1e... --json | jq -r .diff | git apply --stat
  forgectl diff 8c1e... --follow --stat""",
)
@click.argument(
    "attempt_id",
    metavar="ATTEMPT_ID",
    shell_complete=complete_attempt_id,
    callback=nonempty_id,
)
@click.option("--follow", "-f", is_flag=True, help="Print every update, not just the current diff.")
@click.option(
    "--stat",
    is_flag=True,
    help="Summary only: changed files and counts (the real server then sends no contents).",
)
@click.option("--name-only", is_flag=True, help="Only the names of changed files.")
@click.option(
    "--first-wait",
    type=Seconds(min=0),
    default=DEFAULT_FIRST_WAIT,
    show_default=True,
    metavar="SECONDS",
    help="Wait this long for the server's first diff update (computing a big "
    "attempt's diff takes seconds; an attempt without changes sends none): then "
    "print the diff empty, saying on stderr that it is the wait that ended.",
)
@output_options
@stream_options
@connection_options(root=False)
@pass_app
def diff(
    app: Application,
    /,
    attempt_id: str,
    follow: bool,
    stat: bool,
    name_only: bool,
    first_wait: float,
    output: str | None,
    color: str,
    **kwargs: Any,
) -> None:
    """Print the git diff of a task attempt.

    Without --follow, prints the diff as it stands (the first diff_update) and
    exits; with --follow, prints every update until interrupted. JSON output is
    the diff_update object whatever the flags; --stat and --name-only shape the
    pretty output (and --stat asks the real server for counts only).
    """
    from ..dialects.base import StreamRequest
    from .runner import run
    from .streaming import follow as follow_stream
    from .streaming import open_stream

    app.override({k: kwargs.pop(k) for k in list(kwargs) if k in CONNECTION_OPTIONS})
    if stat and name_only:
        raise click.UsageError("--stat and --name-only show different things: choose one")
    request = StreamRequest(
        "diff", attempt_id, follow=follow, stats_only=stat, first_wait=first_wait
    )
    options = app.stream_options(kwargs)
    renderer = app.renderer(app.output_mode(output), color, stat_only=stat, name_only=name_only)

    async def body() -> int:
        stream = open_stream(app, request, options, kwargs["open_timeout"])
        return await follow_stream(app, stream, renderer)

    run(app, body)
