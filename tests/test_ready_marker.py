"""Where a server marks the end of its history (``{"Ready": true}`` on a WebSocket,
an empty ``ready`` event on the event stream, as newer upstream servers send it),
forgectl takes the marker, not a timing rule, for that end (issue 12.3).

Each case is one the timing rules get wrong, so each fails without the marker's
support: live output at the history's pace right after it (a late cut would
print it as history), live output back to back with the history (no pause
shows the end: the tail is cut in the wrong place), an event replay that starts late (the early rule would report its
ended processes as new), a diff that never goes quiet (the quiet rule would
never print the first update). The stand-in server is tests/hostile_forge.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from forge_bed import Cli, wait_for
from hostile_forge import HostileForge, RawWs, normalized, patch_add, process_record

pytestmark = pytest.mark.timeout(60)

PROC = "33333333-3333-4333-8333-333333333333"
ATTEMPT = "44444444-4444-4444-8444-444444444444"
READY = json.dumps({"Ready": True})
FINISHED = json.dumps({"finished": True})
#: A command that should return at once has this long (a loaded machine's start-up).
PROMPTLY = 10.0


@pytest.fixture
def hostile() -> Iterator[HostileForge]:
    with HostileForge() as srv:
        srv.processes[PROC] = process_record(PROC, ATTEMPT)
        srv.attempts[ATTEMPT] = {"id": ATTEMPT, "task_id": ATTEMPT, "container_ref": None}
        yield srv


def context(srv: HostileForge, cli: Cli) -> str:
    return cli.describe() + "\nrequests:\n" + "\n".join(srv.requests()[-20:])


def entry(index: int) -> str:
    return patch_add(index, normalized(f"entry {index}"))


def messages(cli: Cli) -> list[str]:
    return [e["message"] for e in cli.json_lines()]


def test_logs_without_follow_ends_at_the_marker_with_live_output_right_behind_it(
    hostile: HostileForge,
) -> None:
    """Five entries, the marker, then live entries at the history's own pace for as
    long as the client stays: exactly the five are printed."""

    async def logs(ws: RawWs, _: re.Match[str]) -> None:
        for i in range(5):
            await ws.send_text(entry(i))
        await ws.send_text(READY)
        i = 5
        while not ws.closed.is_set() and i < 5000:
            await ws.send_text(entry(i))
            i += 1
            await asyncio.sleep(0.001)
        await ws.hold()

    hostile.route(rf"/api/execution-processes/{PROC}/normalized-logs/ws", logs)
    cli = Cli(hostile.url, "--api", "forge", "logs", PROC, "--json")
    try:
        assert cli.wait(PROMPTLY) == 0, context(hostile, cli)
        # The newest entry is held while it may still change; the marker settles it.
        assert messages(cli) == [f"entry {i}" for i in range(5)], context(hostile, cli)
    finally:
        cli.kill()


def test_follow_tail_keeps_the_last_of_the_history_and_every_live_line_at_full_speed(
    hostile: HostileForge,
) -> None:
    """Ten entries of history, the marker, then 300 live ones, every frame back to
    back (a busy agent): no pause shows where the history ends, only the marker.
    --tail 2 prints entries 8 and 9, then 10 to 309."""

    async def logs(ws: RawWs, _: re.Match[str]) -> None:
        frames = [entry(i) for i in range(10)] + [READY] + [entry(i) for i in range(10, 310)]
        for text in frames:
            await ws.send_text(text)
        await ws.send_text(FINISHED)
        await ws.hold(5)

    hostile.route(rf"/api/execution-processes/{PROC}/normalized-logs/ws", logs)
    cli = Cli(hostile.url, "--api", "forge", "logs", PROC, "-f", "--tail", "2", "--json")
    try:
        assert cli.wait(PROMPTLY) == 0, context(hostile, cli)
        assert messages(cli) == [f"entry {i}" for i in range(8, 310)], context(hostile, cli)
    finally:
        cli.kill()


def test_raw_follow_tail_ends_the_history_at_the_marker(hostile: HostileForge) -> None:
    """The raw stream: the same, chunk by chunk."""

    def chunk(i: int) -> str:
        value = {"type": "STDOUT", "content": f"line {i}\n"}
        return json.dumps({"JsonPatch": [{"op": "add", "path": f"/entries/{i}", "value": value}]})

    async def raw(ws: RawWs, _: re.Match[str]) -> None:
        frames = [chunk(i) for i in range(10)] + [READY] + [chunk(i) for i in range(10, 310)]
        for text in frames:
            await ws.send_text(text)
        await ws.send_text(FINISHED)
        await ws.hold(5)

    hostile.route(rf"/api/execution-processes/{PROC}/raw-logs/ws", raw)
    cli = Cli(hostile.url, "--api", "forge", "logs", PROC, "--raw", "-f", "--tail", "3")
    try:
        assert cli.wait(PROMPTLY) == 0, context(hostile, cli)
        want = "".join(f"line {i}\n" for i in range(7, 310))
        assert cli.stdout == want, context(hostile, cli)
    finally:
        cli.kill()


def sse(ops: list[dict[str, Any]]) -> bytes:
    return f"event: json_patch\ndata: {json.dumps(ops)}\n\n".encode()


def process_op(pid: str, status: str, updated: str) -> dict[str, Any]:
    record = process_record(pid, ATTEMPT, run_reason="setupscript", status=status)
    record["updated_at"] = updated
    if status != "running":
        record["exit_code"] = 1 if status == "failed" else 0
        record["completed_at"] = updated
    return {"op": "add", "path": f"/execution_processes/{pid}", "value": record}


def test_monitor_takes_a_late_replay_for_history_when_the_stream_marks_its_end(
    hostile: HostileForge,
) -> None:
    """The event stream's replay (a process that ended long ago) starts 150 ms after
    the request, then ``ready``, then a new process runs and fails: only the new one
    is reported."""
    old, new = "55555555-5555-4555-8555-555555555555", "66666666-6666-4666-8666-666666666666"

    async def events(writer: asyncio.StreamWriter, _: re.Match[str]) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n")
        await asyncio.sleep(0.15)
        writer.write(sse([process_op(old, "running", "2026-12-01T09:00:00.000Z")]))
        writer.write(sse([process_op(old, "completed", "2026-12-01T09:00:01.000Z")]))
        writer.write(b"event: ready\ndata: \n\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(sse([process_op(new, "running", "2026-12-01T10:00:00.000Z")]))
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(sse([process_op(new, "failed", "2026-12-01T10:00:00.500Z")]))
        await writer.drain()
        await asyncio.sleep(30)

    hostile.rest(r"/api/events", events)
    cli = Cli(hostile.url, "--api", "forge", "monitor", "--json")
    try:
        wait_for(
            lambda: (
                any(e["type"] == "process_failed" for e in cli.json_lines())
                or cli.proc.poll() is not None
            ),
            PROMPTLY,
            "the new process's failure",
        )
        cli.signal()
        assert cli.wait(PROMPTLY) == -signal.SIGINT, context(hostile, cli)
        got = [(e["type"], e["processId"]) for e in cli.json_lines()]
        assert got == [("process_started", new), ("process_failed", new)], context(hostile, cli)
    finally:
        cli.kill()


def diff_add(path: str) -> str:
    content = {
        "change": "added",
        "oldPath": None,
        "newPath": path,
        "oldContent": None,
        "newContent": "new\n",
        "contentOmitted": False,
        "additions": 1,
        "deletions": 0,
    }
    value = {"type": "DIFF", "content": content}
    return json.dumps({"JsonPatch": [{"op": "add", "path": f"/entries/{path}", "value": value}]})


def test_diff_prints_the_snapshot_at_the_marker_though_the_stream_never_goes_quiet(
    hostile: HostileForge,
) -> None:
    """Two files, the marker, then a file changing every 50 ms: without --follow, the
    update of the two files, at once."""

    async def diff(ws: RawWs, _: re.Match[str]) -> None:
        await ws.send_text(diff_add("a.txt"))
        await ws.send_text(diff_add("b.txt"))
        await ws.send_text(READY)
        i = 0
        while not ws.closed.is_set() and i < 2000:
            await ws.send_text(diff_add(f"live{i}.txt"))
            i += 1
            await asyncio.sleep(0.05)

    hostile.route(rf"/api/task-attempts/{ATTEMPT}/diff/ws", diff)
    cli = Cli(hostile.url, "--api", "forge", "diff", ATTEMPT, "--json")
    try:
        assert cli.wait(PROMPTLY) == 0, context(hostile, cli)
        (update,) = cli.json_lines()
        assert update["filesChanged"] == 2, context(hostile, cli)
        assert "a.txt" in update["diff"] and "b.txt" in update["diff"]
        assert "live" not in update["diff"]
    finally:
        cli.kill()
