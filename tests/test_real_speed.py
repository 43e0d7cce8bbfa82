"""forgectl at real speed (issue 12): producers as fast as real ones, on the REAL binary.

Scripted coding agents (tests/agents) stream text in many small deltas, dev servers
print 20 to 1,000 lines/s, a setup script fails at once, a live process stays quiet
longer than the stale timeout; followers join at random moments. The oracle is the
server's own final state (tests/forge_bed.py): what a fresh plain websockets client
reads once the process has ended. The cases the real binary cannot produce on demand
(junk frames at 20/s, a trickling frame, an oversized frame, a diff entry of the wrong
type, a trickling REST answer, a shorter resent history, a slow first diff) run
against tests/hostile_forge.py on loopback.

    unshare -rn sh -c 'ip link set lo up && exec .venv/bin/python -m pytest -q -s tests/test_real_speed.py'

Each real-speed test prints a figures line (``-s``). Select them with ``-m realspeed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from agents import AgentBed, claude
from forge_bed import (
    Cli,
    WsFollower,
    compare_entries,
    established,
    failing_setup,
    final_entries,
    final_raw,
    join_stress_session,
    loss,
    ops,
    reduce_forgectl,
    start_agent,
    start_producer,
    wait_for,
)
from forge_server import TERMINAL_STATUSES, ForgeAPIError, ForgeServer
from hostile_forge import (
    HostileForge,
    RawWs,
    frame,
    json_answer_head,
    normalized,
    patch_add,
    process_record,
)

from forgectl.errors import ExitCode
from forgectl.stream.history import CAP

pytestmark = [pytest.mark.forge, pytest.mark.realspeed, pytest.mark.timeout(120)]

#: "logs without --follow returns within about 2 s" (issue 12), plus forgectl's own
#: start-up on a busy 2-core machine.
RETURN_WITHIN = 2.0 + 2.0
PROC = "11111111-1111-4111-8111-111111111111"
ATTEMPT = "22222222-2222-4222-8222-222222222222"


@pytest.fixture(scope="module")
def server(agent_server: ForgeServer) -> ForgeServer:
    """The real server, its coding agents played by ``bed`` (tests/conftest.py)."""
    return agent_server


def raw_route(process_id: str) -> str:
    return f"/api/execution-processes/{process_id}/raw-logs/ws"


def normalized_route(process_id: str) -> str:
    return f"/api/execution-processes/{process_id}/normalized-logs/ws"


def stdout_lines(follower: WsFollower) -> int:
    """Complete stdout lines a raw-logs follower has seen so far."""
    text = "".join(
        op["value"]["content"]
        for op in ops(list(follower.frames))
        if isinstance(op.get("value"), dict) and op["value"].get("type") == "STDOUT"
    )
    return text.count("\n")


def numbers(messages: list[str]) -> list[int]:
    out = []
    for m in messages:
        match = re.fullmatch(r"line (\d+)", m)
        assert match, f"not a producer line: {m!r}"
        out.append(int(match.group(1)))
    return out


def gaps(seq: list[int]) -> list[tuple[int, int]]:
    """Runs of missing numbers in an increasing sequence: (first missing, last missing)."""
    return [(a + 1, b - 1) for a, b in itertools.pairwise(seq) if b != a + 1]


def stop_quietly(server: ForgeServer, process_id: str) -> None:
    """Stop a producer a failed test left running (stopping an ended one is a 500)."""
    with contextlib.suppress(ForgeAPIError):
        server.stop_process(process_id)


def context(server: ForgeServer, *clis: Cli) -> str:
    return "\n".join(c.describe() for c in clis) + f"\nserver log tail:\n{server.log_tail()}"


# -- joining a live agent ------------------------------------------------------------------

FOLLOWERS = 10


@dataclass
class Joined:
    """One scripted session and the followers that joined it at random moments."""

    server: ForgeServer
    joins: list[float]
    logs: list[Cli]  # logs -f --json
    raw: list[Cli]  # logs -f --raw --json
    plain: list[WsFollower]  # the baseline: plain websockets clients, normalized logs
    plain_raw: list[WsFollower]
    whole_ops: int
    oracle: dict[int, Any]
    final: dict[str, str]


@pytest.fixture(scope="module")
def joined(server: ForgeServer, bed: AgentBed) -> Iterator[Joined]:
    seed = 12
    script = claude.script(join_stress_session(seed), gate=True)
    run = start_agent(server, bed, script, "join")
    bed.wait_started(run.marker)
    first = WsFollower(server.ws_url, normalized_route(run.process_id))
    first_raw = WsFollower(server.ws_url, raw_route(run.process_id))
    wait_for(lambda: first.opened and first_raw.opened, 10, "the first followers to connect")
    bed.release(run.marker)
    started = time.monotonic()
    rng = random.Random(seed)
    joins = sorted(rng.uniform(0.3, claude.duration(script) * 0.9) for _ in range(FOLLOWERS))
    out = Joined(server, joins, [], [], [], [], 0, {}, {})
    try:
        for at in joins:
            wait_for(lambda: time.monotonic() - started >= at, 60, f"{at:.2f} s")  # noqa: B023
            out.logs.append(Cli(server.url, "logs", run.process_id, "--follow", "--json"))
            out.raw.append(Cli(server.url, "logs", run.process_id, "-f", "--raw", "--json"))
            out.plain.append(WsFollower(server.ws_url, normalized_route(run.process_id)))
            out.plain_raw.append(WsFollower(server.ws_url, raw_route(run.process_id)))
        agent = server.wait_for_process(run.attempt_id, "codingagent", TERMINAL_STATUSES, 60)
        assert agent["status"] == "completed", bed.failures()
        for cli in out.logs + out.raw:
            assert cli.wait(30) == 0, context(server, cli)
        for ws in [first, first_raw, *out.plain, *out.plain_raw]:
            assert ws.done.wait(30) and ws.error is None, ws.error
        out.oracle = final_entries(server, run.process_id, reads=2)
        out.final = final_raw(server, run.process_id)
        assert not loss(first.frames, out.oracle).lost_indices
        out.whole_ops = len(ops(first.frames))
        whole_raw = len(ops(first_raw.frames))
        shorted = sum(1 for ws in out.plain if len(ops(ws.frames)) < out.whole_ops)
        shorted_raw = sum(1 for ws in out.plain_raw if len(ops(ws.frames)) < whole_raw)
        print(
            f"real speed: joined a live agent ({claude.duration(script):.1f} s, "
            f"{len(out.oracle)} entries, {out.whole_ops} ops): the server shorted "
            f"{shorted}/{FOLLOWERS} plain normalized-logs clients and "
            f"{shorted_raw}/{FOLLOWERS} plain raw-logs clients"
        )
        yield out
    finally:
        for cli in out.logs + out.raw:
            cli.kill()
        for ws in out.plain + out.plain_raw:
            ws.stop()


def test_followers_joining_a_live_agent_end_with_every_final_version(joined: Joined) -> None:
    """10 ``logs -f`` followers join a streaming session at random moments (seeded);
    each must end with every entry's final version, field by field, as the server
    has it once the process has ended."""
    results = [compare_entries(joined.oracle, reduce_forgectl(c.json_lines())) for c in joined.logs]
    complete = sum(1 for r in results if not r)
    print(f"real speed: logs -f joiners complete={complete}/{FOLLOWERS}")
    failed = [
        f"follower joined at {at:.2f} s:\n  " + "\n  ".join(r) + f"\n  stderr: {cli.stderr!r}"
        for at, cli, r in zip(joined.joins, joined.logs, results, strict=True)
        if r
    ]
    assert not failed, "\n".join(failed)


def test_raw_followers_joining_a_live_agent_get_every_byte(joined: Joined) -> None:
    """The same joins with ``logs -f --raw --json``: per stream, the bytes each
    follower printed are the process's whole output. The server numbers raw entries
    per connection, so a chunk it drops for a joiner leaves no gap in the indices."""
    short: list[str] = []
    for at, cli in zip(joined.joins, joined.raw, strict=True):
        got = {"stdout": "", "stderr": ""}
        for chunk in cli.json_lines():
            got[chunk["stream"] or "stdout"] += chunk["content"]
        for stream, want in joined.final.items():
            if got[stream] != want:
                missing = len(want) - len(got[stream])
                short.append(
                    f"follower joined at {at:.2f} s: {stream} has {len(got[stream])} of "
                    f"{len(want)} bytes ({missing} missing); stderr: {cli.stderr!r}"
                )
    print(f"real speed: logs -f --raw joiners complete={FOLLOWERS - len(short)}/{FOLLOWERS}")
    assert not short, "\n".join(short)


def test_a_joiner_that_loses_ops_at_the_switch_to_live_is_healed(hostile: HostileForge) -> None:
    """The real server's drop, made deterministic. A connection that joins while the log
    is live gets a copy of the history, then live ops; 0.7.4 sends a live op to the
    subscribers before it appends it to the history, and subscribes the connection only
    once its copy is made, so what is pushed while the copy is made is in neither (on
    0.7.4 one to three ops, an add among them, were measured lost). Here the copy
    "takes" the rest of the entry being streamed and the whole next one (its add and
    replaces); like the real server's, they are in the history of any later connection.
    ``logs -f`` must end with every final version."""
    feed: list[str] = []  # the ops so far, as frames
    produced = asyncio.Event()
    finished = {"done": False}

    def entry_frames(i: int) -> list[str]:
        texts = [f"entry {i} v{v}" for v in range(3)]
        return [patch_add(i, normalized(texts[0]))] + [
            patch_add(i, normalized(t), op="replace") for t in texts[1:]
        ]

    async def produce() -> None:
        for i in range(40):
            for f in entry_frames(i):
                feed.append(f)
                produced.set()
                await asyncio.sleep(0.03)
        finished["done"] = True
        produced.set()

    def adds(frames: list[str]) -> int:
        return sum('"op": "add"' in text for text in frames)

    async def logs(ws: RawWs, _: re.Match[str]) -> None:
        first_connection = not feed
        if first_connection:
            asyncio.get_running_loop().create_task(produce())
        copy = list(feed)  # the history, copied when the connection joins
        sent = len(copy)
        if not first_connection and not finished["done"]:
            # Making the copy takes until the add after the next one: what is
            # produced meanwhile goes to no one (not subscribed yet).
            while adds(feed[len(copy) :]) < 2 and not finished["done"]:
                produced.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(produced.wait(), 0.5)
            rest = feed[len(copy) :]
            new_adds = [i for i, text in enumerate(rest) if '"op": "add"' in text]
            sent = len(copy) + (new_adds[1] if len(new_adds) > 1 else len(rest))
        for text in copy:
            await ws.send_text(text)
        while not ws.closed.is_set():
            while sent < len(feed):
                await ws.send_text(feed[sent])
                sent += 1
            if finished["done"]:
                await ws.send_text('{"finished":true}')
                await ws.hold(10)
                return
            produced.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(produced.wait(), 0.5)

    hostile.route(rf"/api/execution-processes/{PROC}/normalized-logs/ws", logs)
    first = Cli(hostile.url, "--api", "forge", "logs", PROC, "--follow", "--json")
    joiner: Cli | None = None
    try:
        wait_for(lambda: first.count() >= 10, 10, "the first follower's output")
        joiner = Cli(hostile.url, "--api", "forge", "logs", PROC, "--follow", "--json")
        for cli in (first, joiner):
            assert cli.wait(20) == 0, hostile_context(hostile, cli)
        want = {i: f"entry {i} v2" for i in range(40)}
        for cli in (first, joiner):
            got = {i: e["message"] for i, e in reduce_forgectl(cli.json_lines()).items()}
            wrong = {i: got.get(i) for i in want if got.get(i) != want[i]}
            assert not wrong, f"final versions missing or stale: {wrong}; stderr: {cli.stderr!r}"
    finally:
        first.kill()
        if joiner is not None:
            joiner.kill()


@pytest.mark.parametrize("entries", [30, 80], ids=["ends-during-the-check", "goes-on"])
def test_a_check_whose_copy_comes_late_still_heals_the_join(
    hostile: HostileForge, entries: int
) -> None:
    """As above, with one follower, and the second reading's copy of the history slow
    to come (1.5 s, longer than the first-frame wait, as on a loaded machine). The
    check must read on until its copy has every entry the follower had, not take the
    late copy for an empty one; and an entry it heals after the stream has ended is
    printed all the same. (Both left the entry lost at the join out, and said
    nothing.) A new entry every 50 ms: 30 end before the copy comes, 80 go on."""
    feed: list[str] = []
    produced = asyncio.Event()
    finished = {"done": False}
    calls = {"n": 0}

    async def produce() -> None:
        for i in range(entries):
            feed.append(patch_add(i, normalized(f"entry {i}")))
            produced.set()
            await asyncio.sleep(0.05)
        finished["done"] = True
        produced.set()

    async def logs(ws: RawWs, _: re.Match[str]) -> None:
        calls["n"] += 1
        if calls["n"] == 1:  # the follower joins live: entry 10 reaches no one...
            asyncio.get_running_loop().create_task(produce())
            while len(feed) < 12:
                produced.clear()
                await asyncio.wait_for(produced.wait(), 5)
            sent = 0
            for text in feed[:10]:
                await ws.send_text(text)
            sent = 11  # ...it is in the history of any later connection
        else:  # the check: its copy (taken now) comes late
            copy = len(feed)
            await asyncio.sleep(1.5)
            for text in feed[:copy]:
                await ws.send_text(text)
            sent = copy
        while not ws.closed.is_set():
            while sent < len(feed):
                await ws.send_text(feed[sent])
                sent += 1
            if finished["done"]:
                await ws.send_text('{"finished":true}')
                await ws.hold(10)
                return
            produced.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(produced.wait(), 0.5)

    hostile.route(rf"/api/execution-processes/{PROC}/normalized-logs/ws", logs)
    cli = Cli(hostile.url, "--api", "forge", "logs", PROC, "--follow", "--json")
    try:
        assert cli.wait(20) == 0, hostile_context(hostile, cli)
        assert calls["n"] >= 2, "no second reading"
        got = {i: e["message"] for i, e in reduce_forgectl(cli.json_lines()).items()}
        assert got == {i: f"entry {i}" for i in range(entries)}, f"stderr: {cli.stderr!r}"
    finally:
        cli.kill()


# -- fast script processes ---------------------------------------------------------------


def test_raw_tail_is_the_last_lines_whatever_the_chunks(server: ForgeServer) -> None:
    """At 1,000 lines/s the server's raw entries hold several lines each: ``--raw
    --tail N`` is still the last N lines, as ``tail -n N`` prints them."""
    dev = start_producer(server, "rawtail", 1000, lines=1500)
    server.wait_for_process(dev.attempt_id, "devserver", TERMINAL_STATUSES, 30)
    final = final_raw(server, dev.process_id)["stdout"]
    assert final.count("\n") == 1500, final[-200:]
    chunks = Cli(server.url, "logs", dev.process_id, "--raw", "--json")
    assert chunks.wait(30) == 0, context(server, chunks)
    entries = len(chunks.json_lines())
    assert entries < 1500, f"{entries} entries: every line its own, the test cannot fail"
    for n in (1, 7, 250):
        cli = Cli(server.url, "logs", dev.process_id, "--raw", "--tail", str(n))
        assert cli.wait(30) == 0, context(server, cli)
        want = "".join(final.splitlines(keepends=True)[-n:])
        assert cli.stdout == want, (n, cli.stdout[:200], context(server, cli))
    print(f"real speed: raw tail, 1500 lines in {entries} entries")


def test_logs_follow_tail_prints_the_history_tail_then_every_live_line(
    server: ForgeServer,
) -> None:
    """``logs -f --tail 5`` on a dev server printing 100 lines/s: the last 5 lines of
    the history, then every live line as it comes (while the process still runs)."""
    tail = 5
    dev = start_producer(server, "tail100", 100)
    baseline = WsFollower(server.ws_url, raw_route(dev.process_id))
    cli: Cli | None = None
    try:
        wait_for(lambda: stdout_lines(baseline) >= 60, 20, "60 lines of history")
        history = stdout_lines(baseline)
        cli = Cli(server.url, "logs", dev.process_id, "--follow", "--tail", str(tail), "--json")
        live = 100
        wait_for(
            lambda: cli is not None and cli.count() >= tail + live,
            10,
            f"{tail} history lines and {live} live lines while the process runs "
            f"(printed {cli.count()}); {cli.describe()}",
        )
        server.stop_process(dev.process_id)
        assert cli.wait(20) == 0, context(server, cli)
        got = numbers([e["message"] for e in cli.json_lines() if e["source"] == "stdout"])
        final = final_raw(server, dev.process_id)["stdout"].count("\n")
        holes = gaps(got)
        print(
            f"real speed: tail={tail} history>={history} printed={len(got)} "
            f"first={got[0]} last={got[-1]} final={final} gaps={holes}"
        )
        assert got == sorted(set(got)), "repeated or out of order"
        assert got[0] >= history - tail + 1, f"more than --tail {tail} of the history printed"
        assert got[-1] == final, context(server, cli)
        # The server may drop one chunk for a connection at its switch from history to
        # live, and its raw indices then shift so no client can see it (FORGE_NOTES.md):
        # at most that one hole is tolerated here.
        assert len(holes) <= 1, holes
    finally:
        if cli is not None:
            cli.kill()
        baseline.stop()
        stop_quietly(server, dev.process_id)


@pytest.mark.parametrize("rate", [20, 100, 1000])
def test_logs_without_follow_returns_promptly_on_a_fast_producer(
    server: ForgeServer, rate: int
) -> None:
    """``logs`` (no --follow) on a dev server printing ``rate`` lines/s returns what has
    been logged so far within about 2 s."""
    dev = start_producer(server, f"nofollow{rate}", rate)
    baseline = WsFollower(server.ws_url, raw_route(dev.process_id))
    cli: Cli | None = None
    try:
        wait_for(lambda: stdout_lines(baseline) >= 20, 20, "20 lines of history")
        history = stdout_lines(baseline)
        cli = Cli(server.url, "logs", dev.process_id, "--json")
        # Within about 2 s; on a machine so busy that forgectl never finds its
        # socket idle, at the history cap, saying so (forgectl/stream/history.py).
        code = cli.wait(RETURN_WITHIN + CAP)
        elapsed = time.monotonic() - cli.started
        printed = cli.count()
        capped = "never went quiet" in cli.stderr
        print(
            f"real speed: rate={rate}/s history>={history} returned={code is not None} "
            f"after={elapsed:.2f}s printed={printed} capped={capped}"
        )
        assert code == 0, f"still running after {RETURN_WITHIN + CAP} s; " + context(server, cli)
        assert elapsed <= RETURN_WITHIN or capped, (
            f"{elapsed:.1f} s, and not at the cap; " + context(server, cli)
        )
        got = numbers([e["message"] for e in cli.json_lines() if e["source"] == "stdout"])
        assert got[:history] == list(range(1, history + 1)), "the history is incomplete"
        assert got == sorted(set(got))
    finally:
        if cli is not None:
            cli.kill()
        baseline.stop()
        stop_quietly(server, dev.process_id)


def test_monitor_started_just_before_a_quick_failing_setup_reports_it(
    server: ForgeServer,
) -> None:
    """``monitor --json`` started, then (as soon as its event stream is open) an attempt
    whose setup script fails at once: the failure must be reported."""
    failing_setup(server, "earlier")  # the event stream then has a history to replay
    cli = Cli(server.url, "-v", "monitor", "--json")
    try:
        # -v names the event stream before it connects: once named, forgectl's
        # connection to the server is that stream (auto-detection's probe is over).
        wait_for(
            lambda: "/api/events" in cli.stderr and established(cli.proc.pid, server.port),
            10,
            "the event stream",
        )
        _, setup_id = failing_setup(server, "quick", exit_code=4)
        try:
            events = wait_for(
                lambda: (
                    [e for e in cli.json_lines() if e.get("processId") == setup_id]
                    if any(
                        e.get("type") == "process_failed" and e.get("processId") == setup_id
                        for e in cli.json_lines()
                    )
                    else None
                ),
                15,
                "process_failed of the quick setup script",
            )
        except AssertionError as exc:
            cli.signal()
            cli.wait(10)
            raise AssertionError(f"{exc}; printed {cli.stdout!r}; {context(server, cli)}") from None
        assert [e["type"] for e in events] == ["process_started", "process_failed"]
        assert events[1]["exitCode"] == 4
        cli.signal()
        assert cli.wait(10) == -signal.SIGINT  # dies by the signal, as Ctrl-C should
    finally:
        cli.kill()


def test_quiet_live_process_is_not_taken_for_a_dead_peer(server: ForgeServer) -> None:
    """A running dev server silent for 3x --stale-timeout: the server answers every
    WebSocket ping, so neither ``logs -f`` nor ``monitor --attempt`` reconnects."""
    quiet = ("--ping-interval", "0.3", "--stale-timeout", "1.5")
    dev = start_producer(server, "quiet", 20, lines=8, quiet_after=3, quiet_for=4.5)
    logs = Cli(server.url, "logs", dev.process_id, "--follow", "--raw", *quiet)
    monitor = Cli(server.url, "monitor", "--attempt", dev.attempt_id, "--json", *quiet)
    try:
        assert logs.wait(30) == 0, context(server, logs)
        wait_for(
            lambda: any(e.get("type") == "process_completed" for e in monitor.json_lines()),
            10,
            "monitor to see the dev server complete",
        )
        monitor.signal()
        assert monitor.wait(10) == -signal.SIGINT, context(server, monitor)
        for cli in (logs, monitor):
            assert "reconnect" not in cli.stderr and "dead" not in cli.stderr, context(server, cli)
        assert logs.stdout == final_raw(server, dev.process_id)["stdout"]
        print("real speed: quiet 4.5 s with --stale-timeout 1.5: logs+monitor reconnects=0")
    finally:
        logs.kill()
        monitor.kill()


# -- hostile servers -------------------------------------------------------------------------


@pytest.fixture
def hostile() -> Iterator[HostileForge]:
    with HostileForge() as srv:
        srv.processes[PROC] = process_record(PROC, ATTEMPT)
        srv.attempts[ATTEMPT] = {"id": ATTEMPT, "task_id": ATTEMPT, "container_ref": None}
        yield srv


def hostile_context(srv: HostileForge, cli: Cli) -> str:
    return cli.describe() + "\nrequests:\n" + "\n".join(srv.requests()[-20:])


def history(ws_count: int = 3) -> list[str]:
    return [patch_add(i, normalized(f"entry {i}")) for i in range(ws_count)]


def test_logs_without_follow_returns_despite_junk_frames_at_20_per_second(
    hostile: HostileForge,
) -> None:
    async def junk(ws: RawWs, _: re.Match[str]) -> None:
        for text in history():
            await ws.send_text(text)
        while not ws.closed.is_set():
            await ws.send_text("not json {")
            await asyncio.sleep(0.05)

    hostile.route(rf"/api/execution-processes/{PROC}/normalized-logs/ws", junk)
    cli = Cli(hostile.url, "--api", "forge", "logs", PROC, "--json")
    try:
        code = cli.wait(RETURN_WITHIN)
        assert code == 0, f"still running after {RETURN_WITHIN} s; " + hostile_context(hostile, cli)
        assert [e["message"] for e in cli.json_lines()] == ["entry 0", "entry 1", "entry 2"]
        assert "Traceback" not in cli.stderr
    finally:
        cli.kill()


def test_logs_without_follow_returns_despite_a_trickling_frame(hostile: HostileForge) -> None:
    """After the history, one frame whose bytes come one every 0.1 s (20 s in all)."""

    async def trickle(ws: RawWs, _: re.Match[str]) -> None:
        for text in history():
            await ws.send_text(text)
        slow = frame(patch_add(3, normalized("slow " * 40)).encode())
        await ws.send_raw(slow, trickle=0.1)
        await ws.hold()

    hostile.route(rf"/api/execution-processes/{PROC}/normalized-logs/ws", trickle)
    cli = Cli(hostile.url, "--api", "forge", "logs", PROC, "--json")
    try:
        code = cli.wait(RETURN_WITHIN)
        assert code == 0, f"still running after {RETURN_WITHIN} s; " + hostile_context(hostile, cli)
        assert [e["message"] for e in cli.json_lines()] == ["entry 0", "entry 1", "entry 2"]
    finally:
        cli.kill()


def test_logs_without_follow_waits_for_a_big_first_frame_on_a_slow_link(
    hostile: HostileForge,
) -> None:
    """The whole history is one 4 MiB chunk of raw output, arriving at about 3 MiB/s:
    longer than the first-frame wait (1 s). It is the history, printed whole, not an
    empty one."""
    content = "".join(f"line {i:07d}\n" for i in range(4 << 20 >> 4))
    value = {"type": "STDOUT", "content": content}
    big = json.dumps({"JsonPatch": [{"op": "add", "path": "/entries/0", "value": value}]})

    async def raw(ws: RawWs, _: re.Match[str]) -> None:
        await ws.send_raw(frame(big.encode()), trickle=0.01, piece=32 << 10)
        await ws.hold()

    hostile.route(rf"/api/execution-processes/{PROC}/raw-logs/ws", raw)
    cli = Cli(hostile.url, "--api", "forge", "logs", PROC, "--raw")
    try:
        assert cli.wait(30) == 0, hostile_context(hostile, cli)
        assert cli.stdout == content, f"{len(cli.stdout)} of {len(content)} bytes"
    finally:
        cli.kill()


def test_a_frame_trickling_in_counts_against_the_stale_timeout(hostile: HostileForge) -> None:
    """Following: after the history, a frame whose bytes come one every 0.1 s (20 s
    in all; no pong can pass it on the wire). Trickling bytes are no sign of life:
    with --stale-timeout 1.5 forgectl gives up on the link and reconnects, and the
    second connection's history and end give the whole output."""
    state = {"n": 0}

    async def logs(ws: RawWs, _: re.Match[str]) -> None:
        state["n"] += 1
        for text in history():
            await ws.send_text(text)
        if state["n"] == 1:
            ws.answer_pings = False  # a pong cannot be sent inside a frame
            slow = frame(patch_add(3, normalized("slow " * 40)).encode())
            await ws.send_raw(slow, trickle=0.1)
            await ws.hold()
        else:
            await ws.send_text(patch_add(3, normalized("entry 3")))
            await ws.send_text(json.dumps({"finished": True}))
            await ws.hold(5)

    hostile.route(rf"/api/execution-processes/{PROC}/normalized-logs/ws", logs)
    quick = ("--ping-interval", "0.3", "--stale-timeout", "1.5")
    cli = Cli(hostile.url, "--api", "forge", "logs", PROC, "--follow", "--json", *quick)
    try:
        code = cli.wait(15)
        assert code == 0, "no reconnect within 15 s; " + hostile_context(hostile, cli)
        got = [e["message"] for e in cli.json_lines()]
        assert got == ["entry 0", "entry 1", "entry 2", "entry 3"], hostile_context(hostile, cli)
        assert "reconnect" in cli.stderr, cli.stderr
    finally:
        cli.kill()


