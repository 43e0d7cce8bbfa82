"""``monitor``'s filters.

Only ``process_started`` carries ``taskAttemptId`` and ``executor``: the later events
of a process name just its ``processId``, so ``--attempt`` and ``--executor`` must
judge them by what the process's start said. ``--type`` only decides what is
printed.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from reference_server import (
    SPEC_PROCESS_COMPLETED,
    SPEC_PROCESS_FAILED,
    SPEC_PROCESS_PROGRESS,
    SPEC_PROCESS_STARTED,
    SPEC_PROCESS_STOPPED,
    UNKNOWN_EVENT,
)

from forgectl.events import ProcessEvent
from forgectl.filters import ProcessFilter

pytestmark = pytest.mark.timeout(60)

MONITOR_EVENTS = [
    SPEC_PROCESS_STARTED,
    SPEC_PROCESS_PROGRESS,
    UNKNOWN_EVENT,
    SPEC_PROCESS_COMPLETED,
    SPEC_PROCESS_FAILED,
    SPEC_PROCESS_STOPPED,
]


# -- helpers ------------------------------------------------------------------------


def started(pid: str, attempt: str, executor: str) -> dict[str, Any]:
    return {
        **SPEC_PROCESS_STARTED,
        "processId": pid,
        "taskAttemptId": attempt,
        "executor": executor,
    }


def of(pid: str, event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "processId": pid}


# -- the filter on its own ------------------------------------------------------------


def test_later_events_are_judged_by_the_process_start() -> None:
    keep = ProcessFilter(attempt="attempt_xyz789", executors=frozenset({"claude_code"}))
    events = [ProcessEvent(copy.deepcopy(e)) for e in MONITOR_EVENTS]
    assert [keep(e) for e in events] == [True] * 6
    other = ProcessFilter(attempt="nope")
    assert [other(ProcessEvent(copy.deepcopy(e))) for e in MONITOR_EVENTS] == [False] * 6
    codex = ProcessFilter(executors=frozenset({"codex"}))
    assert [codex(ProcessEvent(copy.deepcopy(e))) for e in MONITOR_EVENTS] == [False] * 6


def test_unknown_processes_are_left_out_by_attempt_and_executor() -> None:
    orphan = ProcessEvent(of("proc_orphan", SPEC_PROCESS_COMPLETED))
    assert ProcessFilter()(orphan)
    assert ProcessFilter(frozenset({"proc_orphan"}))(orphan)
    assert not ProcessFilter(attempt="attempt_xyz789")(orphan)
    assert not ProcessFilter(executors=frozenset({"claude_code"}))(orphan)
    # ... unless the event names them itself.
    named = ProcessEvent({**orphan.data, "taskAttemptId": "a1", "executor": "Codex"})
    assert ProcessFilter(attempt="a1", executors=frozenset({"codex"}))(named)


def test_type_hidden_events_still_teach_and_select() -> None:
    keep = ProcessFilter(types=frozenset({"process_completed"}), attempt="a1")
    start = ProcessEvent(started("p1", "a1", "CODEX"))
    assert not keep(start)  # hidden by --type ...
    assert keep.selects(start)  # ... yet of a chosen process
    end = ProcessEvent(of("p1", SPEC_PROCESS_COMPLETED))
    assert keep(end) and keep.selects(end)
    progress = ProcessEvent(of("p1", SPEC_PROCESS_PROGRESS))
    assert not keep(progress) and keep.selects(progress)


def test_interleaved_processes_are_told_apart() -> None:
    keep = ProcessFilter(attempt="a2")
    stream = [
        started("p1", "a1", "CLAUDE_CODE"),
        started("p2", "a2", "CODEX"),
        of("p1", SPEC_PROCESS_PROGRESS),
        of("p2", SPEC_PROCESS_PROGRESS),
        of("p1", SPEC_PROCESS_COMPLETED),
        of("p2", SPEC_PROCESS_FAILED),
    ]
    assert [keep(ProcessEvent(e)) for e in stream] == [False, True, False, True, False, True]


def test_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ProcessFilter, "MEMORY", 2)
    keep = ProcessFilter(attempt="a1")
    for pid in ("p1", "p2", "p3"):
        assert keep(ProcessEvent(started(pid, "a1", "CODEX")))
    assert not keep(ProcessEvent(of("p1", SPEC_PROCESS_COMPLETED)))  # forgotten: unknown
    assert keep(ProcessEvent(of("p3", SPEC_PROCESS_COMPLETED)))
