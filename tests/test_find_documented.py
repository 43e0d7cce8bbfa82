"""``ps``, id prefixes and ``logs --attempt`` on the documented API (a real
WebSocket server on loopback, tests/reference_server.py).

The spec has no route that lists processes: forgectl folds what the event stream
sends on connecting into one record per process, says so on stderr, and refuses
the filters its events cannot answer (``--task``, ``--project``). Its ids have no
fixed form, so an id the server answers with 404 is matched against the processes
that stream reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reference_server import Process, Scenario, ThreadedReferenceServer

from forgectl.errors import ExitCode

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "documented-token"


def started(pid: str, attempt: str, at: str, executor: str = "CLAUDE_CODE") -> dict[str, Any]:
    return {
        "type": "process_started",
        "processId": pid,
        "taskAttemptId": attempt,
        "executor": executor,
        "startedAt": at,
    }


EVENTS: list[dict[str, Any]] = [
    started("proc_a1", "attempt_1", "2024-01-15T10:00:00Z", "SETUP_SCRIPT"),
    {
        "type": "process_completed",
        "processId": "proc_a1",
        "completedAt": "2024-01-15T10:00:05Z",
        "duration": 5000,
        "exitCode": 0,
    },
    started("proc_a2", "attempt_1", "2024-01-15T10:00:06Z"),
    {"type": "process_progress", "processId": "proc_a2", "progress": {"percentage": 50}},
    {
        "type": "process_failed",
        "processId": "proc_a2",
        "failedAt": "2024-01-15T10:01:00Z",
        "error": {"code": "EXECUTION_ERROR", "message": "Compilation failed"},
    },
    started("proc_b1", "attempt_2", "2024-01-15T11:00:00Z", "DEV_SERVER"),
    {"type": "process_stopped", "processId": "proc_b1", "stoppedAt": "2024-01-15T11:30:00Z"},
    started("proc_a3", "attempt_1", "2024-01-15T12:00:00Z"),
]


def log(message: str, level: str = "info") -> dict[str, Any]:
    return {
        "level": level,
        "message": message,
        "timestamp": "2024-01-15T10:00:00Z",
        "source": "executor",
        "metadata": None,
    }


def scenario(events: list[dict[str, Any]], interval: float = 0.0) -> Scenario:
    processes = {
        "proc_a1": Process("proc_a1", logs=[log("setup 1"), log("setup 2")], raw=["s1", "s2"]),
        "proc_a2": Process("proc_a2", logs=[log("agent failed", "error")], raw=["a1"]),
        "proc_b1": Process("proc_b1", logs=[log("dev up")], raw=["d1"]),
        "proc_a3": Process(
            "proc_a3",
            logs=[log("still going")],
            raw=["g1"],
            finished=False,
            live_logs=[log("step 2")],
            live_raw=["g2"],
        ),
    }
    return Scenario(
        processes=processes, events=json.loads(json.dumps(events)), event_interval=interval
    )


@pytest.fixture(scope="module")
def srv() -> Iterator[ThreadedReferenceServer]:
    with ThreadedReferenceServer(token=TOKEN, scenario=scenario(EVENTS)) as server:
        yield server


def forgectl(url: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, FORGE_TOKEN=TOKEN, PYTHONPATH=path)
    return subprocess.run(
        [sys.executable, "-m", "forgectl", "--server", url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def record(
    pid: str, attempt: str, executor: str, status: str, code: Any, begin: str, end: Any
) -> dict[str, Any]:
    return {
        "processId": pid,
        "taskAttemptId": attempt,
        "runReason": None,
        "executor": executor,
        "status": status,
        "exitCode": code,
        "startedAt": begin,
        "completedAt": end,
    }


RECORDS = [
    record("proc_a3", "attempt_1", "CLAUDE_CODE", "running", None, "2024-01-15T12:00:00Z", None),
    record(
        "proc_b1",
        "attempt_2",
        "DEV_SERVER",
        "killed",
        None,
        "2024-01-15T11:00:00Z",
        "2024-01-15T11:30:00Z",
    ),
    record(
        "proc_a2",
        "attempt_1",
        "CLAUDE_CODE",
        "failed",
        None,
        "2024-01-15T10:00:06Z",
        "2024-01-15T10:01:00Z",
    ),
    record(
        "proc_a1",
        "attempt_1",
        "SETUP_SCRIPT",
        "completed",
        0,
        "2024-01-15T10:00:00Z",
        "2024-01-15T10:00:05Z",
    ),
]


@pytest.mark.parametrize("api", ["documented", "auto"])
def test_ps_lists_what_the_event_stream_reports(srv: ThreadedReferenceServer, api: str) -> None:
    done = forgectl(srv.url, "--api", api, "ps")
    assert done.returncode == 0, done.stderr
    assert jsonl(done.stdout) == RECORDS
    assert "the documented API has no list of processes" in done.stderr
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "pids"),
    [
        (["--attempt", "attempt_1"], ["proc_a3", "proc_a2", "proc_a1"]),
        (["--attempt", "attempt_2"], ["proc_b1"]),
        (["--attempt", "attempt_9"], []),
        (["--status", "failed", "--status", "killed"], ["proc_b1", "proc_a2"]),
        (["--attempt", "attempt_1", "--status", "running"], ["proc_a3"]),
    ],
)
def test_ps_filters(srv: ThreadedReferenceServer, args: list[str], pids: list[str]) -> None:
    done = forgectl(srv.url, "ps", *args)
    assert done.returncode == 0, done.stderr
    assert [r["processId"] for r in jsonl(done.stdout)] == pids


def test_ps_cannot_filter_by_what_the_events_do_not_say(srv: ThreadedReferenceServer) -> None:
    for flag in ("--task", "--project"):
        done = forgectl(srv.url, "ps", flag, "x")
        assert done.returncode == ExitCode.USAGE, done.stderr
        (line,) = done.stderr.splitlines()
        assert "does not say which task or project" in line and done.stdout == ""


def test_an_attempt_prefix_in_ps_is_matched_and_ambiguity_said(
    srv: ThreadedReferenceServer,
) -> None:
    done = forgectl(srv.url, "ps", "--attempt", "attempt_")
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert (
        "attempt id attempt_ is ambiguous: 2 attempts start with it: attempt_1, attempt_2"
        in done.stderr
    )


def test_an_id_the_server_does_not_know_is_tried_as_a_prefix(srv: ThreadedReferenceServer) -> None:
    done = forgectl(srv.url, "logs", "proc_b")
    assert done.returncode == 0, done.stderr
    assert [line["message"] for line in jsonl(done.stdout)] == ["dev up"]
    ambiguous = forgectl(srv.url, "logs", "proc_a", "--raw")
    assert ambiguous.returncode == ExitCode.USAGE, ambiguous.stderr
    (line,) = ambiguous.stderr.splitlines()
    assert "process id proc_a is ambiguous: 3 processes start with it" in line
    assert all(pid in line for pid in ("proc_a1", "proc_a2", "proc_a3"))
    missing = forgectl(srv.url, "logs", "proc_zz")
    assert missing.returncode == ExitCode.NOT_FOUND, missing.stderr


def test_logs_of_an_attempt_in_order_with_their_process(srv: ThreadedReferenceServer) -> None:
    done = forgectl(srv.url, "logs", "--attempt", "attempt_1", "--json")
    assert done.returncode == 0, done.stderr
    got = [(line["processId"], line["message"]) for line in jsonl(done.stdout)]
    assert got == [
        ("proc_a1", "setup 1"),
        ("proc_a1", "setup 2"),
        ("proc_a2", "agent failed"),
        ("proc_a3", "still going"),
        ("proc_a3", "step 2"),  # a running process's history runs to where it ended
    ]
    raw = forgectl(srv.url, "logs", "--attempt", "attempt_1", "--raw")
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout == "s1\ns2\na1\ng1\ng2\n"


def test_follow_picks_up_a_process_that_starts_later_and_ends_when_none_runs() -> None:
    """Events paced 0.3 s apart, well past the history (--settle 0.1): proc_c2 starts
    after the command has printed proc_c1's lines; the command ends once both ended."""
    events = [
        started("proc_c1", "attempt_c", "2024-01-15T10:00:00Z"),
        started("proc_c2", "attempt_c", "2024-01-15T10:00:01Z"),
        {"type": "process_completed", "processId": "proc_c1", "exitCode": 0},
        {"type": "process_completed", "processId": "proc_c2", "exitCode": 0},
    ]
    plan = scenario(events, interval=0.3)
    plan.processes["proc_c1"] = Process("proc_c1", logs=[log("first")])
    plan.processes["proc_c2"] = Process("proc_c2", logs=[log("second")])
    with ThreadedReferenceServer(token=TOKEN, scenario=plan) as server:
        done = forgectl(
            server.url, "logs", "--attempt", "attempt_c", "-f", "--json", "--settle", "0.1"
        )
    assert done.returncode == 0, done.stderr
    assert [(line["processId"], line["message"]) for line in jsonl(done.stdout)] == [
        ("proc_c1", "first"),
        ("proc_c2", "second"),
    ]


