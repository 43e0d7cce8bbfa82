"""forgectl ps: the execution processes on the server, one per line."""

from __future__ import annotations

import click

from ..events import PROCESS_STATUSES, RUN_REASONS
from .app import Application, pass_app
from .complete import complete_attempt_id
from .options import Command, connection_options, nonempty_id, output_options, stream_options


@click.command(
    "ps",
    cls=Command,
    epilog="""\b
Examples:
  forgectl ps                                   # every process, newest first
  forgectl ps --status running
  forgectl ps --attempt 8c1e                    # an id's start is enough
  forgectl logs $(forgectl ps -q --run-reason codingagent | head -1) -f
  forgectl ps --json | jq -r 'select(.exitCode != 0) | .processId'""",
)
@click.option(
    "--attempt",
    "-a",
    metavar="ATTEMPT_ID",
    shell_complete=complete_attempt_id,
    callback=nonempty_id,
    help="Only processes of this task attempt.",
)
@click.option(
    "--task", metavar="TASK_ID", callback=nonempty_id, help="Only this task's (real server)."
)
@click.option(
    "--project",
    metavar="PROJECT_ID",
    callback=nonempty_id,
    help="Only this project's (real server).",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(PROCESS_STATUSES),
    metavar="STATUS",
    help=f"Only this status (repeatable): {', '.join(PROCESS_STATUSES)}.",
)
@click.option(
    "--run-reason",
    "reasons",
    multiple=True,
    type=click.Choice(RUN_REASONS),
    metavar="REASON",
    help=f"Only this kind (repeatable): {', '.join(RUN_REASONS)}.",
)
@click.option("--quiet", "-q", is_flag=True, help="Only the ids, whole, one per line.")
@output_options
@stream_options
@connection_options(root=False)
@pass_app
def ps(
    app: Application,
    /,
    attempt: str | None,
    task: str | None,
    project: str | None,
    statuses: tuple[str, ...],
    reasons: tuple[str, ...],
    quiet: bool,
    output: str | None,
    color: str,
) -> None:
    """List execution processes, newest first.

    One per line: id, attempt, run reason, executor, status, exit code, start
    time and duration (so far, if running); ids cut to their shortest unique
    prefix, which every command takes back. JSON lines when piped: {processId,
    taskAttemptId, runReason, executor, status, exitCode, startedAt,
    completedAt}. The documented API lists nothing: there, the processes its
    event stream reports.
    """
    from .runner import run

    mode = "ids" if quiet else app.output_mode(output)
    forge = app.client()
    if mode == "pretty":
        from ..output.table import ProcessTable

        renderer = ProcessTable(color=color)
    elif mode == "ids":
        from ..output.table import IdList

        renderer = IdList()  # type: ignore[assignment]
    else:
        renderer = app.renderer("json", color)  # type: ignore[assignment]

    async def body() -> int:
        records = await forge.processes.list(
            attempt=attempt,
            task=task,
            project=project,
            status=statuses or None,
            run_reason=reasons or None,
        )
        try:
            for record in records:
                renderer.render(record)
        finally:
            renderer.close()
        if not records and mode == "pretty":
            narrowed = attempt or task or project or statuses or reasons
            app.diag.note("no processes" + (" match" if narrowed else " on the server"))
        return 0

    run(app, body)
