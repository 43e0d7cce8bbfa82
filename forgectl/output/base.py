"""What every renderer shares: buffered writes to stdout, flushed when idle."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import Callable
from typing import BinaryIO, ClassVar

from ..errors import OutputError
from ..events import Event

#: Lines are gathered in a buffer this large between writes to the pipe.
BUFFER_SIZE = 64 * 1024


def _buffered(out: BinaryIO) -> BinaryIO:
    """``out``, with a buffer in front of it if it has none.

    With PYTHONUNBUFFERED=1 (common in containers and CI) ``sys.stdout.buffer`` is
    the raw file: a system call per line would cost more than the rest of the
    line's handling. The raw file is wrapped, never closed by the wrapper.
    """
    if not isinstance(out, io.RawIOBase):
        return out
    try:
        raw = io.FileIO(out.fileno(), "wb", closefd=False)
    except (OSError, ValueError):
        return out
    return io.BufferedWriter(raw, BUFFER_SIZE)


class LineStamper:
    """Prefixes each line with the local time it arrived (``--timestamps``).

    Raw output comes in chunks, not lines: the prefix goes at the start of each
    line, never inside one, so a line split across chunks is stamped once.
    """

    def __init__(self, fmt: str = "%Y-%m-%dT%H:%M:%S.%f") -> None:
        self.fmt = fmt
        self.at_line_start = True

    def prefix(self) -> str:
        """The local time now, as each stamped line starts."""
        from datetime import datetime

        return datetime.now().strftime(self.fmt)[:-3] + " "

    def stamp(self, text: str) -> str:
        prefix = self.prefix()
        out: list[str] = []
        lines = text.split("\n")
        for i, line in enumerate(lines):
            last = i == len(lines) - 1
            if last and not line:
                break
            if self.at_line_start:
                out.append(prefix)
            out.append(line)
            if not last:
                out.append("\n")
            self.at_line_start = not last
        return "".join(out)

    def stamp_bytes(self, data: bytes) -> bytes:
        # surrogateescape keeps bytes that are not UTF-8 exactly as they came.
        return self.stamp(data.decode("utf-8", "surrogateescape")).encode(
            "utf-8", "surrogateescape"
        )


class OutputClosed(Exception):
    """stdout went away (``| head`` closed the pipe): stop quietly."""


_on_idle_failure: Callable[[OutputError], None] | None = None


def on_idle_failure(handler: Callable[[OutputError], None] | None) -> None:
    """Call ``handler`` (from the event loop) when a flush made while the stream was
    idle fails: stdout is full or failing, and the next write, which would say so,
    may be minutes away. The CLI ends the command there (exit 8); without a
    handler the next write or :meth:`Renderer.close` raises."""
    global _on_idle_failure
    _on_idle_failure = handler


class Renderer:
    """Writes events to a binary stream.

    Lines are buffered and flushed once no further frame is already waiting:
    a flush is scheduled with ``call_soon`` and runs when the event loop next
    goes idle, which is when the stream has nothing more buffered. A pipe
    reader still sees each line at once while the stream is idle.
    """

    def __init__(self, out: BinaryIO | None = None) -> None:
        if out is None:
            if sys.stdout is None:  # started with stdout closed (`>&-`)
                raise OutputError("cannot write the output: stdout is closed")
            out = sys.stdout.buffer
        self.out = _buffered(out)
        self._write = self.out.write
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        #: what an idle flush ran into (stdout closed or failing), for the next write
        self._gone: Exception | None = None

    #: The form this renderer prints (``"json"``, ``"raw"``) when a decoder may hand
    #: it runs of events already in that form (``Stream.pump(..., fused=...)``);
    #: None: events only.
    fuses: ClassVar[str | None] = None

    def render(self, event: Event) -> None:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        if self._gone is not None:
            raise self._gone
        try:
            self._write(data)
        except BrokenPipeError:
            self._closed()
        except ValueError:  # closed file
            raise OutputClosed from None
        except OSError as exc:
            self._failed(exc)
        if not self._flush_scheduled:
            self._schedule()

    def _schedule(self) -> None:
        loop = self._loop
        if loop is None:
            try:
                loop = self._loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
        self._flush_scheduled = True
        loop.call_soon(self._idle_flush)

    def _idle_flush(self) -> None:
        self._flush_scheduled = False
        # A callback cannot end the stream: the next write does. (stdout now
        # points at /dev/null, so a write alone would no longer notice.)
        try:
            self.flush()
        except (OutputClosed, OutputError) as gone:
            self._gone = gone
            if isinstance(gone, OutputError) and _on_idle_failure is not None:
                _on_idle_failure(gone)

    def flush(self) -> None:
        try:
            self.out.flush()
        except BrokenPipeError:
            self._closed()
        except ValueError:
            raise OutputClosed from None
        except OSError as exc:
            self._failed(exc)

    def close(self) -> None:
        """The stream ended: flush what is left (or say why an idle flush could not)."""
        if isinstance(self._gone, OutputError):
            raise self._gone
        self.flush()

    def _closed(self) -> None:
        self._silence()
        raise OutputClosed from None

    def _failed(self, exc: OSError) -> None:
        """stdout is full or failing (not a reader gone): exit 8, one line."""
        self._silence()
        raise OutputError(f"cannot write the output: {exc.strerror or exc}") from None

    def _silence(self) -> None:
        # Point stdout at /dev/null so the interpreter's own final flush is silent.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.out.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass
