"""forgectl monitor: execution-process lifecycle events."""

from __future__ import annotations

import click

from ..events import PROCESS_EVENT_TYPES
from .app import Application, pass_app
from .complete import complete_attempt_id, complete_process_id
from .options import Command, connection_options, nonempty_id, output_options, stream_options


@click.command(
    "monitor",
    cls=Command,
    epilog="""\b
Examples:
  forgectl monitor
  forgectl monitor --attempt 8c1e... --json | jq -c 'select(.type=="process_failed")'
  forgectl monitor --process 3f2a... --exit-status     # exit as the process did
  forgectl monitor --attempt 8c1e... --until-idle      # wait until nothing runs""",
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
    "--process",
    "processes",
    multiple=True,
    shell_complete=complete_process_id,
    callback=nonempty_id,
    metavar="PROCESS_ID",
    help="Only this process (repeatable); its past events are reported too.",
)
@click.option(
    "--type",
    "types",
    multiple=True,
    type=click.Choice(PROCESS_EVENT_TYPES),
    metavar="TYPE",
    help=f"Only print events of this type (repeatable): {', '.join(PROCESS_EVENT_TYPES)}. "
    "Without --type, types the server adds are printed too.",
)
@click.option(
    "--executor",
    "executors",
    multiple=True,
    metavar="NAME",
    help="Only this executor (repeatable, case-insensitive).",
)
@click.option(
    "--history",
    is_flag=True,
    help="Also report processes that had already ended when the stream opened.",
)
@click.option(
    "--until-idle",
    is_flag=True,
    help="Exit 0 once no process (of --attempt, --executor, --process) is running; "
    "end events hidden by --type still count.",
)
@click.option(
    "--exit-status",
    is_flag=True,
    help="With one --process: exit when it ends, with its exit code (137 stopped, 125 failed without a code).",
)
@output_options
@stream_options
@connection_options(root=False)
@pass_app
def monitor(
    app: Application,
    /,
    attempt: str | None,
    processes: tuple[str, ...],
    types: tuple[str, ...],
    executors: tuple[str, ...],
    history: bool,
    until_idle: bool,
    exit_status: bool,
    output: str | None,
    color: str,
) -> None:
    """Stream execution-process events until interrupted.

    process_started, process_progress, process_completed, process_failed and
    process_stopped, plus any other type the server sends, unchanged. Processes
    already running when the stream opens are reported as process_started;
    processes that already ended only with --history (or --process).
    """
    from .runner import run
    from .streaming import render

    if exit_status and len(processes) != 1:
        raise click.UsageError("--exit-status needs exactly one --process")
    renderer = app.renderer(app.output_mode(output), color)
    interject = getattr(renderer, "interject", None)
    if interject is not None:  # stderr lines and the running line share the terminal
        app.diag.around = interject
    forge = app.client()
    events = forge.processes.monitor(
        attempt,
        until_idle=until_idle,
        history=history,
        processes=processes,
        types=types,
        executors=executors,
        until_exit=processes[0] if exit_status else None,
    )

    async def body() -> int:
        return await render(app, events, renderer)

    run(app, body)
