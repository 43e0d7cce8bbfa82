"""Finding an id on the REAL Forge server: ``forgectl ps`` and id prefixes everywhere.

``ps`` is compared with the server's own REST records (``GET /api/task-attempts``,
then each attempt's ``GET /api/execution-processes?task_attempt_id=``), read by the
test itself; every command is run with the start of an id and compared with the
same command given the whole id; an ambiguous start is a usage error naming the
candidates. The console script runs in a subprocess, with no ``--api`` (so
auto-detection decides), inside a loopback-only network namespace:

    unshare -rn sh -c 'ip link set lo up && exec .venv/bin/python -m pytest -q tests/test_find.py'
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest
import support
from forge_server import TERMINAL_STATUSES, ForgeServer, Scenario, make_scenario
from ptyrun import PtyRun
from support import EXE

from forgectl import ForgeClient
from forgectl.errors import AmbiguousId, ExitCode, NotFoundError
from forgectl.times import parse_time

pytestmark = [pytest.mark.forge, pytest.mark.timeout(120)]

UNKNOWN = "00000000-0000-0000-0000-000000000000"
FIELDS = (
    "processId",
    "taskAttemptId",
    "runReason",
    "executor",
    "status",
    "exitCode",
    "startedAt",
    "completedAt",
)


@pytest.fixture(scope="module")
def sc(server: ForgeServer) -> Scenario:
    """Setup completes, the coding agent fails offline, a dev server is killed."""
    return make_scenario(server, name="find", setup_exit=0, setup_sleep=0.05, dev_run_seconds=0.3)


@pytest.fixture(scope="module")
def other(server: ForgeServer) -> Scenario:
    """Another project, task and attempt: a setup script that fails (exit 3)."""
    return make_scenario(
        server, name="other", setup_exit=3, setup_sleep=0.05, dev_server=False, write_files=False
    )


def run(server: ForgeServer, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return support.run(server, *args, timeout=timeout)


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def _executor(record: dict[str, Any]) -> str | None:
    typ = record["executor_action"]["typ"]
    profile = typ.get("executor_profile_id")
    found = profile["executor"] if profile else typ.get("context") or typ.get("type")
    return str(found) if found is not None else None


def server_records(server: ForgeServer) -> list[dict[str, Any]]:
    """Every process on the server as ``ps --json`` documents it, from the REST
    records, newest first."""
    out = []
    for attempt in server.api("GET", "/api/task-attempts"):
        for record in server.list_processes(attempt["id"]):
            out.append(
                {
                    "processId": record["id"],
                    "taskAttemptId": record["task_attempt_id"],
                    "runReason": record["run_reason"],
                    "executor": _executor(record),
                    "status": record["status"],
                    "exitCode": record["exit_code"],
                    "startedAt": record["started_at"],
                    "completedAt": record["completed_at"],
                }
            )
    return sorted(out, key=started, reverse=True)


def started(record: dict[str, Any]) -> float:
    moment = parse_time(record["startedAt"])
    assert moment is not None, record
    return moment.timestamp()


def unused_prefix(ids: list[str]) -> str:
    """A 4-hex-digit start that none of ``ids`` has."""
    taken = {i[:4] for i in ids}
    return next(p for p in (f"{n:04x}" for n in range(1 << 16)) if p not in taken)


def test_ps_lists_what_the_server_records_newest_first(
    server: ForgeServer, sc: Scenario, other: Scenario
) -> None:
    done = run(server, "ps")
    assert done.returncode == 0, done.stderr
    got = lines(done.stdout)
    assert got == server_records(server)
    assert all(tuple(r) == FIELDS for r in got)  # the documented names, in this order
    assert {r["processId"] for r in got} >= {*sc.processes, other.setup_process_id}
    assert done.stderr == ""


@pytest.mark.parametrize(
    ("flags", "keep"),
    [
        (
            lambda sc, o: ["--attempt", sc.attempt_id[:8]],
            lambda r, sc, o: r["taskAttemptId"] == sc.attempt_id,
        ),
        (
            lambda sc, o: ["--task", o.task_id[:6]],
            lambda r, sc, o: r["taskAttemptId"] == o.attempt_id,
        ),
        (
            lambda sc, o: ["--project", sc.project_id],
            lambda r, sc, o: r["taskAttemptId"] == sc.attempt_id,
        ),
        (lambda sc, o: ["--status", "failed"], lambda r, sc, o: r["status"] == "failed"),
        (
            lambda sc, o: ["--run-reason", "setupscript", "--run-reason", "devserver"],
            lambda r, sc, o: r["runReason"] in ("setupscript", "devserver"),
        ),
        (
            lambda sc, o: ["--attempt", sc.attempt_id, "--status", "completed"],
            lambda r, sc, o: r["taskAttemptId"] == sc.attempt_id and r["status"] == "completed",
        ),
        (lambda sc, o: ["--attempt", sc.attempt_id, "--task", o.task_id], lambda r, sc, o: False),
    ],
    ids=["attempt-prefix", "task-prefix", "project", "status", "run-reasons", "and", "disjoint"],
)
def test_ps_filters_keep_what_the_server_says_belongs(
    server: ForgeServer, sc: Scenario, other: Scenario, flags: Any, keep: Any
) -> None:
    done = run(server, "ps", *flags(sc, other))
    assert done.returncode == 0, done.stderr
    expected = [r for r in server_records(server) if keep(r, sc, other)]
    assert lines(done.stdout) == expected


def test_ps_quiet_prints_whole_ids(server: ForgeServer, sc: Scenario) -> None:
    done = run(server, "ps", "-q", "--attempt", sc.attempt_id)
    assert done.returncode == 0, done.stderr
    want = [r["processId"] for r in server_records(server) if r["taskAttemptId"] == sc.attempt_id]
    assert done.stdout.splitlines() == want


def test_ps_on_a_terminal_shows_short_ids_that_name_their_process(
    server: ForgeServer, sc: Scenario, other: Scenario
) -> None:
    screen = PtyRun([EXE, "-s", server.url, "ps", "--color", "never"], columns=100)
    assert screen.wait(60) == 0, screen.stderr
    rows = [line.split() for line in screen.text.splitlines() if line.strip()]
    assert rows[0] == [
        "ID",
        "ATTEMPT",
        "REASON",
        "EXECUTOR",
        "STATUS",
        "EXIT",
        "STARTED",
        "DURATION",
    ]
    records = server_records(server)
    assert len(rows) == len(records) + 1
    ids = [r["processId"] for r in records]
    for row, record in zip(rows[1:], records, strict=True):
        short = row[0]
        assert len(short) >= 8 and [i for i in ids if i.startswith(short)] == [record["processId"]]
        assert record["taskAttemptId"].startswith(row[1])
        exit_code = "-" if record["exitCode"] is None else str(record["exitCode"])
        assert row[2:6] == [record["runReason"], record["executor"], record["status"], exit_code]
        assert re.fullmatch(r"\d+(ms|\.\d+s|m\d\ds|h\d\dm|d\d\dh)", row[-1]), row
    assert max(len(line) for line in screen.text.splitlines()) <= 100


def test_ps_with_ids_the_server_does_not_know(server: ForgeServer, sc: Scenario) -> None:
    unknown = run(server, "ps", "--attempt", UNKNOWN)
    assert unknown.returncode == ExitCode.NOT_FOUND, unknown.stderr
    assert f"attempt {UNKNOWN} not found" in unknown.stderr
    start = unused_prefix([a["id"] for a in server.api("GET", "/api/task-attempts")])
    none = run(server, "ps", "--attempt", start)
    assert none.returncode == ExitCode.NOT_FOUND, none.stderr
    assert (
        none.stderr
        == f"forgectl: error: attempt {start} not found (no attempt id starts with it)\n"
    )
    bad = run(server, "ps", "--task", "not-a-task")
    assert bad.returncode == ExitCode.USAGE, bad.stderr
    assert len(bad.stderr.splitlines()) == 1 and "not-a-task" in bad.stderr
    assert unknown.stdout == none.stdout == bad.stdout == ""


def test_every_command_takes_the_start_of_an_id(server: ForgeServer, sc: Scenario) -> None:
    agent = sc.coding_agent_process_id
    assert agent is not None
    pairs = [
        (["logs", sc.setup_process_id, "--raw"], ["logs", sc.setup_process_id[:8], "--raw"]),
        (["logs", agent], ["logs", agent[:5]]),
        (["diff", sc.attempt_id, "--stat"], ["diff", sc.attempt_id[:6], "--stat"]),
        (
            ["monitor", "--attempt", sc.attempt_id, "--history", "--until-idle"],
            ["monitor", "--attempt", sc.attempt_id[:8], "--history", "--until-idle"],
        ),
        (
            ["monitor", "--process", agent, "--exit-status"],
            ["monitor", "--process", agent[:8], "--exit-status"],
        ),
        (
            ["logs", "--attempt", sc.attempt_id, "--raw"],
            ["logs", "--attempt", sc.attempt_id[:4], "--raw"],
        ),
    ]
    for whole, start in pairs:
        a, b = run(server, *whole), run(server, *start)
        assert (b.returncode, timeless(b.stdout)) == (a.returncode, timeless(a.stdout)), (
            start,
            b.stderr,
        )
        assert a.stdout, whole


def timeless(text: str) -> str:
    """A diff_update's own time is when it was made: two reads differ there only."""
    if not text.startswith('{"type":"diff_update"'):
        return text
    return "".join(json.dumps({**json.loads(x), "timestamp": None}) for x in text.splitlines())


