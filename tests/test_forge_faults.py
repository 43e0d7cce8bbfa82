"""Exactly-once output against the REAL Forge server under network faults.

Every stream is read once without faults (the reference), then again through
``tests/faultproxy.py`` with chaos cuts landing mid-frame, stalls detected by a
short stale timeout, or a server restart; the output must equal the reference:
N lines, none lost, none repeated, in order. Each test prints a figures line
(``pytest -s``)::

    forge faults: cuts=K lines=N lost=0 duplicated=0

Runs only inside a loopback-only network namespace (see test_forge_harness.py):

    unshare -rn sh -c 'ip link set lo up && exec .venv/bin/python -m pytest -q -s tests/test_forge_faults.py'
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from faultproxy import FaultProxy, ThreadedFaultProxy
from forge_server import (
    DEV_SCRIPT,
    SCENARIO_FILES,
    TERMINAL_STATUSES,
    ForgeServer,
)
from support import EXE, note, run

from forgectl import ForgeClient
from forgectl.stream import StreamOptions

pytestmark = [pytest.mark.forge, pytest.mark.timeout(120)]

LINES = 2000


@dataclass
class Busy:
    """An attempt whose setup script printed LINES numbered lines, a killed dev
    server, and changed files in the worktree."""

    attempt_id: str
    setup_id: str
    dev_id: str
    worktree: Path


def make_busy(server: ForgeServer, name: str, *, stop_dev: bool = True) -> Busy:
    repo = server.make_repo(name)
    script = (
        # A short pause every 50 lines keeps the server's read chunks (log entries)
        # small, so cuts land inside and between many frames.
        f'i=1; while [ $i -le {LINES} ]; do echo "line $i"; '
        "if [ $((i % 50)) -eq 0 ]; then sleep 0.01; fi; i=$((i+1)); done; "
        "echo to-stderr >&2; exit 3"
    )
    project = server.create_project(name, repo, setup_script=script, dev_script=DEV_SCRIPT)
    task = server.create_task(project["id"], f"{name} task")
    attempt_id = server.create_attempt(task["id"])["id"]
    setup = server.wait_for_process(attempt_id, "setupscript", TERMINAL_STATUSES, 20)
    assert (setup["status"], setup["exit_code"]) == ("failed", 3)
    worktree = server.attempt_worktree(attempt_id)
    server.start_dev_server(attempt_id)
    dev = server.wait_for_process(attempt_id, "devserver", {"running"}, 10)
    time.sleep(0.5)
    if stop_dev:
        server.stop_process(dev["id"])
        server.wait_for_process(attempt_id, "devserver", {"killed"}, 10)
    for rel, content in SCENARIO_FILES.items():
        target = worktree / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    return Busy(attempt_id, setup["id"], dev["id"], worktree)


@pytest.fixture(scope="module")
def busy(server: ForgeServer) -> Busy:
    return make_busy(server, "busy")


def fast(**kwargs: Any) -> StreamOptions:
    """Short backoff (the spec's 1 s would make these tests slow) and retries on
    the first connection too (a cut can land in the very first handshake)."""
    defaults: dict[str, Any] = {"backoff_initial": 0.05, "retry_for": 30.0}
    defaults.update(kwargs)
    return StreamOptions(**defaults)


def figures(cuts: int, lines: list[str], expected: list[str]) -> tuple[int, int]:
    """Print the figures line; return (lost, duplicated)."""
    seen = Counter(lines)
    lost = sum(1 for line in expected if line not in seen)
    duplicated = sum(count - 1 for count in seen.values() if count > 1)
    print(f"forge faults: cuts={cuts} lines={len(lines)} lost={lost} duplicated={duplicated}")
    return lost, duplicated


def numbered(n: int = LINES) -> list[str]:
    return [f"line {i}" for i in range(1, n + 1)]


def raw_lines(raw: str) -> list[str]:
    """The lines of raw output: the one stderr line can land inside a stdout line
    (the server reads stdout and stderr separately, in chunks, not lines)."""
    assert raw.count("to-stderr\n") == 1, raw[-200:]
    return [*raw.replace("to-stderr\n", "").splitlines(), "to-stderr"]


async def collect_raw(url: str, process_id: str, options: StreamOptions) -> str:
    async with ForgeClient(server=url, options=options) as forge:
        chunks = [c.raw async for c in forge.processes.stream_logs(process_id, "raw")]
    return b"".join(chunks).decode()


async def collect_logs(url: str, process_id: str, options: StreamOptions) -> list[dict[str, Any]]:
    async with ForgeClient(server=url, options=options) as forge:
        return [e.to_dict() async for e in forge.processes.stream_logs(process_id)]


async def take(it: AsyncIterator[Any], n: int, timeout: float) -> list[Any]:
    out: list[Any] = []
    async with asyncio.timeout(timeout):
        async for item in it:
            out.append(item)
            if len(out) == n:
                break
    return out


# -- the reference runs ------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(server: ForgeServer, busy: Busy) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        raw = await collect_raw(server.url, busy.setup_id, fast())
        logs = await collect_logs(server.url, busy.setup_id, fast())
        async with ForgeClient(server=server.url, options=fast()) as forge:
            diff = [
                d.to_dict() async for d in forge.attempts.stream_diff(busy.attempt_id, follow=False)
            ]
            events = await take(forge.processes.monitor(busy.attempt_id, history=True), 4, 10)
        return {"raw": raw, "logs": logs, "diff": diff, "monitor": [e.to_dict() for e in events]}

    ref = asyncio.run(run())
    stdout = "".join(f"{line}\n" for line in numbered())
    assert raw_lines(ref["raw"]) == [*numbered(), "to-stderr"]
    assert ref["raw"].replace("to-stderr\n", "") == stdout
    assert [e["message"] for e in ref["logs"] if e["source"] == "stdout"] == numbered()
    assert len(ref["diff"]) == 1 and ref["diff"][0]["filesChanged"] == len(SCENARIO_FILES)
    assert [e["type"] for e in ref["monitor"]] == [
        "process_started",
        "process_failed",
        "process_started",
        "process_stopped",
    ]
    return ref


# -- chaos cuts --------------------------------------------------------------------


async def test_raw_logs_exactly_once_through_chaos_cuts(
    server: ForgeServer, busy: Busy, reference: dict[str, Any]
) -> None:
    async with FaultProxy(upstream_port=server.port) as proxy:
        proxy.chaos(seed=1, mean_bytes=6000, max_cuts=12, min_bytes=200)
        raw = await collect_raw(proxy.url, busy.setup_id, fast())
        cuts = proxy.chaos_cuts
    lines = raw_lines(raw)
    lost, duplicated = figures(cuts, lines, [*numbered(), "to-stderr"])
    assert cuts >= 3, "the chaos did not cut: the test proves nothing"
    assert raw == reference["raw"]
    assert (lost, duplicated) == (0, 0)


async def test_normalized_logs_exactly_once_through_chaos_cuts(
    server: ForgeServer, busy: Busy, reference: dict[str, Any]
) -> None:
    async with FaultProxy(upstream_port=server.port) as proxy:
        proxy.chaos(seed=7, mean_bytes=5000, max_cuts=12, min_bytes=200)
        logs = await collect_logs(proxy.url, busy.setup_id, fast())
        cuts = proxy.chaos_cuts
    messages = [e["message"] for e in logs]
    lost, duplicated = figures(cuts, messages, [*numbered(), "to-stderr"])
    assert cuts >= 3
    assert logs == reference["logs"]
    assert (lost, duplicated) == (0, 0)


async def test_monitor_exactly_once_through_chaos_cuts(
    server: ForgeServer, busy: Busy, reference: dict[str, Any]
) -> None:
    async with FaultProxy(upstream_port=server.port) as proxy:
        # The snapshot is one frame of a few KiB: cut inside it, again and again.
        proxy.chaos(seed=3, mean_bytes=1500, max_cuts=5, min_bytes=200)
        async with ForgeClient(server=proxy.url, options=fast()) as forge:
            stream = forge.processes.monitor(busy.attempt_id, history=True)
            events = await take(stream, 4, 20)
            # Keep listening after the chaos is spent: nothing may be repeated.
            await proxy.wait_for_cuts(5, timeout=20)
            extra: list[Any] = []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    async for event in stream:
                        extra.append(event)
            cuts = proxy.chaos_cuts
    got = [e.to_dict() for e in events]
    ids = [f"{e['type']} {e['processId']}" for e in got + [e.to_dict() for e in extra]]
    lost, duplicated = figures(
        cuts, ids, [f"{e['type']} {e['processId']}" for e in reference["monitor"]]
    )
    assert cuts == 5
    assert got == reference["monitor"]
    assert extra == []
    assert (lost, duplicated) == (0, 0)


async def test_diff_exactly_once_through_chaos_cuts(
    server: ForgeServer, busy: Busy, reference: dict[str, Any]
) -> None:
    expected = reference["diff"][0]
    async with FaultProxy(upstream_port=server.port) as proxy:
        proxy.chaos(seed=11, mean_bytes=700, max_cuts=6, min_bytes=200)
        async with ForgeClient(server=proxy.url, options=fast()) as forge:
            diffs = [
                d.to_dict() async for d in forge.attempts.stream_diff(busy.attempt_id, follow=False)
            ]
        cuts = proxy.chaos_cuts
    assert len(diffs) == 1

    def headers(diff: str) -> list[str]:  # one per file
        return [line for line in diff.splitlines() if line.startswith("diff --git ")]

    lost, duplicated = figures(cuts, headers(diffs[0]["diff"]), headers(expected["diff"]))
    assert cuts >= 2
    for key in ("diff", "filesChanged", "insertions", "deletions"):
        assert diffs[0][key] == expected[key], key
    assert (lost, duplicated) == (0, 0)


def test_cli_raw_follow_through_chaos_cuts(
    server: ForgeServer, busy: Busy, reference: dict[str, Any]
) -> None:
    """The console script, with the spec's 1 s backoff: a few cuts, a few seconds."""
    with ThreadedFaultProxy(upstream_port=server.port) as proxy:
        proxy.chaos(seed=5, mean_bytes=8000, max_cuts=3, min_bytes=300)
        proc = run(
            proxy, "logs", busy.setup_id, "--raw", "--follow", "--retry-for", "30", timeout=60
        )
        cuts = proxy.chaos_cuts
    lines = raw_lines(proc.stdout)
    lost, duplicated = figures(cuts, lines, [*numbered(), "to-stderr"])
    assert proc.returncode == 0, proc.stderr
    assert cuts == 3
    assert proc.stdout == reference["raw"]
    assert proc.stderr.count("reconnecting") + proc.stderr.count("waiting for the server") >= cuts
    assert (lost, duplicated) == (0, 0)


# -- stalls --------------------------------------------------------------------------


async def test_raw_logs_exactly_once_through_stalls(
    server: ForgeServer, busy: Busy, reference: dict[str, Any]
) -> None:
    """A peer gone silent mid-stream is detected by the stale timeout and reconnected."""
    async with FaultProxy(upstream_port=server.port, chunk_size=512, chunk_pause=0.005) as proxy:
        options = fast(stale_timeout=0.6)
        task = asyncio.create_task(collect_raw(proxy.url, busy.setup_id, options))
        stalls = 0
        for _ in range(2):
            await asyncio.sleep(0.25)
            proxy.stall()
            stalls += 1
            await asyncio.sleep(1.2)  # > stale timeout: the client gives up on the link
            proxy.unstall()
        raw = await asyncio.wait_for(task, 30)
        connections = proxy.connections
    lines = raw_lines(raw)
    lost, duplicated = figures(stalls, lines, [*numbered(), "to-stderr"])
    assert connections >= 3, "the stalls did not force reconnects"
    assert raw == reference["raw"]
    assert (lost, duplicated) == (0, 0)


# -- a server restart ----------------------------------------------------------------


async def test_live_dev_server_logs_and_monitor_across_restart(
    start_forge_server: Callable[..., ForgeServer],
) -> None:
    """Following a running dev server while the server restarts: the process is
    ``failed`` afterwards, its logs up to the crash are served again and end with
    ``finished``; output = a fresh no-fault read, ticks consecutive, none twice."""
    with start_forge_server() as server:
        sc = await asyncio.to_thread(make_busy, server, "restart", stop_dev=False)
        options = fast(retry_for=None)
        async with ForgeClient(server=server.url, options=options) as forge:
            raw_task = asyncio.create_task(collect_raw(server.url, sc.dev_id, options))
            monitor = forge.processes.monitor(sc.attempt_id)
            started = await take(monitor, 1, 10)
            await asyncio.sleep(0.7)
            await asyncio.to_thread(server.restart)
            raw = await asyncio.wait_for(raw_task, 30)
            ended = await take(monitor, 1, 20)
        after = await collect_raw(server.url, sc.dev_id, fast())
    ticks = [line for line in raw.splitlines() if line.startswith("tick ")]
    expected = [f"tick {i}" for i in range(len(ticks))]
    lost, duplicated = figures(1, ticks, expected)
    assert raw == after
    assert raw.startswith("dev-server-up\ntick 0\n") and ticks == expected
    assert (lost, duplicated) == (0, 0)
    assert [(e.type, e.process_id) for e in started] == [("process_started", sc.dev_id)]
    assert [(e.type, e.process_id, e.exit_code) for e in ended] == [
        ("process_failed", sc.dev_id, None)
    ]


def test_cli_logs_follow_across_restart_keeps_every_line(
    start_forge_server: Callable[..., ForgeServer],
) -> None:
    """``logs --raw --follow`` (console script, 1 s backoff) across a restart."""
    with start_forge_server() as server:
        sc = make_busy(server, "restart-cli", stop_dev=False)
        proc = subprocess.Popen(
            [EXE, "-s", server.url, "logs", sc.dev_id, "--raw", "--follow", "--exit-status"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []
        errors: list[str] = []
        note(f"forgectl logs {sc.dev_id} --raw --follow (a child): stderr", lambda: "".join(errors))
        assert proc.stdout is not None and proc.stderr is not None
        readers = [
            threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True),  # type: ignore[arg-type]
            threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True),  # type: ignore[arg-type]
        ]
        for reader in readers:
            reader.start()
        try:
            # Restart once it follows the stream (not after a guess at how long
            # starting up takes on a busy machine).
            deadline = time.monotonic() + 20
            while not lines and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.02)
            assert lines, f"no output from forgectl: {''.join(errors)}"
            server.restart(down_for=0.5)
            proc.wait(timeout=30)
            for reader in readers:
                reader.join(5)
        finally:
            if proc.poll() is None:
                proc.kill()
        out, err = "".join(lines), "".join(errors)
        after = run(server, "logs", sc.dev_id, "--raw", timeout=20).stdout
    ticks = [line for line in out.splitlines() if line.startswith("tick ")]
    lost, duplicated = figures(1, ticks, [f"tick {i}" for i in range(len(ticks))])
    assert "reconnecting" in err
    assert out == after and (lost, duplicated) == (0, 0)
    # failed without an exit code after the restart: 125
    assert proc.returncode == 125, err


def test_numbered_lines_helper_is_strict() -> None:
    """The figures helper must see a loss and a repeat (so the asserts can fail)."""
    expected = numbered(4)
    assert figures(0, ["line 1", "line 2", "line 2", "line 4"], expected) == (1, 1)
    assert re.fullmatch(r"line \d+", expected[-1])