def test_a_frame_over_the_size_limit_is_one_clear_error(hostile: HostileForge) -> None:
    """A frame header announcing 300 MiB (its bytes need not follow): one error line
    naming the size and the limit, not a reconnect loop."""

    async def huge(ws: RawWs, _: re.Match[str]) -> None:
        for text in history():
            await ws.send_text(text)
        await ws.send_raw(frame(b'{"JsonPatch":[', length=300 * 1024 * 1024))
        await ws.hold(30)

    route = rf"/api/execution-processes/{PROC}/normalized-logs/ws"
    hostile.route(route, huge)
    cli = Cli(hostile.url, "--api", "forge", "logs", PROC, "--follow", "--json")
    try:
        code = cli.wait(15)
        connections = hostile.ws_connections(route)
        assert code is not None, (
            f"still running after 15 s, {connections} connections; " + hostile_context(hostile, cli)
        )
        assert code == ExitCode.PROTOCOL, cli.stderr
        errors = [line for line in cli.stderr.splitlines() if line.startswith("forgectl: error:")]
        assert len(errors) == 1, cli.stderr
        assert "300" in errors[0] and "256" in errors[0], errors[0]  # MiB: the size, the limit
        assert errors[0].endswith("(--max-message-size MIB raises it)"), errors[0]
        # One to follow, one to read the history again for entries lost at the
        # join (that one meets the same frame); a third would be a retry.
        assert connections <= 2, f"{connections} connections: retried what cannot succeed"
        # nothing already received is lost: the entry held back (it might still have
        # been replaced) is printed before the error ends the stream
        assert [e["message"] for e in cli.json_lines()] == ["entry 0", "entry 1", "entry 2"], (
            cli.stderr
        )
    finally:
        cli.kill()


