"""A diff as text, whatever stdout is: ``--patch``, ``--stat`` and ``--name-only``.

``--patch`` writes the unified diff byte for byte (``forgectl diff X --patch | git
apply`` works); ``--stat`` writes ``git diff --stat``'s table for the width git
would use; ``--name-only`` one path a line, quoted as git quotes it. On a terminal
the pretty renderer shows the same, coloured and escaped.

With ``--follow``, the first update shows the whole diff, and each later one only
what changed since the one before (:class:`DiffChanges`): the work per update is
the changed files', not the attempt's, where the real server says which they are.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO

from ..diffing import FileDiff, quote_path, stat_rows, stat_summary
from ..events import DiffUpdate, Event
from .base import Renderer


class DiffChanges:
    """Which files an update brings that the previous update did not show.

    The real server's decoder says (``changes``, ``removed``); for a documented
    server, whose every update is the whole diff, they are found by comparing the
    files with the previous update's.
    """

    def __init__(self) -> None:
        self.first = True
        self._shown: dict[str, FileDiff] | None = None

    def since_last(self, update: DiffUpdate) -> tuple[bool, tuple[FileDiff, ...], tuple[str, ...]]:
        """(whether this is the first update, the files to show, the paths gone)."""
        first, self.first = self.first, False
        if update.changes is not None and update.removed is not None:
            return first, (update.files if first else update.changes), update.removed
        files = update.files
        shown = self._shown or {}
        now = {fd.path: fd for fd in files}
        self._shown = now
        if first:
            return True, files, ()
        changes = tuple(fd for fd in files if shown.get(fd.path) != fd)
        return False, changes, tuple(p for p in shown if p not in now)


def stat_width(out: BinaryIO) -> int:
    """The width ``git diff --stat`` uses: ``COLUMNS`` when set, else the terminal's,
    else 80."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(out.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 80


class DiffTextRenderer(Renderer):
    """``form``: ``patch``, ``stat`` or ``names``; ``width``: the stat's columns
    (default: as git finds them); ``notice``: where a note goes (stderr)."""

    def __init__(
        self,
        out: BinaryIO | None = None,
        *,
        form: str = "patch",
        width: int | None = None,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(out)
        self.form = form
        self.width = width if width is not None else stat_width(self.out)
        self.changes = DiffChanges()
        self.notice = notice
        self._noted = False

    def render(self, event: Event) -> None:
        if not isinstance(event, DiffUpdate):
            return
        if self.form == "patch":
            self.write(event.diff.encode("utf-8", "surrogateescape"))
            return
        first, files, removed = self.changes.since_last(event)
        if self.form == "names":
            text = "".join(quote_path(fd.path) + "\n" for fd in files)
        else:
            self._note_counts(files)
            rows = stat_rows(files, self.width, removed)
            if not rows and not first:
                return
            text = "".join(row.text + "\n" for row in rows)
            if rows:
                text += stat_summary(event.files_changed, event.insertions, event.deletions)
                text += "\n"
        if text:
            self.write(text.encode("utf-8", "surrogateescape"))

    def _note_counts(self, files: tuple[FileDiff, ...]) -> None:
        if self.notice is not None and not self._noted:
            note = omitted_note(files)
            if note:
                self._noted = True
                self.notice(note)


def omitted_note(files: tuple[FileDiff, ...]) -> str | None:
    """What to say on stderr when some counts are not forgectl's own (None: all are)."""
    server = [fd for fd in files if fd.omitted and fd.counted]
    unknown = [fd for fd in files if not fd.counted]
    said = []
    if server:
        said.append(f"{_files(len(server))} the server did not send: their line counts are its own")
    if unknown:
        said.append(f"{_files(len(unknown))} without contents or counts: shown as ?")
    return "; ".join(said) or None


def _files(n: int) -> str:
    return f"{n} file{'' if n == 1 else 's'}"
