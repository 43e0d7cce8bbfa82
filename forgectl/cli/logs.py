"""forgectl logs: an execution process's output."""

from __future__ import annotations

import sys
from typing import Any

import click

from .app import Application, pass_app
from .complete import complete_process_id
from .options import (
    CONNECTION_OPTIONS,
    connection_options,
    nonempty_id,
    output_options,
    stream_options,
)


@click.command(
    "logs",
    epilog="""\b
Examples:
  forgectl logs 3f2a... --follow
  forgectl logs 3f2a... --json | jq -r 'select(.level=="error") | .message'
  forgectl logs 3f2a... --raw > build.log
  forgectl logs 3f2a... --follow --exit-status --wait-start 60   # CI: wait, then exit as the job did""",
)
@click.argument(
    "process_id",
    metavar="PROCESS_ID",
    shell_complete=complete_process_id,
    callback=nonempty_id,
)
@click.option(
    "--raw",
    is_flag=True,
    help="The raw output instead of normalized entries: byte for byte into a file or "
    "pipe (on a terminal, see --verbatim).",
)
@click.option(
    "--verbatim",
    is_flag=True,
    help="With --raw on a terminal: pass every byte, terminal control sequences "
    "included (titles, clipboard, screen clearing): only for output you trust. "
    "Without it, colours, \\r and line erase pass and the rest is removed.",
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
    help="Minimum level (debug, info, success, warn, error), or a comma list of exact levels.",
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
    help="Only entries from this time on: a duration (30s, 10m, 2h, 1d) or an ISO time.",
)
@click.option(
    "--tail",
    "-n",
    type=click.IntRange(min=0, max=sys.maxsize),
    metavar="N",
    help="Of the history, print only the last N entries (then follow, with --follow).",
)
@click.option(
    "--timestamps",
    "-t",
    is_flag=True,
    help="Prefix raw and pretty lines with the local time they arrived.",
)
@output_options
@stream_options
@connection_options(root=False)
@pass_app
def logs(
    app: Application,
    /,
    process_id: str,
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
    from ..filters import LogFilter, RawLineFilter, Tail, compile_grep, parse_levels, parse_since
    from .app import usage_guard
    from .runner import run
    from .streaming import Pipeline, dialect_name, open_stream
    from .streaming import follow as follow_stream

    app.override({k: kwargs.pop(k) for k in list(kwargs) if k in CONNECTION_OPTIONS})
    with usage_guard(app):
        if exit_status and not follow:
            raise click.UsageError("--exit-status needs --follow")
        if verbatim and not raw:
            raise click.UsageError("--verbatim needs --raw")
        if raw and (levels or since):
            given = " and ".join(
                name for name, on in (("--level", levels), ("--since", since)) if on
            )
            raise click.UsageError(
                f"{given} need{'s' if ' and ' not in given else ''} normalized entries "
                "(raw output has no levels or times)"
            )
        min_rank, level_set = parse_levels(levels)
        pattern = compile_grep(grep)
        since_time = parse_since(since) if since else None
    mode = output or ("raw" if raw else app.output_mode(None))
    request = StreamRequest("raw" if raw else "logs", process_id, follow=follow)
    options = app.stream_options(kwargs)
    options.mark_backlog = options.tail_history = tail is not None
    renderer = app.renderer(mode, color, timestamps=timestamps, verbatim=verbatim)
    pipeline = Pipeline()
    if raw:
        line_filter = RawLineFilter(pattern, sources)
        pipeline.lines = line_filter if line_filter.active else None
    else:
        log_filter = LogFilter(min_rank, level_set, sources, pattern, since_time)
        pipeline.keep = log_filter if log_filter.active else None
    pipeline.tail = Tail(tail) if tail is not None else None

    async def body() -> int:
        stream = open_stream(app, request, options, kwargs["open_timeout"])
        watcher = None
        if exit_status:
            from ..status import ExitWatcher

            monitor = StreamRequest("monitor", None, follow=True, history=True)
            watcher = ExitWatcher(
                app.settings.endpoint(kwargs["open_timeout"]),
                process_id,
                app.diag,
                lambda: open_stream(
                    app, monitor, app.stream_options(kwargs), kwargs["open_timeout"]
                ),
            )
            watcher.start()
        status = await follow_stream(app, stream, renderer, pipeline)
        if watcher is not None:
            return await watcher.result(forge=dialect_name(stream) == "forge")
        return status

    run(app, body)
