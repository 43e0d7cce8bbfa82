"""forgectl diff: the live git diff of a task attempt."""

from __future__ import annotations

import click

from ..constants import DEFAULT_FIRST_WAIT
from .app import Application, pass_app
from .complete import complete_attempt_id
from .options import (
    Command,
    Seconds,
    connection_options,
    nonempty_id,
    output_options,
    stream_options,
)


@click.command(
    "diff",
    cls=Command,
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
    type=Seconds(zero=True),
    default=DEFAULT_FIRST_WAIT,
    metavar="SECONDS",
    help="Wait this long for the server's first diff update (computing a big "
    "attempt's diff takes seconds; an attempt without changes sends none): then "
    "print the diff empty, saying on stderr that it is the wait that ended "
    f"(default {DEFAULT_FIRST_WAIT:g} s).",
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
) -> None:
    """Print the git diff of a task attempt.

    Without --follow, prints the diff as it stands (the first diff_update) and
    exits; with --follow, prints every update until interrupted. JSON output is
    the diff_update object whatever the flags; --stat and --name-only shape the
    pretty output (and --stat asks the real server for counts only).
    """
    from .runner import run
    from .streaming import render

    if stat and name_only:
        raise click.UsageError("--stat and --name-only show different things: choose one")
    renderer = app.renderer(app.output_mode(output), color, stat_only=stat, name_only=name_only)
    forge = app.client()

    async def body() -> int:
        updates = forge.attempts.stream_diff(
            attempt_id, follow=follow, stats_only=stat, first_wait=first_wait
        )
        return await render(app, updates, renderer)

    run(app, body)
