"""The diff stream: the attempt's file map, as ``diff_update`` events."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ...constants import DEFAULT_FIRST_WAIT
from ...diffing import DiffState, FileDiff
from ...events import BACKLOG_END, DiffUpdate, Event
from ...times import now_iso
from ..patch import ops_of, split
from .base import ENTRIES, PatchDecoder
from .schema import diff_entry

if TYPE_CHECKING:
    from ...diagnostics import Diagnostics
    from ..patch import Frame


#: After a reconnect, a file not resent within this many seconds was taken back
#: meanwhile (the server may take seconds to resend a big attempt's files).
RESEND_GRACE = 2.0


class ForgeDiffDecoder(PatchDecoder):
    """Keeps the attempt's file map and emits a ``diff_update`` per settled burst.

    The live diff stream of 0.7.4 has no end-of-snapshot marker: a burst ends when
    the stream has been quiet for ``quiet_after`` seconds (a ``Ready`` marker, from
    a newer server, ends the first one at once). The first one can take seconds while
    the server runs git, and an attempt without changes sends nothing at all, so the
    first update waits up to ``first_wait`` seconds; if nothing has come by then,
    the diff is printed empty with a note saying it is the wait that ended. Only
    files whose entry changed are re-diffed, and an update names them
    (``changes``, ``removed``: a burst that ends where the last update stood prints
    nothing); its ``diff`` text is joined only when a consumer reads it. The end of
    the first burst is the end of the history (without --follow, the command ends
    there).
    """

    knows_history = True

    def __init__(
        self, diag: Diagnostics, attempt: str, follow: bool, first_wait: float = DEFAULT_FIRST_WAIT
    ) -> None:
        super().__init__(diag)
        self.attempt = attempt
        self.follow = follow
        self.first_wait = first_wait
        self.state = DiffState()
        self.changed = True  # the first settle always prints, even an empty diff
        self.printed = False  # an update went out
        #: paths whose entry changed since the last update, and that update's files
        self.touched: set[str] = set()
        self.sent: dict[str, FileDiff] = {}
        self.unseen: set[str] = set()
        self.quiet_after = 0.3
        self.first_quiet = first_wait
        self.fed = False  # a frame came on this connection
        self.announced = False  # the end of the history was marked
        self.resend_until = 0.0

    def connected(self) -> None:
        self.unseen = set(self.state.paths())
        self.fed = False
        self.resend_until = time.monotonic() + RESEND_GRACE if self.unseen else 0.0
        self.wake_at = math.inf

    def feed(self, frame: bytes | str) -> Iterable[Event]:
        self.fed = True
        return super().feed(frame)

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
                    self.touched.add(name)
                continue
            if op not in ("add", "replace"):
                self.unknown_path(op, path)
                continue
            content = value.get("content") if type(value) is dict else None
            if type(content) is not dict:
                self.diag.bad_frame("unexpected diff entry", f"{path}: no content")
                continue
            entry = diff_entry(content)
            if isinstance(entry, str):
                self.diag.bad_frame("unexpected diff entry", f"{name}: {entry}")
                continue
            if self.state.set(name, entry):
                self.changed = True
                self.touched.add(name)
        return []

    def quiet(self) -> list[Event]:
        if not self.fed and not self.announced:
            self.diag.note(
                f"no diff update from the server within {self.first_wait:g} s: the attempt "
                "has no changes, or the server is still computing them (--first-wait)"
            )
        if self.unseen:
            if time.monotonic() < self.resend_until:
                self.wake_at = self.resend_until  # not resent yet: ask again then
            else:
                for name in self.unseen:  # gone while we were disconnected
                    if self.state.remove(name):
                        self.changed = True
                        self.touched.add(name)
                self.unseen = set()
                self.wake_at = math.inf
        update = self._update() if self.changed else None
        out: list[Event] = [update] if update is not None else []
        self.changed = False
        if not self.announced and not self.unseen:
            self.announced = True
            out.append(BACKLOG_END)
        return out

    def ready(self) -> list[Event]:
        """The server marked the end of its snapshot: the first update is due now,
        not after a quiet spell, and a file it did not resend is gone."""
        self.fed = True
        self.resend_until = 0.0
        return self.quiet()

    def _update(self) -> DiffUpdate | None:
        """The update for what changed since the last one (None: nothing did, and
        the first update has gone out)."""
        state, sent = self.state, self.sent
        changes: list[FileDiff] = []
        removed: list[str] = []
        for path in sorted(self.touched):
            now = state.get(path)
            before = sent.get(path)
            if now is None:
                if before is not None:
                    removed.append(path)
                    del sent[path]
            elif now != before:
                changes.append(now)
                sent[path] = now
        self.touched.clear()
        if self.printed and not changes and not removed:
            return None  # changed, then changed back: the last update still stands
        self.printed = True
        return DiffUpdate(
            {
                "type": "diff_update",
                "attemptId": self.attempt,
                "diff": None,  # joined from the files when read
                "filesChanged": state.files_changed,
                "insertions": state.insertions,
                "deletions": state.deletions,
                "timestamp": now_iso(),
            },
            files=state.snapshot(),
            changes=tuple(changes),
            removed=tuple(removed),
        )

    def finish(self) -> list[Event]:
        self.resend_until = 0.0
        return [e for e in self.quiet() if e is not BACKLOG_END]
