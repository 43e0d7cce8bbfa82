"""``forgectl logs --attempt``: every process of an attempt in one stream, on the REAL binary.

An attempt of a setup script, a scripted coding agent (tests/agents) and a dev
server; what forgectl prints for each process is compared with that process's
final state as a fresh plain client reads it (``forge_bed.final_entries`` and
``final_raw``). With ``-f``, the command is started before the coding agent and
the cleanup script exist (the agent waits at its gate), must pick them up as the
server starts them, and must end by itself once the attempt is idle.

    unshare -rn sh -c 'ip link set lo up && exec .venv/bin/python -m pytest -q tests/test_attempt_logs.py'
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import support
from agents import AgentBed, claude
from forge_bed import Cli, compare_entries, final_entries, final_raw, reduce_forgectl, wait_for
from forge_server import TERMINAL_STATUSES, ForgeServer
from ptyrun import PtyRun
from support import EXE

from forgectl.attempt_logs import CHAIN_WAIT
from forgectl.ids import short_ids

pytestmark = [pytest.mark.forge, pytest.mark.timeout(150)]

SETUP = "echo setup-start; echo setup-warning >&2; for i in 1 2 3; do echo setup line $i; done"
DEV = "echo dev-up; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"
CLEANUP = "echo cleanup-ran; echo cleanup-err >&2"


def session(text: str) -> claude.Session:
    return claude.Session(
        turns=[
            claude.Turn([claude.Thinking("Look first."), claude.Text(text)]),
            claude.Turn(
                [claude.Tool("Bash", {"command": "pytest -q"}, result="2 passed", runs_for=0.05)]
            ),
            claude.Turn([claude.Text("All done.")]),
        ]
    )


@pytest.fixture(scope="module")
def server(agent_server: ForgeServer) -> ForgeServer:
    """The real server, its coding agents played by ``bed`` (tests/conftest.py)."""
    return agent_server


@dataclass
class Attempt:
    attempt_id: str
    processes: list[dict[str, Any]]  # oldest first


def make_attempt(
    server: ForgeServer,
    bed: AgentBed,
    name: str,
    script: dict[str, Any],
    *,
    cleanup: str | None = None,
) -> tuple[str, str]:
    """A project (setup script, dev script, optional cleanup script) and a task
    whose agent plays ``script``; returns (attempt id, marker)."""
    marker = bed.add(script, name)
    project = server.create_project(
        name, server.make_repo(name), setup_script=SETUP, dev_script=DEV, cleanup_script=cleanup
    )
    task = server.create_task(project["id"], name, f"Scripted session {marker}")
    return server.create_attempt(task["id"])["id"], marker


@pytest.fixture(scope="module")
def finished(server: ForgeServer, bed: AgentBed) -> Attempt:
    """Setup script, coding agent (completed), then a dev server, killed: all ended."""
    attempt_id, _ = make_attempt(server, bed, "whole", claude.script(session("Hello there.")))
    agent = server.wait_for_process(attempt_id, "codingagent", TERMINAL_STATUSES, 60)
    assert agent["status"] == "completed", bed.failures()
    server.start_dev_server(attempt_id)
    dev = server.wait_for_process(attempt_id, "devserver", {"running"}, 20)
    wait_for(lambda: final_raw_running(server, dev["id"]).count("tick") >= 3, 20, "three dev ticks")
    server.stop_process(dev["id"])
    server.wait_for_process(attempt_id, "devserver", {"killed"}, 20)
    records = sorted(server.list_processes(attempt_id), key=lambda r: r["created_at"])
    assert [r["run_reason"] for r in records] == ["setupscript", "codingagent", "devserver"]
    return Attempt(attempt_id, records)


def final_raw_running(server: ForgeServer, process_id: str) -> str:
    """What a running dev server has printed so far (a forgectl read of it)."""
    done = run(server, "logs", process_id, "--raw")
    return done.stdout


def run(server: ForgeServer, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return support.run(server, *args, timeout=timeout)


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def blocks(lines: list[dict[str, Any]]) -> list[str]:
    """The process ids in the order their lines come, each run of lines once."""
    out: list[str] = []
    for line in lines:
        if not out or out[-1] != line["processId"]:
            out.append(line["processId"])
    return out


def check_process(server: ForgeServer, record: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    """forgectl's normalized lines of one process against its final state."""
    pid = record["id"]
    mine = [line for line in lines if line["processId"] == pid]
    assert mine, f"nothing of {record['run_reason']} {pid}"
    if record["run_reason"] == "codingagent":
        plain = [{k: v for k, v in line.items() if k != "processId"} for line in mine]
        problems = compare_entries(final_entries(server, pid, reads=2), reduce_forgectl(plain))
        assert problems == [], "\n".join(problems)
        return
    final = final_raw(server, pid)
    for stream in ("stdout", "stderr"):
        got = "".join(line["message"] + "\n" for line in mine if line["source"] == stream)
        assert got == final[stream], (record["run_reason"], stream)


