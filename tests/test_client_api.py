"""The Python API (the spec's "Python SDK" section) against the reference server."""

from __future__ import annotations

import asyncio
import contextlib
import json

import orjson
import pytest
import support
from reference_server import (
    ATTEMPT_ID,
    PROC_FINISHED,
    PROC_LIVE,
    PROC_RAW,
    SPEC_DIFF_UPDATE,
    SPEC_LOG,
    SPEC_PROCESS_STARTED,
    SPEC_RAW_LINES,
    ReferenceServer,
    ThreadedReferenceServer,
    default_scenario,
)

from forgectl import ExitCode, ForgeClient, ForgeError
from forgectl.events import DiffUpdate, LogEntry, ProcessEvent, RawChunk

pytestmark = pytest.mark.timeout(30)

TOKEN = "tok-api-93c1-distinctive"


async def collect_logs(url: str) -> list[LogEntry]:
    async with ForgeClient(server=url, token=TOKEN) as forge:
        return [log async for log in forge.processes.stream_logs(PROC_FINISHED)]


def test_stream_logs_normalized_matches_the_cli_json() -> None:
    with ThreadedReferenceServer(token=TOKEN, scenario=default_scenario()) as srv:
        logs = asyncio.run(collect_logs(srv.url))
        result = support.invoke(srv, "--token", TOKEN, "logs", PROC_FINISHED, "--json")
    assert all(isinstance(log, LogEntry) for log in logs)
    assert [log.to_dict() for log in logs] == srv.processes[PROC_FINISHED].logs
    info = logs[1]
    assert (info.level, info.message, info.source) == ("info", SPEC_LOG["message"], "executor")
    assert info.metadata == {"stage": "setup", "progress": 15}
    assert f"[{info.level}] {info.message}" == "[info] Installing dependencies"
    # What the CLI prints is to_dict() as JSON, line for line.
    assert result.exit_code == 0
    assert result.stdout_bytes == b"".join(
        orjson.dumps(log.to_dict(), option=orjson.OPT_APPEND_NEWLINE) for log in logs
    )


async def test_stream_logs_follow_by_default_until_the_process_ends() -> None:
    async with (
        ReferenceServer(scenario=default_scenario()) as srv,
        ForgeClient(server=srv.url) as forge,
    ):
        messages = [log.message async for log in forge.processes.stream_logs(PROC_LIVE)]
    proc = srv.processes[PROC_LIVE]
    assert messages == [entry["message"] for entry in [*proc.logs, *proc.live_logs]]


async def test_stream_logs_raw_yields_text() -> None:
    async with (
        ReferenceServer(scenario=default_scenario()) as srv,
        ForgeClient(server=srv.url) as forge,
    ):
        chunks = [c async for c in forge.processes.stream_logs(PROC_RAW, format="raw")]
    assert all(isinstance(chunk, RawChunk) for chunk in chunks)
    proc = srv.processes[PROC_RAW]
    text = "".join(line + "\n" for line in [*proc.raw, *proc.live_raw])
    assert "".join(map(str, chunks)) == text
    assert b"".join(chunk.raw for chunk in chunks) == text.encode()
    assert chunks[0].text == SPEC_RAW_LINES[0] + "\n"