def diff_entry(path: str, **content: Any) -> dict[str, Any]:
    base = {
        "change": "added",
        "oldPath": None,
        "newPath": path,
        "oldContent": None,
        "newContent": "new\n",
        "contentOmitted": False,
        "additions": 1,
        "deletions": 0,
    }
    return {"type": "DIFF", "content": {**base, **content}}


def diff_add(path: str, entry: dict[str, Any]) -> str:
    pointer = path.replace("~", "~0").replace("/", "~1")
    return json.dumps({"JsonPatch": [{"op": "add", "path": f"/entries/{pointer}", "value": entry}]})


@pytest.mark.parametrize("follow", [False, True], ids=["once", "follow"])
def test_a_diff_entry_of_the_wrong_type_is_skipped(hostile: HostileForge, follow: bool) -> None:
    async def diff(ws: RawWs, _: re.Match[str]) -> None:
        await ws.send_text(diff_add("good.txt", diff_entry("good.txt")))
        await ws.send_text(
            diff_add(
                "bad.txt", diff_entry("bad.txt", change="modified", oldPath=123, oldContent="old\n")
            )
        )
        await ws.hold()

    hostile.route(rf"/api/task-attempts/{ATTEMPT}/diff/ws", diff)
    args = ["--follow"] if follow else []
    cli = Cli(hostile.url, "--api", "forge", "diff", ATTEMPT, "--json", *args)
    try:
        if follow:
            wait_for(lambda: cli.count() or cli.proc.poll() is not None, 15, "a diff_update")
            assert cli.proc.poll() is None, hostile_context(hostile, cli)
            cli.signal()
            assert cli.wait(10) == -signal.SIGINT, hostile_context(hostile, cli)
        else:
            assert cli.wait(15) == 0, hostile_context(hostile, cli)
        (update,) = cli.json_lines()
        assert "good.txt" in update["diff"] and update["filesChanged"] >= 1
        assert "Traceback" not in cli.stderr and "error:" not in cli.stderr, cli.stderr
        assert "warning" in cli.stderr, cli.stderr  # the bad entry is reported
    finally:
        cli.kill()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_trickling_rest_answer_does_not_outlive_a_signal(hostile: HostileForge, sig: int) -> None:
    """``logs`` asks REST for the process's run reason; that answer trickles (a byte a
    second). Ctrl-C / SIGTERM must end forgectl at once all the same."""
    body = json.dumps({"success": True, "data": process_record(PROC, ATTEMPT)}).encode()

    async def slow(writer: asyncio.StreamWriter, _: re.Match[str]) -> None:
        writer.write(json_answer_head(len(body)))
        for i in range(len(body)):
            writer.write(body[i : i + 1])
            await writer.drain()
            await asyncio.sleep(1.0)

    hostile.rest(rf"/api/execution-processes/{PROC}", slow)
    cli = Cli(hostile.url, "--api", "forge", "logs", PROC, "--json")
    try:
        wait_for(
            lambda: hostile.requests(f"/api/execution-processes/{PROC}"), 10, "the REST look-up"
        )
        cli.signal(sig)
        signalled = time.monotonic()
        got = cli.wait(5)
        print(
            f"real speed: REST trickle, {sig!r}: exit {got} after {time.monotonic() - signalled:.2f}s"
        )
        assert got == -sig, f"exit {got} 5 s after the signal; " + hostile_context(hostile, cli)
    finally:
        cli.kill()


