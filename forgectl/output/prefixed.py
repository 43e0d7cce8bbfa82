"""An attempt's processes in one output, each line prefixed with its process (as stern does).

Every process gets a renderer of its own (the pretty view keeps per-process state:
a held tool call, whether its entries have times), writing through a
:class:`LineWriter` that starts each line with the process's prefix (its short
id and what it is, in a colour of its own on a terminal) and passes whole lines
only, so lines of processes running side by side never mix. A process's last
line without a newline is passed when the output ends.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from ..escape import escape_line
from ..events import Event, ProcessRecord
from ..ids import short_ids
from .base import Renderer
from .pretty import make_console

#: What a prefix calls each kind of process.
REASONS = {
    "setupscript": "setup",
    "codingagent": "agent",
    "cleanupscript": "cleanup",
    "devserver": "dev",
}

#: The prefix colours, in the order processes get them.
PALETTE = ("cyan", "green", "magenta", "yellow", "blue", "bright_cyan", "bright_green", "red")


class LineWriter(io.BufferedIOBase):
    """A binary file for one process's renderer: whole lines, each starting with
    ``prefix``, written to the shared ``renderer``."""

    def __init__(self, renderer: Renderer, prefix: bytes, *, end_partial: bool) -> None:
        super().__init__()
        self.renderer = renderer
        self.prefix = prefix
        self.end_partial = end_partial  # at the end, a last partial line gets a newline
        self.partial = b""

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        out = self.renderer.out
        try:
            return bool(out.isatty())
        except (AttributeError, ValueError):
            return False

    def fileno(self) -> int:
        return self.renderer.out.fileno()

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        if not chunk:
            return 0
        text = self.partial + chunk
        cut = text.rfind(b"\n") + 1
        self.partial = text[cut:]
        if cut:
            lines = text[:cut].split(b"\n")[:-1]
            prefix = self.prefix
            self.renderer.write(b"".join(prefix + line + b"\n" for line in lines))
        return len(chunk)

    def flush(self) -> None:
        pass  # the shared renderer flushes when the loop is idle

    def finish(self) -> None:
        """The output ends: pass the last partial line."""
        if self.partial:
            rest, self.partial = self.partial, b""
            self.renderer.write(self.prefix + rest + (b"\n" if self.end_partial else b""))


class AttemptRenderer(Renderer):
    """Renders each event with its process's own renderer (``make(out)``), every
    line prefixed with ``label(process_id)`` (nothing when ``label`` gives "")."""

    def __init__(
        self,
        make: Callable[[BinaryIO], Renderer],
        label: Callable[[str], str],
        *,
        color: str = "auto",
        out: BinaryIO | None = None,
    ) -> None:
        super().__init__(out)
        self.make = make
        self.label = label
        self.console = make_console(self.out, color)
        self.styled = self.console.color_system is not None
        self.children: dict[str, tuple[Renderer, LineWriter]] = {}

    def render(self, event: Event) -> None:
        pid = getattr(event, "process_id", None) or ""
        child = self.children.get(pid)
        if child is None:
            child = self.children[pid] = self._child(pid)
        child[0].render(event)

    def _child(self, pid: str) -> tuple[Renderer, LineWriter]:
        text = self.label(pid)
        prefix = self._paint(text, PALETTE[len(self.children) % len(PALETTE)]) if text else b""
        writer = LineWriter(self, prefix, end_partial=bool(text))
        return self.make(writer), writer  # type: ignore[arg-type]

    def _paint(self, text: str, colour: str) -> bytes:
        if not self.styled:
            return text.encode() + b" "
        from rich.text import Text

        with self.console.capture() as captured:
            self.console.print(Text(text, style=colour), end="")
        return captured.get().encode() + b" "

    def close(self) -> None:
        try:
            for child, writer in self.children.values():
                child.close()
                writer.finish()
        finally:
            super().close()


def process_label(records: Mapping[str, ProcessRecord], pid: str) -> str:
    """A process's prefix: its short id (unique among ``records``) and what it is."""
    short = short_ids(records).get(pid, pid[:8])
    record = records.get(pid)
    reason = record.run_reason if record is not None else None
    what = REASONS.get(reason or "") or reason or (record.executor if record else None) or ""
    return f"{short} {escape_line(what):<7}" if what else short