def test_every_process_of_an_attempt_in_order_as_the_server_has_it(
    server: ForgeServer, finished: Attempt
) -> None:
    done = run(server, "logs", "--attempt", finished.attempt_id, "--json")
    assert done.returncode == 0, done.stderr
    lines = jsonl(done.stdout)
    assert blocks(lines) == [r["id"] for r in finished.processes]  # each whole, oldest first
    for record in finished.processes:
        check_process(server, record, lines)


def test_raw_output_of_every_process_byte_for_byte(server: ForgeServer, finished: Attempt) -> None:
    as_json = run(server, "logs", "--attempt", finished.attempt_id[:8], "--raw", "--json")
    assert as_json.returncode == 0, as_json.stderr
    chunks = jsonl(as_json.stdout)
    assert blocks(chunks) == [r["id"] for r in finished.processes]
    for record in finished.processes:
        final = final_raw(server, record["id"])
        for stream in ("stdout", "stderr"):
            got = "".join(
                c["content"]
                for c in chunks
                if c["processId"] == record["id"] and c["stream"] == stream
            )
            assert got == final[stream], (record["run_reason"], stream)
    piped = run(server, "logs", "--attempt", finished.attempt_id, "--raw")
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == "".join(c["content"] for c in chunks)  # no prefix into a pipe


def test_filters_and_tail_apply_to_each_process(server: ForgeServer, finished: Attempt) -> None:
    whole = jsonl(run(server, "logs", "--attempt", finished.attempt_id, "--json").stdout)
    tail = run(server, "logs", "--attempt", finished.attempt_id, "--json", "--tail", "2")
    assert tail.returncode == 0, tail.stderr
    got = jsonl(tail.stdout)
    for record in finished.processes:
        mine = [line for line in whole if line["processId"] == record["id"]]
        if record["run_reason"] != "codingagent":  # an agent's entries come in versions
            assert [line for line in got if line["processId"] == record["id"]] == mine[-2:]
    grep = jsonl(
        run(server, "logs", "--attempt", finished.attempt_id, "-g", "^tick", "--json").stdout
    )
    assert grep and {line["processId"] for line in grep} == {finished.processes[2]["id"]}
    warn = jsonl(
        run(server, "logs", "--attempt", finished.attempt_id, "-l", "warn", "--json").stdout
    )
    assert {
        line["message"] for line in warn if line["processId"] == finished.processes[0]["id"]
    } == {"setup-warning"}


def test_on_a_terminal_each_line_names_its_process(server: ForgeServer, finished: Attempt) -> None:
    screen = PtyRun([EXE, "-s", server.url, "logs", "--attempt", finished.attempt_id, "--raw"])
    assert screen.wait(60) == 0, screen.stderr
    short = short_ids(r["id"] for r in finished.processes)
    labels = {"setupscript": "setup", "codingagent": "agent", "devserver": "dev"}
    prefixes = [f"{short[r['id']]} {labels[r['run_reason']]}" for r in finished.processes]
    text = screen.text
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    seen: list[str] = []
    for line in plain.splitlines():
        prefix = next((p for p in prefixes if line.startswith(p)), None)
        assert prefix is not None, f"a line without its process: {line!r}"
        if not seen or seen[-1] != prefix:
            seen.append(prefix)
    assert seen == prefixes
    assert "\x1b[36m" in text  # a colour per process (the first one's)
    assert f"{prefixes[0]}   setup line 3" in plain


def gated(text: str) -> dict[str, Any]:
    """A session that waits at a gate named ``finish`` before its last turn."""
    script = claude.script(session(text))
    steps = script["steps"]
    cut = len(steps) // 2
    steps.insert(cut, [steps[cut][0], "gate", "finish"])
    return script


def test_follow_picks_up_processes_that_start_later_and_ends_when_idle(
    server: ForgeServer, bed: AgentBed
) -> None:
    """Started with the attempt: the setup script runs, then the coding agent (held at
    its gate: the command is following by then), then, because the agent changed a
    file, the cleanup script. The command follows each and ends by itself."""
    attempt_id, marker = make_attempt(server, bed, "chain", gated("Working."), cleanup=CLEANUP)
    cli = Cli(server.url, "logs", "--attempt", attempt_id, "-f", "--json")
    try:
        agent = server.wait_for_process(attempt_id, "codingagent", {"running"}, 30)
        wait_for(
            lambda: any(line.get("processId") == agent["id"] for line in cli.json_lines()),
            30,
            "the coding agent's first lines, picked up after the command started",
        )
        assert cli.proc.poll() is None, cli.describe()  # the agent runs: not idle
        (server.attempt_worktree(attempt_id) / "made-by-agent.txt").write_text("change\n")
        bed.open(marker, "finish")
        assert cli.wait(60) == 0, cli.describe()
        records = sorted(server.list_processes(attempt_id), key=lambda r: r["created_at"])
        assert [r["run_reason"] for r in records] == ["setupscript", "codingagent", "cleanupscript"]
        assert all(r["status"] == "completed" for r in records), records
        lines = cli.json_lines()
        assert blocks(lines) == [r["id"] for r in records]
        for record in records:
            check_process(server, record, lines)
        assert "cleanup-ran" in {line["message"] for line in lines}
        gap = _seconds(records[2]["started_at"]) - _seconds(records[1]["completed_at"])
        print(
            f"the cleanup script started {gap:.3f} s after the agent ended (CHAIN_WAIT {CHAIN_WAIT} s)"
        )
    finally:
        cli.kill()