def test_a_resent_history_shorter_than_what_was_printed_is_a_warning(
    hostile: HostileForge,
) -> None:
    """First connection: entries 0-9 then the link drops; the second resends only 0-4
    and finishes. Compared with a run whose second history is whole: an extra warning."""

    def serve(resend: int) -> Cli:
        state = {"n": 0}

        async def logs(ws: RawWs, _: re.Match[str]) -> None:
            state["n"] += 1
            count = 10 if state["n"] == 1 else resend
            for text in history(count):
                await ws.send_text(text)
            if state["n"] == 1:
                await asyncio.sleep(0.6)  # printed (held entries flushed) before the drop
                ws.drop()
                return
            await ws.send_text('{"finished":true}')
            await ws.hold(10)

        hostile.route(rf"/api/execution-processes/{PROC}/normalized-logs/ws", logs)
        return Cli(hostile.url, "--api", "forge", "logs", PROC, "--follow", "--json")

    whole = serve(10)
    try:
        assert whole.wait(20) == 0, hostile_context(hostile, whole)
    finally:
        whole.kill()
    hostile._ws.clear()
    short = serve(5)
    try:
        assert short.wait(20) == 0, hostile_context(hostile, short)
        assert [e["message"] for e in short.json_lines()] == [f"entry {i}" for i in range(10)]

        def warnings(cli: Cli) -> list[str]:
            return [line for line in cli.stderr.splitlines() if "warning" in line]

        assert len(warnings(short)) > len(warnings(whole)), (
            f"no warning for the shorter history; whole run: {whole.stderr!r}; "
            f"short run: {short.stderr!r}"
        )
    finally:
        short.kill()