def test_since_and_tail_apply_to_each_process_by_its_own_entries() -> None:
    """Each process's entries at times of their own: --since keeps each process's
    later ones, --tail 1 each process's last one."""
    plan = scenario(EVENTS)

    def at(message: str, second: int) -> dict[str, Any]:
        return {**log(message), "timestamp": f"2024-01-15T10:00:{second:02d}Z"}

    plan.processes["proc_a1"] = Process("proc_a1", logs=[at("a1 early", 0), at("a1 late", 4)])
    plan.processes["proc_a2"] = Process("proc_a2", logs=[at("a2 early", 2), at("a2 late", 30)])
    with ThreadedReferenceServer(token=TOKEN, scenario=plan) as server:
        since = forgectl(
            server.url,
            "logs",
            "--attempt",
            "attempt_1",
            "--json",
            "--since",
            "2024-01-15T10:00:03Z",
        )
        tail = forgectl(server.url, "logs", "--attempt", "attempt_1", "--json", "--tail", "1")
    assert since.returncode == 0, since.stderr
    assert [(line["processId"], line["message"]) for line in jsonl(since.stdout)] == [
        ("proc_a1", "a1 late"),
        ("proc_a2", "a2 late"),
    ]
    assert tail.returncode == 0, tail.stderr
    assert [(line["processId"], line["message"]) for line in jsonl(tail.stdout)] == [
        ("proc_a1", "a1 late"),
        ("proc_a2", "a2 late"),
        ("proc_a3", "step 2"),
    ]
