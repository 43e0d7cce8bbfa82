"""forgectl diff: the live git diff of a task attempt."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from ..constants import DEFAULT_FIRST_WAIT
from .app import Application, pass_app
from .complete import complete_attempt_id

if TYPE_CHECKING:
    from ..output.base import Renderer

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
  forgectl diff 8c1e... --patch | git apply     # the attempt's changes, here
  forgectl diff 8c1e... --stat                  # git's per-file table
  forgectl diff 8c1e... --follow --json | jq -c '{filesChanged, insertions}'""",
)
@click.argument(
    "attempt_id",
    metavar="ATTEMPT_ID",
    shell_complete=complete_attempt_id,
    callback=nonempty_id,
)
@click.option(
    "--follow",
    "-f",
    is_flag=True,
    help="Print every update (after the first, what changed since the one before).",
)
@click.option(
    "--patch",
    is_flag=True,
    help="The unified diff as text, byte for byte even into a pipe (for git apply).",
)
@click.option("--stat", is_flag=True, help="git's per-file table and summary, as text.")
@click.option("--name-only", is_flag=True, help="Only the names of changed files, as text.")
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
    patch: bool,
    stat: bool,
    name_only: bool,
    first_wait: float,
    output: str | None,
    color: str,
) -> None:
    """Print the git diff of a task attempt.

    Without --follow, prints the diff as it stands (the first diff_update) and
    exits; with --follow, every update until interrupted. --patch, --stat and
    --name-only print text whatever stdout is (counts as git counts them, from
    the contents); otherwise JSON when piped, colour on a terminal.
    """
    from .runner import run
    from .streaming import render

    forms = [
        name
        for name, on in (("--patch", patch), ("--stat", stat), ("--name-only", name_only))
        if on
    ]
    if len(forms) > 1:
        raise click.UsageError(f"{' and '.join(forms)} show different things: choose one")
    if patch and output == "json":
        raise click.UsageError("--patch prints the diff as text; --json prints diff_update objects")
    if patch and follow:
        raise click.UsageError(
            "--patch prints one patch: with --follow, use --json (one diff_update a line)"
        )
    # A text format is text into a pipe (pretty on a terminal) unless --json/--pretty say.
    mode = (output or _text_or_pretty()) if forms else app.output_mode(output)
    if mode == "text":
        from ..output.difftext import DiffTextRenderer

        form = "patch" if patch else "stat" if stat else "names"
        renderer: Renderer = DiffTextRenderer(form=form, notice=app.diag.note)
    else:
        renderer = app.renderer(mode, color, stat_only=stat, name_only=name_only, patch_only=patch)
    forge = app.client()

    async def body() -> int:
        updates = forge.attempts.stream_diff(attempt_id, follow=follow, first_wait=first_wait)
        return await render(app, updates, renderer)

    run(app, body)


def _text_or_pretty() -> str:
    try:
        return "pretty" if sys.stdout.isatty() else "text"
    except (AttributeError, ValueError):
        return "text"
