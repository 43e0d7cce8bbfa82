"""forgectl logs: an execution process's output."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ..constants import TOOL_OUTPUT_CHOICES
from ..errors import ExitCode
from ..events import LEVEL_ALIASES, LEVELS
from .app import Application, pass_app
from .complete import complete_attempt_id, complete_process_id
from .options import (
    Command,
    Count,
    connection_options,
    nonempty_id,
    output_options,
    stream_options,
)

if TYPE_CHECKING:
    import asyncio

    from ..client import ForgeClient
    from ..status import Outcome

#: After the log stream ended, how long the server may take to tell the exit status.
EXIT_STATUS_GRACE = 10.0


@click.command(
    "logs",
    cls=Command,
    epilog="""\b
Examples:
  forgectl logs 3f2a --follow                  # an id, or its start (forgectl ps)
  forgectl logs --attempt 8c1e -f              # every process of the attempt
  forgectl logs 3f2a... --json | jq -r 'select(.level=="error") | .message'
  forgectl logs 3f2a... --raw > build.log
  forgectl logs 3f2a... --follow --exit-status --wait-start 60   # CI: wait, then exit as the job did""",
)
@click.argument(
    "process_id",
    metavar="[PROCESS_ID]",
    required=False,
    shell_complete=complete_process_id,
    callback=nonempty_id,
)
@click.option(
    "--attempt",
    "-a",
    metavar="ATTEMPT_ID",
    shell_complete=complete_attempt_id,
    callback=nonempty_id,
    help="Every process of this attempt (JSON: processId).",
)
@click.option(
    "--raw",
    is_flag=True,
    help="The raw output, byte for byte into a file or pipe (on a terminal: --verbatim).",
)
@click.option(
    "--verbatim",
    is_flag=True,
    help="With --raw on a terminal: control sequences too (trusted output only).",
)
@click.option("--follow", "-f", is_flag=True, help="Keep streaming until the process ends.")
@click.option(
    "--exit-status",
    is_flag=True,
    help="With --follow: exit with the process's exit code once it ends "
    "(137 if stopped, 125 if it failed without a code, 7 if unknown).",
)
@click.option(
    "--level",
    "-l",
    "levels",
    multiple=True,
    metavar="LEVEL",
    help=f"Minimum level ({', '.join(LEVELS)}; "
    f"{', '.join(f'{a} = {n}' for a, n in LEVEL_ALIASES.items())}), "
    "or a comma list of exact levels.",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="NAME",
    help="Only entries from this source (glob; `tool` matches `tool:*`; stdout/stderr for raw).",
)
@click.option("--grep", "-g", metavar="REGEX", help="Only entries (raw: lines) matching REGEX.")
@click.option(
    "--since",
    metavar="WHEN",
    help="Only entries from then on: 30s, 10m, 2h, 1d ago or an ISO time (by the "
    "server's timestamps: an error if it sends none).",
)
@click.option(
    "--tail",
    "-n",
    type=Count(),
    metavar="N",
    help="Of the history, only the last N entries (lines with --raw), then live ones with -f.",
)
@click.option(
    "--timestamps",
    "-t",
    is_flag=True,
    help="Prefix raw and pretty lines with the local time they arrived.",
)
@click.option(
    "--tool-output",
    type=click.Choice(TOOL_OUTPUT_CHOICES),
    default="compact",
    metavar="MODE",
    help="On a terminal, an agent's tool output: compact (its first and last lines, "
    "the default), all, or none.",
)
@output_options
@stream_options
@connection_options(root=False)
@pass_app
def logs(
    app: Application,
    /,
    process_id: str | None,
    attempt: str | None,
    raw: bool,
    verbatim: bool,
    follow: bool,
    exit_status: bool,
    levels: tuple[str, ...],
    sources: tuple[str, ...],
    grep: str | None,
    since: str | None,
    tail: int | None,
    timestamps: bool,
    tool_output: str,
    output: str | None,
    color: str,
) -> None:
    """Print the logs of an execution process, or of every process of an attempt.

    Normalized entries ({level, message, timestamp, source, metadata}; JSON
    lines when piped), or with --raw its output. Without --follow: what it has
    logged so far, then exit (at once if it has finished, else after --settle
    seconds of quiet). With --follow: until it ends (--attempt: until idle).
    """
    from .app import usage_guard
    from .runner import run
    from .streaming import render

    if (process_id is None) == (attempt is None):
        raise click.UsageError(
            "give a PROCESS_ID or --attempt ATTEMPT_ID, not both"
            if attempt
            else "give a PROCESS_ID or --attempt ATTEMPT_ID (forgectl ps lists them)"
        )
    if exit_status and attempt:
        raise click.UsageError("--exit-status follows one process: give its PROCESS_ID")
    if exit_status and not follow:
        raise click.UsageError("--exit-status needs --follow")
    if verbatim and not raw:
        raise click.UsageError("--verbatim needs --raw")
    if raw and (levels or since):
        given = " and ".join(name for name, on in (("--level", levels), ("--since", since)) if on)
        raise click.UsageError(
            f"{given} need{'s' if ' and ' not in given else ''} normalized entries "
            "(raw output has no levels or times)"
        )
    mode = output or ("raw" if raw else app.output_mode(None))
    forge = app.client()
    if attempt is not None:
        _attempt_logs(
            app,
            forge,
            attempt,
            mode,
            color,
            raw=raw,
            follow=follow,
            filters={
                "level": levels,
                "source": sources,
                "grep": grep,
                "since": since,
                "tail": tail,
            },
            pretty={"timestamps": timestamps, "verbatim": verbatim, "tool_output": tool_output},
        )
    assert process_id is not None
    with usage_guard(app):
        if raw:
            entries = forge.processes.stream_logs(
                process_id, "raw", follow=follow, source=sources, grep=grep, tail=tail
            )
        else:
            entries = forge.processes.stream_logs(  # type: ignore[assignment]
                process_id,
                follow=follow,
                level=levels,
                source=sources,
                grep=grep,
                since=since,
                tail=tail,
            )
    renderer = app.renderer(
        mode, color, timestamps=timestamps, verbatim=verbatim, tool_output=tool_output
    )

    # Read on a terminal (or with -v), -f ends with a line on stderr saying how the
    # process ended; into a pipe or a file, the output ends as the process's did.
    announce = follow and (app.verbose > 0 or _is_terminal(sys.stdout))

    async def body() -> int:
        if not (exit_status or announce):
            return await render(app, entries, renderer)
        import asyncio

        waiting = asyncio.ensure_future(forge.processes.outcome(process_id))
        try:
            await render(app, entries, renderer)
            outcome = await _outcome(app, forge, process_id, waiting, patient=exit_status)
            if announce:
                app.diag.note(f"process {process_id} {_said(outcome)}")
            if not exit_status:
                return 0
            if outcome is None or outcome.ended is None:
                app.diag.warning(
                    f"process {process_id} ended but the server did not report its exit status"
                )
                return int(ExitCode.STATUS_UNKNOWN)
            return outcome.exit_status
        finally:
            waiting.cancel()  # and let it close its socket (a normal close)
            await asyncio.wait([waiting], timeout=0.5)

    run(app, body)


