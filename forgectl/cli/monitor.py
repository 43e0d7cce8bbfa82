"""forgectl monitor: execution-process lifecycle events."""

from __future__ import annotations

from typing import Any

import click

from ..events import PROCESS_EVENT_TYPES
from .app import Application, pass_app
from .complete import complete_attempt_id, complete_process_id
from .options import (
    CONNECTION_OPTIONS,
    connection_options,
    nonempty_id,
    output_options,
    stream_options,
)


@click.command(
    "monitor",
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
    metavar="TYPE",
    help=f"Only print events of this type (repeatable): {', '.join(PROCESS_EVENT_TYPES)}, or any other.",
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
    **kwargs: Any,
) -> None:
    """Stream execution-process events until interrupted.

    process_started, process_progress, process_completed, process_failed and
    process_stopped, plus any other type the server sends, unchanged. Processes
    already running when the stream opens are reported as process_started;
    processes that already ended only with --history (or --process).
    """
    from ..dialects.base import StreamRequest
    from ..events import Event, ProcessEvent
    from ..filters import ProcessFilter
    from ..status import exit_status as status_of
    from .runner import run
    from .streaming import Pipeline, open_stream
    from .streaming import follow as follow_stream

    app.override({k: kwargs.pop(k) for k in list(kwargs) if k in CONNECTION_OPTIONS})
    if exit_status and len(processes) != 1:
        raise click.UsageError("--exit-status needs exactly one --process")
    request = StreamRequest(
        "monitor", attempt, follow=True, history=history or bool(processes), processes=processes
    )
    options = app.stream_options(kwargs)
    options.mark_backlog = until_idle
    renderer = app.renderer(app.output_mode(output), color)
    keep = ProcessFilter(
        frozenset(processes),
        frozenset(types),
        frozenset(e.lower() for e in executors),
        attempt,
    )
    running: set[str] = set()
    backlog_done = False

    def until(event: Event) -> int | None:
        # Every event of the chosen processes, printed or not: with --type
        # process_started the end events are hidden, yet they end the process.
        if not isinstance(event, ProcessEvent) or not keep.selects(event):
            return None
        pid = event.process_id or ""
        if event.type == "process_started":
            running.add(pid)
        elif event.is_terminal:
            running.discard(pid)
            if exit_status and pid == processes[0]:
                return status_of(event)
        if until_idle and backlog_done and not running:
            return 0
        return None

    def at_backlog() -> int | None:
        nonlocal backlog_done
        backlog_done = True
        return 0 if until_idle and not running else None

    pipeline = Pipeline(keep=keep, until=until, at_backlog=at_backlog)

    async def body() -> int:
        stream = open_stream(app, request, options, kwargs["open_timeout"])
        return await follow_stream(app, stream, renderer, pipeline)

    run(app, body)