def test_the_library_completes_ids(server: ForgeServer, sc: Scenario) -> None:
    import asyncio

    async def main() -> None:
        async with ForgeClient(server.url) as forge:
            assert await forge.processes.resolve(sc.setup_process_id[:7]) == sc.setup_process_id
            assert await forge.attempts.resolve(sc.attempt_id[:9]) == sc.attempt_id
            assert await forge.processes.resolve(UNKNOWN) == UNKNOWN  # whole: no request
            attempts = [a["id"] for a in server.api("GET", "/api/task-attempts")]
            with pytest.raises(NotFoundError):
                await forge.attempts.resolve(unused_prefix(attempts))
            records = await forge.processes.list(attempt=sc.attempt_id[:8], status="failed")
            assert [r.process_id for r in records] == [sc.coding_agent_process_id]
            assert records[0].exit_code == 1 and records[0].run_reason == "codingagent"

    asyncio.run(main())


def test_an_ambiguous_start_is_a_usage_error_naming_the_candidates(server: ForgeServer) -> None:
    """Dev servers are started until two processes of the server share a first hex
    digit (with 17 there must be two: 16 digits): that digit is then ambiguous."""
    amb = make_scenario(
        server, name="amb", setup_exit=3, setup_sleep=0.0, dev_server=False, write_files=False
    )
    seen: list[str] = []
    try:
        while True:
            ids = [r["processId"] for r in server_records(server)]
            firsts = [i[0] for i in ids]
            shared = next((c for c in firsts if firsts.count(c) > 1), None)
            if shared is not None:
                break
            server.start_dev_server(amb.attempt_id)
            seen.append(
                server.wait_for_process(amb.attempt_id, "devserver", {"running"}, exclude_ids=seen)[
                    "id"
                ]
            )
        candidates = sorted(i for i in ids if i.startswith(shared))
        for args in (["logs", shared], ["monitor", "--process", shared], ["logs", shared, "-f"]):
            done = run(server, *args)
            assert done.returncode == ExitCode.USAGE, (args, done.stderr)
            (line,) = done.stderr.splitlines()
            assert line.startswith(f"forgectl: error: process id {shared} is ambiguous: ")
            assert all(c in line for c in candidates[:6]), line
            assert done.stdout == ""

        async def library() -> None:
            async with ForgeClient(server.url) as forge:
                with pytest.raises(AmbiguousId) as caught:
                    await forge.processes.resolve(shared)
                assert [c for c, _ in caught.value.candidates] == candidates

        import asyncio

        asyncio.run(library())
    finally:
        for record in server.list_processes(amb.attempt_id):
            if record["status"] not in TERMINAL_STATUSES:
                server.stop_process(record["id"])