async def test_stream_logs_rejects_an_unknown_format() -> None:
    forge = ForgeClient(server="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="format"):
        async for _ in forge.processes.stream_logs(PROC_FINISHED, format="xml"):  # type: ignore[call-overload]
            pass


async def test_monitor_events() -> None:
    async with ReferenceServer(scenario=default_scenario()) as srv:
        async with ForgeClient(server=srv.url) as forge:
            events: list[ProcessEvent] = []
            async for event in forge.processes.monitor():
                events.append(event)
                if len(events) == len(srv.events):
                    break
        await srv.wait_all_done()
        (rec,) = srv.connections
        assert (rec.closed_by, rec.close_code) == ("client", 1000)
    assert [e.to_dict() for e in events] == srv.events
    first = events[0]
    assert (first.type, first.process_id, first.task_attempt_id) == (
        "process_started",
        "proc_abc123",
        SPEC_PROCESS_STARTED["taskAttemptId"],
    )
    assert events[3].type == "process_completed" and events[3].exit_code == 0
    assert events[3].is_terminal and not first.is_terminal
    assert events[2].type == "process_paused"  # unknown types pass through


async def test_monitor_filters_by_attempt() -> None:
    async with (
        ReferenceServer(scenario=default_scenario()) as srv,
        ForgeClient(server=srv.url) as forge,
    ):
        other = {**SPEC_PROCESS_STARTED, "processId": "p2", "taskAttemptId": "other"}
        # Later events name only the process: they are the other attempt's too.
        other_done = {"type": "process_completed", "processId": "p2", "exitCode": 0}
        srv.events[1:1] = [other, other_done]
        got: list[ProcessEvent] = []
        async for event in forge.processes.monitor("attempt_xyz789"):
            got.append(event)
            if event.type == "process_stopped":
                break
    assert "p2" not in [e.process_id for e in got]
    assert got[0].to_dict() == SPEC_PROCESS_STARTED


async def test_stream_diff() -> None:
    async with (
        ReferenceServer(scenario=default_scenario()) as srv,
        ForgeClient(server=srv.url) as forge,
    ):
        current = [d async for d in forge.attempts.stream_diff(ATTEMPT_ID, follow=False)]
        updates: list[DiffUpdate] = []
        async for update in forge.attempts.stream_diff(ATTEMPT_ID):
            updates.append(update)
            if len(updates) == 2:
                break
    assert [d.to_dict() for d in current] == [SPEC_DIFF_UPDATE]
    assert [u.to_dict() for u in updates] == srv.attempts[ATTEMPT_ID].diffs
    first = updates[0]
    assert (first.files_changed, first.insertions, first.deletions) == (3, 125, 8)
    assert first.attempt_id == ATTEMPT_ID
    assert first.diff.startswith("diff --git a/src/auth.ts")


async def test_closing_one_stream_early_closes_its_socket_normally() -> None:
    async with (
        ReferenceServer(scenario=default_scenario()) as srv,
        ForgeClient(server=srv.url) as forge,
    ):
        stream = forge.attempts.stream_diff(ATTEMPT_ID)
        async with contextlib.aclosing(stream):
            assert (await anext(stream)).to_dict() == SPEC_DIFF_UPDATE
        await srv.wait_all_done()
        (rec,) = srv.accepted
        assert (rec.closed_by, rec.close_code) == ("client", 1000)
        # The client goes on serving other streams.
        again = [d async for d in forge.attempts.stream_diff(ATTEMPT_ID, follow=False)]
        assert [d.to_dict() for d in again] == [SPEC_DIFF_UPDATE]


async def test_context_manager_closes_the_socket_normally() -> None:
    async with ReferenceServer(scenario=default_scenario()) as srv:
        async with ForgeClient(server=srv.url) as forge:
            stream = forge.attempts.stream_diff(ATTEMPT_ID)
            first = await anext(stream)  # the attempt stays open: the stream is live
            assert first.to_dict() == SPEC_DIFF_UPDATE
            (rec,) = srv.accepted
            assert not rec.done
        # Leaving the block closed it with 1000, without waiting for the iterator.
        await srv.wait_all_done()
        assert (rec.closed_by, rec.close_code) == ("client", 1000)
        await stream.aclose()


@pytest.mark.parametrize(
    ("case", "code"),
    [("unknown", ExitCode.NOT_FOUND), ("bad token", ExitCode.AUTH)],
)
async def test_errors_carry_the_cli_exit_codes(case: str, code: ExitCode) -> None:
    async with ReferenceServer(token=TOKEN, scenario=default_scenario()) as srv:
        token = TOKEN if case == "unknown" else "tok-bad-61f0"
        target = "proc_nope" if case == "unknown" else PROC_FINISHED
        async with ForgeClient(server=srv.url, token=token, api="documented") as forge:
            with pytest.raises(ForgeError) as info:
                async for _ in forge.processes.stream_logs(target):
                    pass
    assert info.value.exit_code == code
    assert token not in str(info.value)


async def test_refused_is_a_connect_error() -> None:
    async with ReferenceServer() as srv:
        url = srv.url
    async with ForgeClient(server=url) as forge:
        with pytest.raises(ForgeError) as info:
            async for _ in forge.processes.stream_logs(PROC_FINISHED):
                pass
    assert info.value.exit_code == ExitCode.CONNECT
    assert "connection refused" in str(info.value)


def test_events_are_the_server_objects_unchanged() -> None:
    entry = LogEntry(json.loads(json.dumps(SPEC_LOG)))
    assert entry.to_dict() == SPEC_LOG
    assert entry.get("timestamp") == "2024-01-15T10:30:15Z"