def _attempt_logs(
    app: Application,
    forge: ForgeClient,
    attempt: str,
    mode: str,
    color: str,
    *,
    raw: bool,
    follow: bool,
    filters: dict[str, Any],
    pretty: dict[str, Any],
) -> NoReturn:
    """``logs --attempt``: one renderer per process behind a prefix, or JSON lines."""
    import sys

    from .app import usage_guard
    from .runner import run
    from .streaming import render

    with usage_guard(app):
        if raw:
            filters = {k: v for k, v in filters.items() if k not in ("level", "since")}
        entries = forge.processes.stream_attempt_logs(
            attempt, "raw" if raw else "normalized", follow=follow, **filters
        )
    if mode == "json":
        renderer = app.renderer("json", color)
    else:
        from ..output.prefixed import AttemptRenderer, process_label

        prefixed = mode == "pretty" or sys.stdout.isatty()

        def label(pid: str) -> str:
            return process_label(entries.records, pid) if prefixed else ""

        renderer = AttemptRenderer(
            lambda out: app.renderer(mode, color, out=out, **pretty), label, color=color
        )

    async def body() -> int:
        return await render(app, entries, renderer)

    run(app, body)


def _said(outcome: Outcome | None) -> str:
    return outcome.describe() if outcome is not None else "ended; the server did not say how"


async def _outcome(
    app: Application,
    forge: ForgeClient,
    process_id: str,
    waiting: asyncio.Future[Outcome],
    *,
    patient: bool,
) -> Outcome | None:
    """How the process ended, once its log has ended: the server may take a moment
    to tell. With --exit-status, say so and wait up to EXIT_STATUS_GRACE; for the
    closing line only, a moment. A watch that failed while the log streamed (the
    server restarting) is asked again: the process has ended now, so its history
    answers."""
    import asyncio
    import contextlib

    from ..errors import ForgeError

    try:
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(waiting), 1.0)
        if not patient:
            return None
        app.diag.note(
            f"waiting up to {EXIT_STATUS_GRACE:g} s for the server to tell how process "
            f"{process_id} ended"
        )
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(waiting), EXIT_STATUS_GRACE)
    except ForgeError as exc:
        app.diag.trace(f"exit-status watcher stopped: {app.message(exc)}; asking again")
        with contextlib.suppress(ForgeError, TimeoutError):
            return await asyncio.wait_for(
                forge.processes.outcome(process_id), EXIT_STATUS_GRACE if patient else 2.0
            )
    return None


def _is_terminal(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False
