"""Human output for a terminal, through rich.

Server text is untrusted: terminal control characters are escaped before
printing (:func:`forgectl.escape.escape`), and it is never parsed as rich markup.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

from ..errors import OutputError
from ..escape import escape, escape_keeping_colour, strip_colour
from ..events import DiffUpdate, Event, LogEntry, ProcessEvent, RawChunk
from ..times import parse_time
from .agent import AgentView, Block, is_agent_entry
from .base import LineStamper, OutputClosed, Renderer
from .difftext import DiffChanges

if TYPE_CHECKING:
    from rich.ansi import AnsiDecoder
    from rich.console import Console
    from rich.text import Text

    from .monitor import MonitorView

LEVEL_STYLES = {
    "debug": "dim",
    "info": "default",
    "warn": "yellow",
    "error": "bold red",
    "success": "green",
}


def _clock(value: Any) -> str | None:
    """Local HH:MM:SS of a server timestamp; None when it has none."""
    moment = parse_time(value)
    if moment is None:
        return None
    return moment.astimezone().strftime("%H:%M:%S")


#: The width of a time column, for lines whose entry has no time of its own.
_CLOCK_WIDTH = len("00:00:00 ")


def in_foreground(stream: Any) -> bool:
    """Whether ``stream``'s terminal has this process's group in the foreground: not
    a job run with ``&``, or stopped and resumed with ``bg``, which shares it. True
    unless it can tell: the terminal is this process's controlling one (else asking
    fails) and a group that exists, not ours, has it."""
    try:
        group = os.tcgetpgrp(stream.fileno())
        if group == os.getpgrp():
            return True
        os.killpg(group, 0)  # no such group: nobody has the terminal
    except (OSError, AttributeError, ValueError):
        return True
    return False


def make_console(out: BinaryIO, color: str) -> Console:
    """A console on ``out``: ``color`` is auto, always or never.

    In auto mode rich itself honours NO_COLOR and FORCE_COLOR.
    """
    import io

    from rich.console import Console

    stream = io.TextIOWrapper(out, encoding="utf-8", errors="replace", write_through=True)
    if color == "always":
        return Console(file=stream, force_terminal=True, highlight=False, soft_wrap=True)
    if color == "never":
        return Console(
            file=stream, no_color=True, color_system=None, highlight=False, soft_wrap=True
        )
    return Console(file=stream, highlight=False, soft_wrap=True)


class PrettyRenderer(Renderer):
    """Log lines coloured by level, events as readable lines, diffs with colour; a
    coding agent's entries as :class:`~forgectl.output.agent.AgentView` shows them.

    Times: a log line starts with the server's time (local ``HH:MM:SS``) when the
    entry has one, and with nothing when it has none (the real server 0.7.4 sends
    ``timestamp: null``); once one entry has had a time, later ones without keep the
    column blank. ``timestamps`` prefixes each line with the local time it arrived
    (``HH:MM:SS.mmm``, before the server's).
    """

    def __init__(
        self,
        out: BinaryIO | None = None,
        *,
        color: str = "auto",
        stat_only: bool = False,
        name_only: bool = False,
        patch_only: bool = False,
        timestamps: bool = False,
        tool_output: str = "compact",
    ) -> None:
        super().__init__(out)
        self.console = make_console(self.out, color)
        # rich turns a closed pipe into exit 1 by itself: end quietly instead.
        self.console.on_broken_pipe = self._closed  # type: ignore[method-assign]
        self.stat_only = stat_only
        self.name_only = name_only
        self.patch_only = patch_only
        self.diff_changes = DiffChanges()
        #: a process's own colours are shown (off: --color never, NO_COLOR, no terminal)
        self.colour = not (self.console.no_color or self.console.color_system is None)
        self._raw_carry: dict[str, str] = {}
        self._raw_decoders: dict[str, AnsiDecoder] = {}
        self.monitor: MonitorView | None = None
        self.timestamps = timestamps
        self.stamper = LineStamper("%H:%M:%S.%f")
        self.server_times = False  # an entry has had a time: keep its column
        self.agent = AgentView(
            self._block,
            escape,
            tool_output=tool_output,
            schedule=self._later,
            output=self.process_text,
        )

    def write(self, data: bytes) -> None:  # rich writes through its own file
        raise NotImplementedError

    def _print(self, text: Text) -> None:
        try:
            self.console.print(text)
        except BrokenPipeError:
            self._closed()
        except OSError as exc:
            self._failed(exc)

    def flush(self) -> None:
        try:
            self.console.file.flush()
        except BrokenPipeError:
            self._closed()
        except ValueError:
            pass
        except OSError as exc:
            self._failed(exc)

    def render(self, event: Event) -> None:
        if self._gone is not None:  # a timer's print found stdout gone
            raise self._gone
        if isinstance(event, LogEntry) and is_agent_entry(event):
            self.agent.show(event)
            return
        self.agent.release()  # whatever comes next, a held tool call goes first
        if isinstance(event, LogEntry):
            self._log(event)
        elif isinstance(event, ProcessEvent):
            self._process(event)
        elif isinstance(event, DiffUpdate):
            self._diff(event)
        elif isinstance(event, RawChunk):
            self._raw(event)

    def close(self) -> None:
        if self._gone is None and self._raw_carry:  # a cut sequence never completed
            for rest in self._raw_carry.values():
                self._write_raw(escape(rest))
            self._raw_carry.clear()
        if self._gone is None:
            self.agent.release()  # a tool call still held
            if self.monitor is not None:
                self.monitor.close()  # the events still held, in order
        super().close()

    def _later(self, delay: float, callback: Callable[[], None]) -> Callable[[], None] | None:
        """``callback`` in ``delay`` seconds on the running loop (None without one)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None

        def run() -> None:
            if self._gone is not None:
                return
            try:
                callback()
            except (OutputClosed, OutputError) as gone:  # the next render() raises it
                self._gone = gone

        return loop.call_later(delay, run).cancel

    def _times(self, entry: LogEntry) -> Text:
        """A log line's time columns: when it arrived (``-t``), when it happened."""
        from rich.text import Text

        line = Text()
        if self.timestamps:  # when it arrived, before when the server says it happened
            line.append(self.stamper.prefix(), style="dim")
        clock = _clock(entry.timestamp)
        if clock is not None:
            self.server_times = True
            line.append(clock + " ", style="dim")
        elif self.server_times:
            line.append(" " * _CLOCK_WIDTH)
        return line

    def _block(self, entry: LogEntry, block: Block) -> None:
        from rich.text import Text

        times = self._times(entry)
        pad = " " * len(times.plain)
        for n, text in enumerate(block.lines):
            line = times if n == 0 else Text(pad)
            line.append_text(text)
            self._print(line)

    def _log(self, entry: LogEntry) -> None:
        level = entry.level
        style = LEVEL_STYLES.get(level, "default")
        line = self._times(entry)
        line.append(f"{level.upper():<7}", style=style)
        source = entry.source
        if source:
            line.append(f" {escape(source)}", style="magenta")
        meta = entry.metadata or {}
        if isinstance(meta.get("revision"), int) and meta["revision"] > 0:
            line.append(" (updated)", style="dim italic")
        line.append("  ")
        message = entry.message.rstrip("\n")
        line.append_text(self.process_text(message, style if level in ("error", "warn") else ""))
        self._print(line)

    def process_text(self, text: str, style: str = "", decoder: AnsiDecoder | None = None) -> Text:
        """A process's own output as a line's text: escaped, its colours (SGR)
        rendered when colour is on and dropped when it is off. ``decoder`` carries
        the colour from one piece of a stream to the next."""
        from rich.text import Text

        if not self.colour:
            return Text(escape(strip_colour(text)), style=style)
        if "\x1b" not in text:
            return Text(escape(text), style=style)
        from rich.ansi import AnsiDecoder

        decode = (decoder or AnsiDecoder()).decode_line
        # Split on newlines only: decode_line itself never sees a control character.
        pieces = escape_keeping_colour(text).split("\n")
        return Text("\n", style=style).join(decode(piece) for piece in pieces)

    def _process(self, event: ProcessEvent) -> None:
        if self.monitor is None:
            from .monitor import MonitorView

            console = self.console
            live = console.is_terminal and not console.is_dumb_terminal
            self.monitor = MonitorView(
                self._print,
                lambda: console.width if console.is_terminal else 100,
                self._later,
                live=live,
                write=self._write_raw,
                style=self._styled,
                foreground=lambda: in_foreground(console.file),
            )
        self.monitor.show(event)

    def interject(self, emit: Callable[[], None]) -> None:
        """Run ``emit`` (a line on stderr) with a running line out of its way."""
        if self.monitor is None:
            emit()
        else:
            self.monitor.interject(emit)

    def _write_raw(self, text: str) -> None:
        try:
            self.console.file.write(text)
            self.console.file.flush()
        except BrokenPipeError:
            self._closed()
        except OSError as exc:
            self._failed(exc)

    def _styled(self, text: str, style: str) -> str:
        """``text`` with ``style``'s escape codes, as the console would print it."""
        from rich.text import Text

        with self.console.capture() as captured:
            self.console.print(Text(text, style=style), end="")
        return captured.get()

    def _diff(self, update: DiffUpdate) -> None:
        """The diff coloured (``patch_only``: nothing else), its files' names, or
        git's stat table; then git's summary line. With --follow, an update after
        the first shows only the files that changed since the one before."""
        from rich.text import Text

        from ..diffing import GONE, quote_path, stat_rows, stat_summary

        first, files, removed = self.diff_changes.since_last(update)
        clock = _clock(update.timestamp)
        if not first:
            said = [f"{len(files)} file{'s' if len(files) != 1 else ''} changed"] if files else []
            if removed:
                said.append(f"{len(removed)} {GONE}")
            when = f" at {clock}" if clock else ""
            self._print(Text(f"⟳ update{when}: {', '.join(said)}", style="dim"))
        if self.name_only:
            for fd in files:
                self._print(Text(escape(quote_path(fd.path))))
            for path in removed:
                self._print(Text(f"{escape(quote_path(path))} ({GONE})", style="dim"))
            return
        if self.stat_only:
            for row in stat_rows(files, self.console.width, removed):
                line = Text(escape(row.lead))
                line.append(row.plus, style="green")
                line.append(row.minus, style="red")
                self._print(line)
        else:
            for fd in files:
                self._diff_text(fd.text)
            for path in removed:
                self._print(Text(f"# {escape(quote_path(path))}: {GONE}", style="dim"))
            if self.patch_only:
                return
        summary = stat_summary(update.files_changed, update.insertions, update.deletions)
        self._print(Text(summary, style="bold"))

    def _diff_text(self, text: str) -> None:
        from rich.text import Text

        for raw in text.splitlines():
            if raw.startswith(_DIFF_HEADERS):
                style = "bold"
            elif raw.startswith("@@"):
                style = "cyan"
            elif raw.startswith("+"):
                style = "green"
            elif raw.startswith("-"):
                style = "red"
            elif raw.startswith("# content omitted") or raw.startswith("Binary files "):
                style = "yellow"
            else:
                style = ""
            self._print(Text(escape(raw), style=style))

    def _raw(self, chunk: RawChunk) -> None:
        style = "red" if chunk.stream == "stderr" else ""
        stream = chunk.stream or ""
        text = self._raw_carry.pop(stream, "") + chunk.text
        # A colour sequence cut at the chunk's end waits for its rest (to be shown,
        # or dropped with colour off, whole).
        if "\x1b" in text:
            cut = _PARTIAL_SGR.search(text, max(0, len(text) - 64))
            if cut is not None:
                self._raw_carry[stream] = text[cut.start() :]
                text = text[: cut.start()]
        if self.timestamps:
            text = self.stamper.stamp(text)
        decoder = self._raw_decoders.get(stream)
        if decoder is None and self.colour:
            from rich.ansi import AnsiDecoder

            decoder = self._raw_decoders[stream] = AnsiDecoder()
        try:
            self.console.print(self.process_text(text, style, decoder), end="")
        except BrokenPipeError:
            self._closed()
        except OSError as exc:
            self._failed(exc)


#: The start of a colour sequence, cut off at the end of a raw chunk.
_PARTIAL_SGR = re.compile(r"\x1b(?:\[[0-9;:]*)?\Z")

#: The lines of a diff's file header (shown bold).
_DIFF_HEADERS = (
    "+++",
    "---",
    "diff --git",
    "index ",
    "new file",
    "deleted file",
    "rename ",
    "similarity",
    "copy ",
)
