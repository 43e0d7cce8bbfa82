"""The diff stream: the attempt's file map, as ``diff_update`` events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...diffing import DiffState
from ...events import DiffUpdate, Event
from ...times import now_iso
from ..patch import ops_of, split
from .base import ENTRIES, PatchDecoder
from .schema import _fix_counts

if TYPE_CHECKING:
    from ...diagnostics import Diagnostics
    from ..patch import Frame


class ForgeDiffDecoder(PatchDecoder):
    """Keeps the attempt's file map and emits a ``diff_update`` per settled burst.

    The live diff stream has no end-of-snapshot marker: a burst ends when the stream
    has been quiet for ``quiet_after`` seconds (the initial one can take seconds,
    while the server runs git). Only files whose entry changed are re-diffed.
    """

    def __init__(self, diag: Diagnostics, attempt: str, follow: bool) -> None:
        super().__init__(diag)
        self.attempt = attempt
        self.follow = follow
        self.state = DiffState()
        self.changed = True  # the first settle always prints, even an empty diff
        self.unseen: set[str] = set()
        self.quiet_after = 0.3

    def connected(self) -> None:
        self.unseen = set(self.state.paths())

    def apply(self, frame: Frame) -> list[Event]:
        for op, path, value in ops_of(frame):
            name = split(path, ENTRIES)
            if name is None or not name:
                self.unknown_path(op, path)
                continue
            self.unseen.discard(name)
            if op == "remove":
                if self.state.remove(name):
                    self.changed = True
                continue
            if op not in ("add", "replace"):
                self.unknown_path(op, path)
                continue
            content = value.get("content") if type(value) is dict else None
            if type(content) is not dict:
                self.diag.bad_frame("unexpected diff entry", f"{path}: no content")
                continue
            if self.state.set(name, _fix_counts(content)):
                self.changed = True
        return []

    def quiet(self) -> list[Event]:
        for name in self.unseen:  # gone while we were disconnected
            if self.state.remove(name):
                self.changed = True
        self.unseen = set()
        if not self.changed:
            return []
        self.changed = False
        state = self.state
        return [
            DiffUpdate(
                {
                    "type": "diff_update",
                    "attemptId": self.attempt,
                    "diff": state.text(),
                    "filesChanged": state.files_changed,
                    "insertions": state.insertions,
                    "deletions": state.deletions,
                    "timestamp": now_iso(),
                }
            )
        ]

    def finish(self) -> list[Event]:
        return self.quiet()
