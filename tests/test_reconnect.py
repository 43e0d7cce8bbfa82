"""Reliability: reconnects with backoff, what is never retried, heartbeats, dead
peers, and exactly-once output under cuts, stalls, delays and a server restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import support
from click.testing import Result
from faultproxy import FaultProxy, ThreadedFaultProxy
from reference_server import (
    PROC_FINISHED,
    Fault,
    Process,
    ReferenceServer,
    Scenario,
    ThreadedReferenceServer,
    default_scenario,
)

from forgectl import ForgeClient
from forgectl.diagnostics import Diagnostics
from forgectl.stream import StreamOptions

pytestmark = pytest.mark.timeout(60)

PROC_HOLD = "proc_hold"
HOLD_PATH = f"/ws/execution-processes/{PROC_HOLD}/logs/normalized"
FINISHED_PATH = f"/ws/execution-processes/{PROC_FINISHED}/logs/normalized"
HTML = "<!doctype html><html><body>web app</body></html>"


def hold_scenario() -> Scenario:
    scenario = default_scenario()
    scenario.processes[PROC_HOLD] = Process(
        id=PROC_HOLD,
        logs=[{"level": "info", "message": f"history {i}"} for i in range(3)],
        finished=False,
        hold_open=True,
    )
    return scenario


@pytest.fixture
def srv() -> Iterator[ThreadedReferenceServer]:
    with ThreadedReferenceServer(scenario=hold_scenario()) as server:
        yield server


def invoke(url: str, *args: str) -> Result:
    return support.invoke(url, *args, api="documented")


def json_lines(stdout: str) -> list[Any]:
    return [json.loads(line) for line in stdout.splitlines()]


def notes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "reconnecting in" in line]


# -- reconnecting after a loss, with backoff lines ----------------------------------


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault(path=FINISHED_PATH, drop_after=2), "connection closed without a close frame"),
        (
            Fault(path=FINISHED_PATH, close_after=(2, 1011), close_reason="internal error"),
            "server closed the connection with code 1011 (internal error)",
        ),
    ],
    ids=["drop", "close 1011"],
)
def test_reconnects_after_a_loss(srv: ThreadedReferenceServer, fault: Fault, reason: str) -> None:
    srv.faults.append(fault)
    result = invoke(srv.url, "logs", PROC_FINISHED, "--follow")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout) == srv.processes[PROC_FINISHED].logs
    (note,) = notes(result.stderr)
    assert note.startswith(f"forgectl: connection lost: {reason}; reconnecting in ")
    assert note.endswith(" s (attempt 1)")
    delay = float(note.split("reconnecting in ")[1].split(" s")[0])
    assert 0.8 <= delay <= 1.0  # the spec's first delay, 1 s with jitter
    assert len(srv.accepted) == 2


def test_5xx_on_the_re_handshake_backs_off(srv: ThreadedReferenceServer) -> None:
    srv.faults.append(Fault(path=FINISHED_PATH, drop_after=2))
    srv.faults.append(Fault(path=FINISHED_PATH, handshake_status=503, handshake_body="busy"))
    result = invoke(srv.url, "logs", PROC_FINISHED, "--follow")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout) == srv.processes[PROC_FINISHED].logs
    lines = notes(result.stderr)
    assert len(lines) == 2
    assert lines[0].startswith("forgectl: connection lost: ")
    assert "(attempt 1)" in lines[0]
    assert "server error HTTP 503" in lines[1]
    assert "(attempt 2)" in lines[1]
    first, second = (float(x.split("reconnecting in ")[1].split(" s")[0]) for x in lines)
    assert 1.6 <= second <= 2.0 and second > first  # doubling
    assert [rec.status for rec in srv.connections] == [101, 503, 101]


def test_stale_peer_is_detected_and_reconnected(srv: ThreadedReferenceServer) -> None:
    # The server stops sending and reading, the TCP connection stays up.
    srv.processes[PROC_HOLD].hold_open = False  # the second connection ends it
    srv.faults.append(Fault(path=HOLD_PATH, stall_after=2))
    result = invoke(srv.url, "logs", PROC_HOLD, "--follow", "--stale-timeout", "0.5")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout) == srv.processes[PROC_HOLD].logs
    (note,) = notes(result.stderr)
    assert "connection lost: nothing heard for 0.5 s (dead peer); reconnecting in" in note


@pytest.mark.parametrize("transport", ["sansio", "websockets"])
async def test_a_silent_server_that_answers_pings_is_not_taken_for_dead(
    transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accepts, never sends a frame, but its WebSocket answers pings: alive,
    however long the silence (issue 12: answered pings are not a dead peer). Both
    clients: websockets' carries every stream that goes through a proxy."""
    monkeypatch.setenv("FORGECTL_TRANSPORT", transport)
    scenario = hold_scenario()
    async with ReferenceServer(scenario=scenario) as server:
        server.faults.append(Fault(path=HOLD_PATH, accept_then_silent=True, times=None))
        notes_seen: list[str] = []
        options = StreamOptions(stale_timeout=1.0, ping_interval=60, backoff_initial=0.01)
        async with ForgeClient(
            server=server.url,
            api="documented",
            options=options,
            diagnostics=Diagnostics(lambda level, line: notes_seen.append(line)),
        ) as forge:

            async def consume() -> None:
                async for _ in forge.processes.stream_logs(PROC_HOLD):
                    pass

            task = asyncio.create_task(consume())
            await server.wait_for_connections(1)
            # Three stale timeouts of silence: pinged, answered, kept.
            await asyncio.sleep(3.0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert len(server.accepted) == 1
        assert notes_seen == []


def test_no_reconnect_exits_3(srv: ThreadedReferenceServer) -> None:
    srv.faults.append(Fault(path=FINISHED_PATH, drop_after=2))
    result = invoke(srv.url, "logs", PROC_FINISHED, "--follow", "--no-reconnect")
    assert result.exit_code == 3
    assert json_lines(result.stdout) == srv.processes[PROC_FINISHED].logs[:2]
    assert "forgectl: error: connection lost: connection closed without a close frame" in (
        result.stderr
    )
    assert notes(result.stderr) == []
    assert len(srv.connections) == 1


def test_retry_for_bounds_reconnecting(srv: ThreadedReferenceServer) -> None:
    srv.faults.append(Fault(path=FINISHED_PATH, drop_after=2))
    srv.faults.append(Fault(path=FINISHED_PATH, handshake_status=503, times=None))
    started = time.monotonic()
    result = invoke(srv.url, "logs", PROC_FINISHED, "--follow", "--retry-for", "2")
    assert time.monotonic() - started < 5
    assert result.exit_code == 3
    assert "gave up after 2 s" in result.stderr
    assert json_lines(result.stdout) == srv.processes[PROC_FINISHED].logs[:2]


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (Fault(handshake_status=401), 4),
        (Fault(handshake_status=403), 4),
        (Fault(handshake_status=404), 5),
        (Fault(handshake_status=200, handshake_body=HTML, handshake_content_type="text/html"), 6),
    ],
    ids=["401", "403", "404", "html"],
)
@pytest.mark.parametrize("api", ["documented", "auto"])
def test_never_retried_after_a_loss(
    srv: ThreadedReferenceServer, answer: Fault, code: int, api: str
) -> None:
    srv.faults.append(Fault(path=FINISHED_PATH, drop_after=2))
    answer.path = FINISHED_PATH
    srv.faults.append(answer)
    srv.faults.append(Fault(path=FINISHED_PATH, handshake_status=503, times=None))
    result = support.invoke(srv, "logs", PROC_FINISHED, "--follow", api=api)
    assert result.exit_code == code, result.stderr
    assert len([r for r in srv.connections if r.path == FINISHED_PATH]) == 2
    assert len(notes(result.stderr)) == 1  # the loss itself, then no retry