def test_diff_across_a_reconnect_keeps_files_not_yet_resent(hostile: HostileForge) -> None:
    """The link drops after the four files came; the new connection resends two, then
    (the server running git on a busy machine) the other two 0.6 s later. ``diff``
    must print all four: a file not resent *yet* is not a file deleted meanwhile.

    This is what made ``test_diff_exactly_once_through_chaos_cuts`` fail on a loaded
    machine: after a reconnect the first 0.3 s pause ends the burst and every file not
    yet resent is dropped from the diff."""
    files = ["a.txt", "b.txt", "c.txt", "d.txt"]
    state = {"n": 0}

    async def diff(ws: RawWs, _: re.Match[str]) -> None:
        state["n"] += 1
        if state["n"] == 1:
            for name in files:
                await ws.send_text(diff_add(name, diff_entry(name)))
            ws.drop()
            return
        for name in files[:2]:
            await ws.send_text(diff_add(name, diff_entry(name)))
        await asyncio.sleep(0.6)
        for name in files[2:]:
            await ws.send_text(diff_add(name, diff_entry(name)))
        await ws.hold()

    hostile.route(rf"/api/task-attempts/{ATTEMPT}/diff/ws", diff)
    cli = Cli(hostile.url, "--api", "forge", "diff", ATTEMPT, "--json")
    try:
        assert cli.wait(30) == 0, hostile_context(hostile, cli)
        (update,) = cli.json_lines()
        named = re.findall(r"^diff --git a/(\S+) ", update["diff"], re.M)
        assert named == files, f"{named}; stderr: {cli.stderr!r}"
        assert update["filesChanged"] == 4
    finally:
        cli.kill()


