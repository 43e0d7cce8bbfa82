"""Diagnostics: warnings, notes and -v traces, kept off stdout.

The core reports through a :class:`Diagnostics` object so that it never prints by
itself: the CLI sends the lines to stderr, a library user gets them through the
``forgectl`` logger.

Whatever leaves forgectl as text for a person passes one gate first,
:func:`printable` (one line) or :func:`printable_traceback`: tokens redacted,
then control characters escaped. Every line here, every error line and every
``--debug`` traceback of the CLI goes through it.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Callable

from .escape import escape, escape_line
from .urls import redact, remember_secret

_log = logging.getLogger("forgectl")


def printable(text: str, *secrets: str | None) -> str:
    """``text`` as it may be shown: every known secret hidden, control characters
    (server text may carry escape sequences) escaped, on one line."""
    return escape_line(redact(text, *secrets))


def printable_traceback(error: BaseException, *secrets: str | None) -> str:
    """The traceback of ``error`` as it may be shown (``--debug``): the whole text
    redacted, not only the message, and escaped; lines kept."""
    import traceback

    text = "".join(traceback.format_exception(error))
    return escape(redact(text, *secrets))


class _PrintableFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return escape(redact(super().format(record)))


def guard_last_resort() -> None:
    """Make the messages Python's logging prints when nobody configured it (asyncio's
    "Task exception was never retrieved", say) pass the same gate as forgectl's own."""
    handler = logging.lastResort
    if handler is not None and not isinstance(handler.formatter, _PrintableFormatter):
        handler.setFormatter(_PrintableFormatter())


def _to_logging(level: str, line: str) -> None:
    _log.log(logging.WARNING if level == "warning" else logging.INFO, line)


class Diagnostics:
    """Where the core says things that are not data.

    ``emit(level, line)`` receives ``level`` in ``note``, ``warning``, ``trace``.
    Every line passes through :func:`printable` with the known secrets first.
    """

    def __init__(
        self,
        emit: Callable[[str, str], None] | None = None,
        *,
        verbose: int = 0,
        secrets: tuple[str | None, ...] = (),
    ) -> None:
        self._emit = emit or _to_logging
        self.verbose = verbose
        self.secrets = secrets
        for secret in secrets:
            remember_secret(secret)
        self.counts: Counter[str] = Counter()
        self._first: dict[str, str] = {}
        #: Runs each emission (``around(emit)``): a renderer that keeps a line it
        #: rewrites on the terminal (monitor's running line) moves it out of the way.
        self.around: Callable[[Callable[[], None]], None] | None = None

    def add_secret(self, secret: str | None) -> None:
        if secret and secret not in self.secrets:
            self.secrets = (*self.secrets, secret)
            remember_secret(secret)

    def _say(self, level: str, line: str) -> None:
        text = printable(line, *self.secrets)
        if self.around is None:
            self._emit(level, text)
        else:
            self.around(lambda: self._emit(level, text))

    def note(self, line: str) -> None:
        self._say("note", line)

    def warning(self, line: str) -> None:
        self._say("warning", line)

    def trace(self, line: str, level: int = 1) -> None:
        if self.verbose >= level:
            self._say("trace", line)

    def bad_frame(self, kind: str, detail: str) -> None:
        """Report a bad frame: the first of each kind at once, all in :meth:`summary`."""
        self.counts[kind] += 1
        if len(detail) > 200:  # a line on a terminal, not the frame
            detail = f"{detail[:160]}… ({len(detail)} characters)"
        if self.counts[kind] == 1:
            self._first[kind] = detail
            self.warning(f"{kind}: {detail} (skipped; later ones are counted)")
        else:
            self.trace(f"{kind}: {detail}")

    def summary(self) -> None:
        """One line per kind of bad frame seen more than once."""
        for kind, count in self.counts.items():
            if count > 1:
                self.warning(f"{kind}: {count} frames skipped in all")


def describe_frame(frame: bytes | str, exc: Exception) -> str:
    """A frame that is not JSON, for a bad-frame report: its size, start and the error."""
    head = frame[:40]
    text = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
    unit = "bytes" if isinstance(frame, bytes) else "characters"
    return f"{len(frame)} {unit} starting {text!r}: {exc}"


def stderr_emitter(prog: str = "forgectl") -> Callable[[str, str], None]:
    def emit(level: str, line: str) -> None:
        prefix = "" if level == "note" else f"{level}: " if level == "warning" else "· "
        try:
            sys.stderr.write(f"{prog}: {prefix}{line}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass

    return emit