def test_a_stream_that_ended_is_not_reconnected(srv: ThreadedReferenceServer) -> None:
    result = invoke(srv.url, "logs", PROC_FINISHED, "--follow")
    assert (result.exit_code, result.stderr) == (0, "")
    srv.wait_all_done()
    assert [(r.closed_by, r.close_code) for r in srv.connections] == [("server", 1000)]


# -- heartbeats ---------------------------------------------------------------------


async def test_app_pings_are_sent_and_pongs_swallowed() -> None:
    async with ReferenceServer(scenario=hold_scenario()) as server:
        options = StreamOptions(ping_interval=0.05)
        got: list[Any] = []
        async with ForgeClient(server=server.url, api="documented", options=options) as forge:

            async def consume() -> None:
                async for log in forge.processes.stream_logs(PROC_HOLD):
                    got.append(log.to_dict())

            task = asyncio.create_task(consume())
            await server.wait_until(lambda: bool(server.accepted))
            rec = server.accepted[0]
            await server.wait_until(lambda: rec.pongs_sent >= 4)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert got == server.processes[PROC_HOLD].logs  # no pong among them
        assert len(rec.messages) >= 4
        assert all(json.loads(m) == {"type": "ping"} for m in rec.messages)
        await server.wait_all_done()
        assert rec.close_code == 1000


async def test_silent_peer_behind_a_live_tcp_connection() -> None:
    async with (
        ReferenceServer(scenario=hold_scenario()) as server,
        FaultProxy("127.0.0.1", server.port) as proxy,
    ):
        options = StreamOptions(stale_timeout=0.4, ping_interval=10, backoff_initial=0.01)
        got: list[str] = []
        async with ForgeClient(server=proxy.url, api="documented", options=options) as forge:

            async def consume() -> None:
                async for log in forge.processes.stream_logs(PROC_HOLD):
                    got.append(log.message)

            task = asyncio.create_task(consume())
            await server.wait_until(lambda: len(got) == 3)
            proxy.stall(new_connections=False)
            stalled_at = time.monotonic()
            await server.wait_for_connections(2)
            detected = time.monotonic() - stalled_at
            proxy.unstall()
            await server.wait_until(lambda: server.accepted[-1].items_sent == 3)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert 0.35 <= detected < 1.5
        assert got == [f"history {i}" for i in range(3)]  # the resent history skipped


