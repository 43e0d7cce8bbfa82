"""Tests of the reference server itself, driven by a plain websockets client."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from reference_server import (
    ATTEMPT_ID,
    PROC_FINISHED,
    PROC_LIVE,
    PROC_RAW,
    SPEC_DIFF_UPDATE,
    SPEC_LOG,
    SPEC_LOG_LEVELS,
    SPEC_PROCESS_COMPLETED,
    SPEC_PROCESS_FAILED,
    SPEC_PROCESS_PROGRESS,
    SPEC_PROCESS_STARTED,
    SPEC_PROCESS_STOPPED,
    SPEC_RAW_LINES,
    UNKNOWN_EVENT,
    Attempt,
    Fault,
    Process,
    ReferenceServer,
    ThreadedReferenceServer,
    default_scenario,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect as sync_connect

MONITOR = "/ws/execution-processes"
FINISHED_NORMALIZED = f"/ws/execution-processes/{PROC_FINISHED}/logs/normalized"
FINISHED_RAW = f"/ws/execution-processes/{PROC_FINISHED}/logs/raw"
LIVE_NORMALIZED = f"/ws/execution-processes/{PROC_LIVE}/logs/normalized"
DIFF = f"/ws/task-attempts/{ATTEMPT_ID}/diff"


@pytest_asyncio.fixture
async def srv() -> AsyncIterator[ReferenceServer]:
    async with ReferenceServer(scenario=default_scenario()) as server:
        yield server


def client(url: str, **kwargs: Any) -> connect:
    options: dict[str, Any] = {
        "max_size": None,
        "compression": None,
        "open_timeout": 2,
        "close_timeout": 1,
        "ping_interval": None,
    }
    options.update(kwargs)
    return connect(url, **options)


async def drain(ws: ClientConnection, timeout: float = 2.0) -> list[str | bytes]:
    """Every frame until the server closes (normally or not)."""
    frames: list[str | bytes] = []
    async with asyncio.timeout(timeout):
        try:
            async for frame in ws:
                frames.append(frame)
        except ConnectionClosedError:
            pass
    return frames


async def recv_n(ws: ClientConnection, n: int, timeout: float = 2.0) -> list[str | bytes]:
    async with asyncio.timeout(timeout):
        return [await ws.recv() for _ in range(n)]


async def assert_silent(ws: ClientConnection, wait: float = 0.15) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), wait)


async def handshake_status(url: str) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as info:
        async with client(url):
            pass
    return info.value


# -- routes ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_finished_process_normalized_history_then_1000(
    srv: ReferenceServer,
) -> None:
    async with client(srv.ws(FINISHED_NORMALIZED)) as ws:
        frames = await drain(ws)
        assert ws.close_code == 1000
    logs = [json.loads(f) for f in frames]
    assert [log["level"] for log in logs] == list(SPEC_LOG_LEVELS)
    assert SPEC_LOG in logs
    assert all(set(log) >= {"level", "message", "timestamp", "source"} for log in logs)
    await srv.wait_all_done()
    (rec,) = srv.connections
    assert (rec.route, rec.target_id, rec.items_sent) == (
        "normalized",
        PROC_FINISHED,
        5,
    )
    assert (rec.closed_by, rec.close_code) == ("server", 1000)


@pytest.mark.asyncio
async def test_raw_route_sends_text_frames(srv: ReferenceServer) -> None:
    async with client(srv.ws(FINISHED_RAW)) as ws:
        assert await drain(ws) == list(SPEC_RAW_LINES)
    raw_only = f"/ws/execution-processes/{PROC_RAW}/logs/raw"
    async with client(srv.ws(raw_only)) as ws:
        frames = await drain(ws)
    assert frames[:4] == list(SPEC_RAW_LINES[:4])
    assert frames[4] == "\x1b[32m" + SPEC_RAW_LINES[4] + "\x1b[0m"


@pytest.mark.asyncio
async def test_running_process_streams_live_items_then_closes(
    srv: ReferenceServer,
) -> None:
    srv.processes[PROC_LIVE].live_interval = 0.05
    start = time.monotonic()
    async with client(srv.ws(LIVE_NORMALIZED)) as ws:
        frames = await drain(ws)
        assert ws.close_code == 1000
    assert time.monotonic() - start >= 0.15
    messages = [json.loads(f)["message"] for f in frames]
    assert messages == [
        "Starting coding agent",
        "Step 1 of 3",
        "Step 2 of 3",
        "Step 3 of 3",
    ]


@pytest.mark.asyncio
async def test_hold_open_keeps_running_process_open() -> None:
    proc = Process("p1", logs=[SPEC_LOG], finished=False, live_logs=[SPEC_LOG], hold_open=True)
    async with ReferenceServer() as srv:
        srv.processes["p1"] = proc
        async with client(srv.ws("/ws/execution-processes/p1/logs/normalized")) as ws:
            assert len(await recv_n(ws, 2)) == 2
            await assert_silent(ws)
        await srv.wait_all_done()
        assert srv.connections[0].closed_by == "client"


@pytest.mark.asyncio
async def test_diff_route_first_at_once_then_paced_and_stays_open(
    srv: ReferenceServer,
) -> None:
    srv.attempts[ATTEMPT_ID].live_interval = 0.1
    async with client(srv.ws(DIFF)) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 0.08))
        assert first == SPEC_DIFF_UPDATE
        second = json.loads(await asyncio.wait_for(ws.recv(), 1))
        assert second["type"] == "diff_update" and second["filesChanged"] == 4
        await assert_silent(ws)


@pytest.mark.asyncio
async def test_client_leaving_mid_stream_is_recorded_promptly() -> None:
    async with ReferenceServer() as srv:
        srv.attempts["a"] = Attempt("a", [SPEC_DIFF_UPDATE] * 2, live_interval=60)
        async with client(srv.ws("/ws/task-attempts/a/diff")) as ws:
            await recv_n(ws, 1)
        await srv.wait_all_done(timeout=1)
        rec = srv.connections[0]
        assert (rec.closed_by, rec.close_code, rec.items_sent) == ("client", 1000, 1)


@pytest.mark.asyncio
async def test_attempt_without_hold_open_closes_1000() -> None:
    async with ReferenceServer() as srv:
        srv.attempts["a"] = Attempt("a", [SPEC_DIFF_UPDATE], hold_open=False)
        async with client(srv.ws("/ws/task-attempts/a/diff")) as ws:
            assert len(await drain(ws)) == 1
            assert ws.close_code == 1000


@pytest.mark.asyncio
async def test_monitor_sends_every_event_type_then_stays_open(
    srv: ReferenceServer,
) -> None:
    async with client(srv.ws(MONITOR)) as ws:
        events = [json.loads(f) for f in await recv_n(ws, 6)]
        await assert_silent(ws)
    assert events == [
        SPEC_PROCESS_STARTED,
        SPEC_PROCESS_PROGRESS,
        UNKNOWN_EVENT,
        SPEC_PROCESS_COMPLETED,
        SPEC_PROCESS_FAILED,
        SPEC_PROCESS_STOPPED,
    ]


@pytest.mark.asyncio
async def test_monitor_interval_and_close(srv: ReferenceServer) -> None:
    srv.event_interval = 0.03
    srv.monitor_hold_open = False
    start = time.monotonic()
    async with client(srv.ws(MONITOR)) as ws:
        assert len(await drain(ws)) == 6
        assert ws.close_code == 1000
    assert time.monotonic() - start >= 0.15


@pytest.mark.asyncio
async def test_compression_is_off_by_default(srv: ReferenceServer) -> None:
    async with connect(srv.ws(MONITOR)) as ws:  # the client offers permessage-deflate
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers


@pytest.mark.asyncio
async def test_reconnection_replays_everything_deterministically(
    srv: ReferenceServer,
) -> None:
    runs = []
    for _ in range(2):
        async with client(srv.ws(LIVE_NORMALIZED)) as ws:
            runs.append(await drain(ws))
    assert runs[0] == runs[1] and len(runs[0]) == 4


# -- handshake errors and auth -----------------------------------------------------------


@pytest.mark.asyncio
async def test_unknown_path_and_ids_are_404(srv: ReferenceServer) -> None:
    for path in (
        "/",
        "/ws",
        "/ws/execution-processes/",
        "/ws/execution-processes/nope/logs/normalized",
        "/ws/execution-processes/nope/logs/raw",
        f"/ws/execution-processes/{PROC_FINISHED}/logs/other",
        "/ws/task-attempts/nope/diff",
    ):
        exc = await handshake_status(srv.ws(path))
        assert exc.response.status_code == 404, path
    assert [rec.status for rec in srv.connections] == [404] * 7
    assert all(rec.done and not rec.accepted for rec in srv.connections)


@pytest.mark.asyncio
async def test_token_via_query_or_cookie() -> None:
    async with ReferenceServer("s3cret", scenario=default_scenario()) as srv:
        assert (await handshake_status(srv.ws(MONITOR))).response.status_code == 401
        wrong = srv.ws(MONITOR + "?token=wrong")
        assert (await handshake_status(wrong)).response.status_code == 401
        async with client(srv.ws(MONITOR + "?token=s3cret")) as ws:
            await recv_n(ws, 1)
        cookie = {"Cookie": "theme=dark; token=s3cret"}
        async with client(srv.ws(MONITOR), additional_headers=cookie) as ws:
            await recv_n(ws, 1)
        # auth is checked before the resource lookup
        unknown = srv.ws("/ws/execution-processes/nope/logs/raw")
        assert (await handshake_status(unknown)).response.status_code == 401
    recs = srv.connections
    assert [r.status for r in recs] == [401, 401, 101, 101, 401]
    assert recs[2].query == {"token": "s3cret"} and recs[2].token == "s3cret"
    assert recs[3].cookies == {"theme": "dark", "token": "s3cret"}
    assert recs[3].headers["cookie"] == "theme=dark; token=s3cret"


@pytest.mark.asyncio
async def test_forbidden_token_is_403() -> None:
    async with ReferenceServer("good", forbidden_tokens={"revoked"}) as srv:
        exc = await handshake_status(srv.ws(MONITOR + "?token=revoked"))
        assert exc.response.status_code == 403


# -- heartbeat and recording -------------------------------------------------------------


@pytest.mark.asyncio
async def test_app_ping_pong_and_recording(srv: ReferenceServer) -> None:
    async with client(srv.ws(DIFF)) as ws:
        await recv_n(ws, 2)
        await ws.send('{"type":"ping"}')
        assert json.loads(await asyncio.wait_for(ws.recv(), 1)) == {"type": "pong"}
        await ws.send("hello")
        await ws.send(b"\x00\x01")
        # protocol-level pings are answered by websockets itself
        await asyncio.wait_for(await ws.ping(), 1)
    await srv.wait_all_done()
    rec = srv.connections[0]
    assert rec.messages == ['{"type":"ping"}', "hello", b"\x00\x01"]
    assert rec.pongs_sent == 1 and rec.items_sent == 2


@pytest.mark.asyncio
async def test_app_pings_can_be_ignored(srv: ReferenceServer) -> None:
    srv.answer_pings = False
    async with client(srv.ws(DIFF)) as ws:
        await recv_n(ws, 2)
        await ws.send(json.dumps({"type": "ping"}))
        await assert_silent(ws)
    srv.answer_pings = True
    srv.faults.append(Fault(ignore_pings=True))
    async with client(srv.ws(DIFF)) as ws:
        await recv_n(ws, 2)
        await ws.send(json.dumps({"type": "ping"}))
        await assert_silent(ws)
    await srv.wait_until(lambda: len(srv.connections[1].messages) == 1)


# -- fault hooks -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_drop_after_aborts_without_close_frame(srv: ReferenceServer) -> None:
    srv.faults.append(Fault(drop_after=2))
    async with client(srv.ws(FINISHED_NORMALIZED)) as ws:
        frames = await drain(ws)
        assert len(frames) == 2
        assert ws.close_code == 1006
    await srv.wait_all_done()
    rec = srv.connections[0]
    assert rec.dropped and rec.close_code is None and rec.closed_by is None
    # the fault applied to the first connection only
    async with client(srv.ws(FINISHED_NORMALIZED)) as ws:
        assert len(await drain(ws)) == 5
    assert srv.faults == []


@pytest.mark.asyncio
async def test_close_after_with_code(srv: ReferenceServer) -> None:
    srv.faults.append(Fault(close_after=(1, 1011), close_reason="boom"))
    async with client(srv.ws(FINISHED_RAW)) as ws:
        assert await drain(ws) == [SPEC_RAW_LINES[0]]
        assert (ws.close_code, ws.close_reason) == (1011, "boom")
    await srv.wait_all_done()
    rec = srv.connections[0]
    assert (rec.closed_by, rec.close_code, rec.close_reason) == ("server", 1011, "boom")


@pytest.mark.asyncio
async def test_stall_after_goes_silent_but_keeps_tcp_open(srv: ReferenceServer) -> None:
    srv.faults.append(Fault(stall_after=1))
    async with client(srv.ws(FINISHED_RAW), close_timeout=0.1) as ws:
        assert await recv_n(ws, 1) == [SPEC_RAW_LINES[0]]
        await ws.send('{"type":"ping"}')
        pong_waiter = await ws.ping()
        await assert_silent(ws, 0.2)
        with pytest.raises(TimeoutError):  # not even protocol-level pongs
            await asyncio.wait_for(pong_waiter, 0.05)
    assert srv.connections[0].stalled
    await srv.stop()  # stalled connections don't hold up shutdown
    assert srv.connections[0].done


@pytest.mark.asyncio
async def test_inject_raw_frames_at_positions(srv: ReferenceServer) -> None:
    huge = "x" * (3 * 2**20)
    srv.faults.append(
        Fault(
            inject=[
                (0, "{not json"),
                (1, b"\x00\xffbinary"),
                (1, huge),
                (99, '{"a":1}'),
            ]
        )
    )
    async with client(srv.ws(FINISHED_RAW)) as ws:
        frames = await drain(ws)
    assert frames == [
        "{not json",
        SPEC_RAW_LINES[0],
        b"\x00\xffbinary",
        huge,
        *SPEC_RAW_LINES[1:],
        '{"a":1}',
    ]
    assert srv.connections[0].items_sent == 5


@pytest.mark.asyncio
async def test_accept_then_silent(srv: ReferenceServer) -> None:
    srv.faults.append(Fault(accept_then_silent=True))
    async with client(srv.ws(FINISHED_NORMALIZED)) as ws:
        await ws.send('{"type":"ping"}')
        await asyncio.wait_for(await ws.ping(), 1)  # the TCP peer is alive...
        await assert_silent(ws)  # ...but never says anything
    await srv.wait_all_done()
    assert srv.connections[0].messages == ['{"type":"ping"}']
    assert srv.connections[0].sent == []


@pytest.mark.asyncio
async def test_handshake_status_with_body(srv: ReferenceServer) -> None:
    html = "<!doctype html><title>Forge</title>"
    srv.faults.append(Fault(handshake_status=500, handshake_body="oops"))
    srv.faults.append(
        Fault(
            handshake_status=200,
            handshake_body=html,
            handshake_content_type="text/html",
        )
    )
    exc = await handshake_status(srv.ws(MONITOR))
    assert (exc.response.status_code, exc.response.body) == (500, b"oops")
    exc = await handshake_status(srv.ws("/anything/at/all"))
    assert exc.response.status_code == 200
    assert exc.response.headers["Content-Type"] == "text/html"
    assert exc.response.body == html.encode()
    async with client(srv.ws(MONITOR)) as ws:
        await recv_n(ws, 1)


@pytest.mark.asyncio
async def test_fail_next_handshakes_then_normal(srv: ReferenceServer) -> None:
    srv.fail_next_handshakes = 2
    srv.faults.append(Fault(close_after=(0, 1011)))
    for _ in range(2):
        assert (await handshake_status(srv.ws(MONITOR))).response.status_code == 503
    async with client(srv.ws(MONITOR)) as ws:  # the 503s didn't consume the fault
        assert await drain(ws) == []
        assert ws.close_code == 1011
    assert [rec.status for rec in srv.connections] == [503, 503, 101]


@pytest.mark.asyncio
async def test_fault_times_and_path_filter(srv: ReferenceServer) -> None:
    forever = Fault(close_after=(0, 1011), path=DIFF, times=None)
    twice = Fault(drop_after=0, times=2)
    srv.faults += [forever, twice]
    for _ in range(3):
        async with client(srv.ws(DIFF)) as ws:
            await drain(ws)
            assert ws.close_code == 1011
    for expected in (1006, 1006, 1000):
        async with client(srv.ws(FINISHED_RAW)) as ws:
            await drain(ws)
            assert ws.close_code == expected
    assert srv.faults == [forever] and forever.applied == 3 and twice.applied == 2


@pytest.mark.asyncio
async def test_handshake_delay(srv: ReferenceServer) -> None:
    srv.faults.append(Fault(handshake_delay=1.0))
    with pytest.raises(TimeoutError):
        async with client(srv.ws(MONITOR), open_timeout=0.1):
            pass


# -- lifecycle ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_restart_same_port_keeps_state(srv: ReferenceServer) -> None:
    port = srv.port
    async with client(srv.ws(MONITOR)) as ws:
        await recv_n(ws, 6)
        await srv.restart()
        await drain(ws)
        assert ws.close_code == 1001
    assert srv.port == port
    async with client(srv.ws(MONITOR)) as ws:
        assert len(await recv_n(ws, 6)) == 6
    assert len(srv.connections) == 2


@pytest.mark.asyncio
async def test_stop_abort_and_refused_while_stopped(srv: ReferenceServer) -> None:
    async with client(srv.ws(DIFF)) as ws:
        await recv_n(ws, 1)
        await srv.stop(abort=True)
        await drain(ws)
        assert ws.close_code == 1006
    with pytest.raises(OSError):
        async with client(srv.ws(MONITOR)):
            pass
    await srv.start()
    async with client(srv.ws(MONITOR)) as ws:
        await recv_n(ws, 1)


def test_threaded_wrapper_with_sync_client() -> None:
    with ThreadedReferenceServer("tok", scenario=default_scenario()) as srv:
        assert srv.url == f"http://127.0.0.1:{srv.port}"
        srv.faults.append(Fault(drop_after=1))
        with sync_connect(srv.ws(FINISHED_RAW + "?token=tok"), max_size=None) as ws:
            assert ws.recv(timeout=2) == SPEC_RAW_LINES[0]
        srv.restart()
        with sync_connect(srv.ws(FINISHED_RAW + "?token=tok")) as ws:
            assert [ws.recv(timeout=2) for _ in SPEC_RAW_LINES] == list(SPEC_RAW_LINES)
        srv.wait_all_done()
        assert [rec.status for rec in srv.connections] == [101, 101]
        assert srv.call(lambda: len(srv.server.connections)) == 2


def test_standalone_prints_url() -> None:
    script = Path(__file__).with_name("reference_server.py")
    with subprocess.Popen(
        [sys.executable, str(script), "--port", "0", "--token", "t"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            ws_url = url.replace("http://", "ws://") + MONITOR + "?token=t"
            with sync_connect(ws_url) as ws:
                assert json.loads(ws.recv(timeout=2)) == SPEC_PROCESS_STARTED
        finally:
            proc.terminate()
            assert proc.wait(5) == 0