def test_diff_waits_for_a_slow_first_update(hostile: HostileForge) -> None:
    """The first diff entry comes 6 s after the connection opens (a big repository):
    ``diff`` prints it, rather than "no changes" after 5 s."""

    async def slow(ws: RawWs, _: re.Match[str]) -> None:
        await asyncio.sleep(6.0)
        await ws.send_text(diff_add("late.txt", diff_entry("late.txt")))
        await ws.hold()

    hostile.route(rf"/api/task-attempts/{ATTEMPT}/diff/ws", slow)
    cli = Cli(hostile.url, "--api", "forge", "diff", ATTEMPT, "--json")
    try:
        code = cli.wait(30)
        assert code == 0, hostile_context(hostile, cli)
        (update,) = cli.json_lines()
        assert update["filesChanged"] == 1 and "late.txt" in update["diff"], update
    finally:
        cli.kill()


def test_diff_first_wait_ends_the_wait_and_says_so(hostile: HostileForge) -> None:
    """``--first-wait 1`` against a server whose first update comes 8 s later: the
    diff is printed empty at once, and stderr says it is the wait that ended, not
    the diff (with the default wait, 10 s, late.txt would be printed)."""

    async def slow(ws: RawWs, _: re.Match[str]) -> None:
        await asyncio.sleep(8.0)
        await ws.send_text(diff_add("late.txt", diff_entry("late.txt")))
        await ws.hold()

    hostile.route(rf"/api/task-attempts/{ATTEMPT}/diff/ws", slow)
    cli = Cli(hostile.url, "--api", "forge", "diff", ATTEMPT, "--json", "--first-wait", "1")
    try:
        assert cli.wait(30) == 0, hostile_context(hostile, cli)
        (update,) = cli.json_lines()
        assert (update["filesChanged"], update["diff"]) == (0, ""), update
        notes = [line for line in cli.stderr.splitlines() if "no diff update" in line]
        assert notes == [
            "forgectl: no diff update from the server within 1 s: the attempt has "
            "no changes, or the server is still computing them (--first-wait)"
        ], cli.stderr
    finally:
        cli.kill()


def test_the_hostile_server_looks_like_forge(hostile: HostileForge) -> None:
    """Auto-detection takes it for the real server, and a plain history is read whole
    (so the tests above fail for the reason they name, not the harness)."""

    async def logs(ws: RawWs, _: re.Match[str]) -> None:
        for text in history(3):
            await ws.send_text(text)
        await ws.send_text('{"finished":true}')
        await ws.hold(10)

    hostile.route(rf"/api/execution-processes/{PROC}/normalized-logs/ws", logs)
    cli = Cli(hostile.url, "-v", "logs", PROC, "--json")
    try:
        assert cli.wait(15) == 0, hostile_context(hostile, cli)
        assert "dialect: forge" in cli.stderr
        assert [e["message"] for e in cli.json_lines()] == ["entry 0", "entry 1", "entry 2"]
    finally:
        cli.kill()