# -- exactly once under faults ------------------------------------------------------

CHAOS_PROC = "proc_chaos"
HISTORY, LIVE = 150, 350


def chaos_scenario() -> Scenario:
    def log(i: int) -> dict[str, Any]:
        return {
            "level": "info",
            "message": f"line {i:04d} " + "x" * (i % 40),
            "timestamp": f"2024-01-15T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "source": "executor",
            "metadata": {"n": i},
        }

    return Scenario(
        processes={
            CHAOS_PROC: Process(
                id=CHAOS_PROC,
                logs=[log(i) for i in range(HISTORY)],
                finished=False,
                live_logs=[log(i) for i in range(HISTORY, HISTORY + LIVE)],
                live_interval=0.002,
            )
        }
    )


async def follow_all(url: str, got: list[Any]) -> None:
    options = StreamOptions(
        stale_timeout=0.4, ping_interval=0.2, backoff_initial=0.01, retry_for=None
    )
    async with ForgeClient(server=url, api="documented", options=options) as forge:
        async for log in forge.processes.stream_logs(CHAOS_PROC, follow=True):
            got.append(log.to_dict())


async def test_exactly_once_under_cuts_stalls_delays_and_a_restart(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    async with ReferenceServer(scenario=chaos_scenario()) as server:
        # The no-fault run is the reference.
        async with FaultProxy("127.0.0.1", server.port) as proxy:
            baseline: list[Any] = []
            await asyncio.wait_for(follow_all(proxy.url, baseline), 20)
        assert len(baseline) == HISTORY + LIVE
        connections_before = len(server.accepted)

        async with FaultProxy("127.0.0.1", server.port, seed=7) as proxy:
            got: list[Any] = []
            client = asyncio.create_task(follow_all(proxy.url, got))

            def latest_sent() -> int:
                return server.accepted[-1].items_sent if server.accepted else 0

            # 1. Cuts at random byte offsets (mid-frame too), with latency.
            proxy.delay(0.001)
            proxy.chaos(seed=20240115, mean_bytes=12_000, max_cuts=20, min_bytes=100)
            await proxy.wait_for_cuts(20, timeout=30)
            proxy.stop_chaos()
            proxy.delay(0.0)
            # 2. A silent peer behind a live TCP connection, mid-stream.
            n = len(server.accepted)
            await server.wait_until(lambda: len(server.accepted) > n and latest_sent() > 200)
            n = len(server.accepted)
            proxy.stall(new_connections=False)
            await server.wait_for_connections(len(server.connections) + 1, timeout=5)
            proxy.unstall()
            # 3. The server restarts under the client (1001 going away, then refused).
            await server.wait_until(lambda: len(server.accepted) > n and latest_sent() > 250)
            await server.restart(delay=0.05)
            await asyncio.wait_for(client, 30)

        reconnects = len(server.accepted) - connections_before - 1
        counts = Counter(json.dumps(x, sort_keys=True) for x in got)
        expected = Counter(json.dumps(x, sort_keys=True) for x in baseline)
        lost = sum((expected - counts).values())
        duplicated = sum((counts - expected).values())
        cut_offsets = [cut.bytes_down for cut in proxy.cut_log]
        line = (
            f"faults: cuts={proxy.cuts} stalls=1 restarts=1 delay=1ms reconnects={reconnects} "
            f"lines={len(got)} lost={lost} duplicated={duplicated}"
        )
        print(f"\n{line}\ncut offsets (bytes down): {cut_offsets}")
        out = tmp_path_factory.getbasetemp() / "fault-figures.txt"
        out.write_text(line + "\n")
        assert got == baseline  # same lines, same order
        assert (lost, duplicated) == (0, 0)
        assert proxy.cuts == 20
        assert reconnects >= 22  # 20 cuts + the stall + the restart


def test_exactly_once_through_the_cli_with_cuts() -> None:
    # The console-level view of the same guarantee: three cuts mid-history,
    # including one inside a frame, and the JSON lines equal the no-fault run.
    with (
        ThreadedReferenceServer(scenario=chaos_scenario()) as server,
        ThreadedFaultProxy("127.0.0.1", server.port) as proxy,
    ):
        baseline = invoke(proxy.url, "logs", CHAOS_PROC, "--follow")
        assert baseline.exit_code == 0
        proxy.chaos(seed=3, mean_bytes=9_000, max_cuts=3, min_bytes=500)
        result = invoke(proxy.url, "logs", CHAOS_PROC, "--follow")
        assert result.exit_code == 0, result.stderr
        assert proxy.chaos_cuts == 3
        assert len(notes(result.stderr)) == 3
        assert result.stdout == baseline.stdout
        assert len(json_lines(result.stdout)) == HISTORY + LIVE