def _seconds(value: str) -> float:
    from forgectl.times import parse_time

    moment = parse_time(value)
    assert moment is not None
    return moment.timestamp()


def test_follow_ends_when_a_next_action_does_not_come(server: ForgeServer, bed: AgentBed) -> None:
    """The agent changed nothing, so the server skips the cleanup script its record
    names as the next action: the command ends after waiting CHAIN_WAIT for it."""
    attempt_id, _ = make_attempt(
        server, bed, "nochain", claude.script(session("Nothing.")), cleanup=CLEANUP
    )
    agent = server.wait_for_process(attempt_id, "codingagent", {"running", *TERMINAL_STATUSES}, 30)
    assert agent["executor_action"]["next_action"] is not None  # a cleanup is named...
    cli = Cli(server.url, "logs", "--attempt", attempt_id, "-f", "--json")
    try:
        assert cli.wait(60) == 0, cli.describe()
        ended = server.wait_for_process(attempt_id, "codingagent", TERMINAL_STATUSES, 5)
        assert ended["status"] == "completed"
        records = server.list_processes(attempt_id)
        assert [r["run_reason"] for r in records] == ["setupscript", "codingagent"]  # ...never run
        assert blocks(cli.json_lines()) == [
            r["id"] for r in sorted(records, key=lambda r: r["created_at"])
        ]
        took = (cli.ended or time.monotonic()) - cli.started
        print(f"logs --attempt -f ended {took:.1f} s after it started (CHAIN_WAIT {CHAIN_WAIT} s)")
    finally:
        cli.kill()


def test_an_unknown_attempt_and_a_missing_id(server: ForgeServer) -> None:
    unknown = run(server, "logs", "--attempt", "00000000-0000-0000-0000-000000000000")
    assert unknown.returncode == 5, unknown.stderr
    assert "attempt 00000000-0000-0000-0000-000000000000 not found" in unknown.stderr
    neither = run(server, "logs")
    assert neither.returncode == 2 and "forgectl ps" in neither.stderr
    both = run(server, "logs", "x", "--attempt", "y")
    assert both.returncode == 2 and "not both" in both.stderr
    status = run(server, "logs", "--attempt", "y", "-f", "--exit-status")
    assert status.returncode == 2 and "--exit-status" in status.stderr


def test_since_is_refused_as_for_one_process(server: ForgeServer, finished: Attempt) -> None:
    """The real server's entries carry no times: --since is the same one-line error
    for an attempt as for one of its processes (tests/test_find_documented.py
    filters by time where the server sends times)."""
    when = finished.processes[2]["started_at"]
    one = run(server, "logs", finished.processes[0]["id"], "--json", "--since", when)
    every = run(server, "logs", "--attempt", finished.attempt_id, "--json", "--since", when)
    assert one.returncode == every.returncode == 2, every.stderr
    error = [line for line in every.stderr.splitlines() if "error:" in line]
    assert error == [line for line in one.stderr.splitlines() if "error:" in line]
    assert "--since needs the server's timestamps" in error[0]
    assert every.stdout == ""


async def test_exactly_once_through_cuts_on_every_connection(
    server: ForgeServer, finished: Attempt
) -> None:
    """Cuts land in the attempt's record stream and in each process's log stream,
    mid-frame: the output equals a read without faults, nothing lost or repeated."""
    from faultproxy import FaultProxy

    from forgectl import ForgeClient
    from forgectl.stream import StreamOptions

    options = StreamOptions(backoff_initial=0.05, retry_for=30.0)

    async def read(url: str, fmt: str, follow: bool) -> list[dict[str, Any]]:
        async with ForgeClient(server=url, options=options) as forge:
            stream = forge.processes.stream_attempt_logs(finished.attempt_id, fmt, follow=follow)
            return [event.to_dict() async for event in stream]

    # following: each connection read twice (stream/verify.py), the records too
    for fmt, follow, seed in (("raw", False, 2), ("normalized", False, 9), ("raw", True, 4)):
        reference = await read(server.url, fmt, False)
        async with FaultProxy(upstream_port=server.port) as proxy:
            proxy.chaos(seed=seed, mean_bytes=900, max_cuts=8, min_bytes=150)
            got = await read(proxy.url, fmt, follow)
            cuts = proxy.chaos_cuts
        print(f"logs --attempt ({fmt}, follow={follow}) through {cuts} cuts: {len(got)} events")
        assert cuts >= 3, "the chaos did not cut: the test proves nothing"
        assert got == reference, (fmt, follow)


