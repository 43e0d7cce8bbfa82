"""``monitor``'s filters and stop rules against the reference server.

Only ``process_started`` carries ``taskAttemptId`` and ``executor``: the later events
of a process name just its ``processId``, so ``--attempt`` and ``--executor`` must
judge them by what the process's start said. ``--type`` only decides what is
printed: ``--until-idle`` and ``--exit-status`` see every event of the chosen
processes, or a hidden end event would leave them waiting forever.

The CLI runs as a child process with a timeout, so a hang fails in seconds.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reference_server import (
    SCENARIO_EVENTS,
    SPEC_PROCESS_COMPLETED,
    SPEC_PROCESS_FAILED,
    SPEC_PROCESS_PROGRESS,
    SPEC_PROCESS_STARTED,
    ThreadedReferenceServer,
    default_scenario,
)

from forgectl.events import ProcessEvent
from forgectl.filters import ProcessFilter

pytestmark = pytest.mark.timeout(60)

TOKEN = "tok-monitor-filters"
#: Long enough for the CLI to start and read the scenario; short enough that a hang
#: fails the test quickly.
HANG = 15.0
#: The source tree under test: the child imports this forgectl, not an installed one.
ROOT = Path(__file__).resolve().parent.parent

MONITOR_EVENTS = SCENARIO_EVENTS


# -- helpers ------------------------------------------------------------------------


@pytest.fixture
def srv() -> Iterator[ThreadedReferenceServer]:
    with ThreadedReferenceServer(token=TOKEN, scenario=default_scenario()) as server:
        yield server


def serve(events: list[dict[str, Any]], interval: float = 0.0) -> ThreadedReferenceServer:
    scenario = default_scenario()
    scenario.events = copy.deepcopy(events)
    scenario.event_interval = interval
    return ThreadedReferenceServer(token=TOKEN, scenario=scenario)


def monitor(url: str, *args: str) -> tuple[int, list[Any], str]:
    """Run ``forgectl monitor --json ARGS``: (exit status, JSON lines, stderr)."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, FORGE_TOKEN=TOKEN, PYTHONPATH=path)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "forgectl", "--server", url, "monitor", "--json", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=HANG,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"monitor {' '.join(args)} hung: still running after {HANG} s ({exc.stdout!r})")
    assert "Traceback" not in done.stderr
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


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


# -- the CLI against the reference server ---------------------------------------------


def test_attempt_leaves_out_the_later_events_of_other_attempts(
    srv: ThreadedReferenceServer,
) -> None:
    assert monitor(srv.url, "--attempt", "nope", "--until-idle")[:2] == (0, [])


def test_attempt_keeps_every_event_of_its_processes(srv: ThreadedReferenceServer) -> None:
    status, got, _ = monitor(srv.url, "--attempt", "attempt_xyz789", "--until-idle")
    assert (status, got) == (0, MONITOR_EVENTS)


@pytest.mark.parametrize("name", ["claude_code", "CLAUDE_CODE"])
def test_executor_keeps_every_event_of_its_processes(
    srv: ThreadedReferenceServer, name: str
) -> None:
    assert monitor(srv.url, "--executor", name, "--until-idle")[:2] == (0, MONITOR_EVENTS)


def test_other_executor_prints_nothing_and_is_idle(srv: ThreadedReferenceServer) -> None:
    assert monitor(srv.url, "--executor", "codex", "--until-idle")[:2] == (0, [])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--type", "process_started"], [SPEC_PROCESS_STARTED]),
        (["--type", "process_progress"], [SPEC_PROCESS_PROGRESS]),
        (
            ["--executor", "claude_code", "--type", "process_completed"],
            [SPEC_PROCESS_COMPLETED],
        ),
        (
            ["--attempt", "attempt_xyz789", "--type", "process_started"],
            [SPEC_PROCESS_STARTED],
        ),
    ],
)
def test_until_idle_sees_the_end_events_type_hides(
    srv: ThreadedReferenceServer, args: list[str], expected: list[Any]
) -> None:
    assert monitor(srv.url, *args, "--until-idle")[:2] == (0, expected)


def test_exit_status_sees_the_end_event_type_hides(srv: ThreadedReferenceServer) -> None:
    status, got, _ = monitor(
        srv.url, "--process", "proc_abc123", "--exit-status", "--type", "process_started"
    )
    assert (status, got) == (0, [SPEC_PROCESS_STARTED])


def test_exit_status_of_a_hidden_failure() -> None:
    failed = {**SPEC_PROCESS_FAILED, "exitCode": 3}
    with serve([SPEC_PROCESS_STARTED, SPEC_PROCESS_PROGRESS, failed]) as server:
        status, got, _ = monitor(
            server.url, "--process", "proc_abc123", "--exit-status", "--type", "process_started"
        )
    assert (status, got) == (3, [SPEC_PROCESS_STARTED])


def test_interleaved_attempts_live() -> None:
    # p2 starts in the backlog; the rest comes live, one event at a time (slower
    # than the 0.5 s that ends the backlog): --until-idle ends on p2's end event,
    # though --type hides it, and the other attempt's events are left out.
    events = [
        started("p2", "a2", "CODEX"),
        started("p1", "a1", "CLAUDE_CODE"),
        of("p1", SPEC_PROCESS_PROGRESS),
        of("p2", SPEC_PROCESS_PROGRESS),
        of("p_orphan", SPEC_PROCESS_COMPLETED),
        of("p1", SPEC_PROCESS_COMPLETED),
        of("p2", SPEC_PROCESS_FAILED),
    ]
    with serve(events, interval=0.6) as server:
        everything = monitor(server.url, "--attempt", "a2", "--until-idle")
        hidden_end = monitor(
            server.url, "--executor", "codex", "--type", "process_progress", "--until-idle"
        )
    assert everything[:2] == (0, [events[0], events[3], events[6]])
    assert hidden_end[:2] == (0, [events[3]])