def test_follow_waits_for_a_next_action_the_server_starts_late() -> None:
    """A stand-in for the real server (tests/hostile_forge.py) that starts the
    cleanup script its agent's record names 1 s after the agent ended, well after
    the agent's log and record said so (the real binary starts it within
    milliseconds, so it cannot show this): the command waits for it, follows it,
    and ends once it is over."""
    import asyncio

    from hostile_forge import HostileForge, RawWs, process_record

    attempt = "22222222-2222-4222-8222-222222222222"
    agent, cleanup = "11111111-1111-4111-8111-111111111111", "33333333-3333-4333-8333-333333333333"
    logs: dict[str, list[str]] = {agent: ["agent-1\n"], cleanup: []}
    ended: set[str] = set()
    gate = threading.Event()

    def now() -> str:
        return datetime.now(UTC).isoformat().replace("+00:00", "Z")

    with HostileForge() as srv:
        srv.attempts[attempt] = {"id": attempt, "task_id": attempt, "container_ref": None}
        srv.processes[agent] = process_record(agent, attempt)
        srv.processes[agent]["executor_action"]["next_action"] = {"typ": {"type": "ScriptRequest"}}

        async def script() -> None:  # the server's side of the attempt
            await asyncio.to_thread(gate.wait, 30)
            srv.processes[agent] |= {"status": "completed", "exit_code": 0, "completed_at": now()}
            srv.processes[agent]["updated_at"] = now()
            ended.add(agent)
            await asyncio.sleep(1.0)  # the late start this test is about
            srv.processes[cleanup] = process_record(cleanup, attempt, "cleanupscript")
            srv.processes[cleanup] |= {
                "started_at": now(),
                "created_at": now(),
                "updated_at": now(),
            }
            logs[cleanup].append("cleanup-ran\n")
            await asyncio.sleep(0.3)
            srv.processes[cleanup] |= {"status": "completed", "exit_code": 0, "completed_at": now()}
            srv.processes[cleanup]["updated_at"] = now()
            ended.add(cleanup)

        async def records(ws: RawWs, _: re.Match[str]) -> None:
            sent: dict[str, dict[str, Any]] = {}
            ours = {k: dict(v) for k, v in srv.processes.items()}
            patch = [{"op": "replace", "path": "/execution_processes", "value": ours}]
            await ws.send_text(json.dumps({"JsonPatch": patch}))
            sent.update(ours)
            while not ws.closed.is_set():
                for pid, record in list(srv.processes.items()):
                    if sent.get(pid) != record:
                        sent[pid] = dict(record)
                        patch = [
                            {"op": "add", "path": f"/execution_processes/{pid}", "value": record}
                        ]
                        await ws.send_text(json.dumps({"JsonPatch": patch}))
                await asyncio.sleep(0.02)

        async def raw(ws: RawWs, match: re.Match[str]) -> None:
            pid, n = match.group(1), 0
            while not ws.closed.is_set():
                for text in logs[pid][n:]:
                    value = {"type": "STDOUT", "content": text}
                    patch = [{"op": "add", "path": f"/entries/{n}", "value": value}]
                    await ws.send_text(json.dumps({"JsonPatch": patch}))
                    n += 1
                if pid in ended and n == len(logs[pid]):
                    await ws.send_text('{"finished":true}')
                    await ws.hold(5)
                    return
                await asyncio.sleep(0.02)

        srv.route(r"/api/execution-processes/stream/ws", records)
        srv.route(r"/api/execution-processes/([0-9a-f-]+)/raw-logs/ws", raw)
        assert srv._loop is not None
        asyncio.run_coroutine_threadsafe(script(), srv._loop)
        cli = Cli(srv.url, "--api", "forge", "logs", "--attempt", attempt, "-f", "--raw", "--json")
        try:
            wait_for(lambda: cli.json_lines(), 20, "the agent's first line")
            gate.set()
            assert cli.wait(30) == 0, cli.describe() + "\n" + "\n".join(srv.requests()[-20:])
            got = [(line["processId"], line["content"]) for line in cli.json_lines()]
            assert got == [(agent, "agent-1\n"), (cleanup, "cleanup-ran\n")], cli.describe()
        finally:
            cli.kill()
