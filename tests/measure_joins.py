"""Measure what the REAL server drops for clients that join a live agent mid-stream.

    unshare -rn sh -c 'ip link set lo up && exec .venv/bin/python tests/measure_joins.py --trials 3'

Each trial runs a scripted Claude Code session (tests/agents, the session of
test_real_speed.py's join test unless ``--seed`` picks another), one plain websockets
client per stream connected before it starts (the reference), and ``--joins`` plain
clients per stream (normalized-logs and raw-logs) that connect at random moments.
Afterwards each joiner's ops are aligned with the reference's: what is missing, and
whether the end state still differs from the server's final one. With
``--forgectl`` the same moments get ``forgectl logs -f --json`` followers, compared
with the final state field by field, and ``forgectl logs -f --raw`` followers,
compared byte for byte with the final output; for the raw ones, how much later than
the reference client each live line reached forgectl's stdout (forgectl holds raw
output until a second reading of the history confirms it). One line per trial, then
the totals.
"""

from __future__ import annotations

import argparse
import difflib
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agents import AgentBed, claude
from forge_bed import (
    Cli,
    WsFollower,
    compare_entries,
    final_entries,
    final_raw,
    join_stress_session,
    loss,
    ops,
    reduce_forgectl,
    start_agent,
    wait_for,
)
from forge_server import TERMINAL_STATUSES, ForgeServer


def missing_ops(reference: list[Any], got: list[Any], key: str) -> list[str]:
    """The reference's ops a joiner never got (raw: compared by content, since the
    server renumbers raw entries per connection)."""

    def k(op: dict[str, Any]) -> str:
        return json.dumps(op["value"]["content"] if key == "content" else op, sort_keys=True)

    a, b = [k(o) for o in reference], [k(o) for o in got]
    out = []
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag in ("delete", "replace"):
            out += [f"{reference[i]['op']} {reference[i]['path']}" for i in range(i1, i2)]
    return out


def trial(
    server: ForgeServer, bed: AgentBed, n: int, seed: int, joins: int, cli: bool
) -> dict[str, int]:
    script = claude.script(join_stress_session(seed), gate=True)
    run = start_agent(server, bed, script, f"measure{n}")
    bed.wait_started(run.marker)
    routes = {
        "normalized": f"/api/execution-processes/{run.process_id}/normalized-logs/ws",
        "raw": f"/api/execution-processes/{run.process_id}/raw-logs/ws",
    }
    ref = {kind: WsFollower(server.ws_url, route) for kind, route in routes.items()}
    wait_for(lambda: all(f.opened for f in ref.values()), 10, "the reference clients")
    bed.release(run.marker)
    started = time.monotonic()
    rng = random.Random(seed * 1000 + n)
    moments = sorted(rng.uniform(0.3, claude.duration(script) * 0.9) for _ in range(joins))
    joined: dict[str, list[WsFollower]] = {"normalized": [], "raw": []}
    followers: list[Cli] = []
    raw_followers: list[Cli] = []
    for at in moments:
        wait_for(lambda: time.monotonic() - started >= at, 120, "a join moment")  # noqa: B023
        for kind, route in routes.items():
            joined[kind].append(WsFollower(server.ws_url, route))
        if cli:
            followers.append(Cli(server.url, "logs", run.process_id, "--follow", "--json"))
            raw_followers.append(Cli(server.url, "logs", run.process_id, "--follow", "--raw"))
    server.wait_for_process(run.attempt_id, "codingagent", TERMINAL_STATUSES, 120)
    for f in [*ref.values(), *joined["normalized"], *joined["raw"]]:
        f.done.wait(30)
    for c in [*followers, *raw_followers]:
        c.wait(30)
    oracle = final_entries(server, run.process_id, reads=2)
    counts = {
        "joins": joins,
        "n_short": 0,
        "n_visible": 0,
        "raw_short": 0,
        "cli_complete": 0,
        "cli_raw_complete": 0,
    }
    details = []
    for f in joined["normalized"]:
        lost = missing_ops(ops(ref["normalized"].frames), ops(f.frames), "op")
        if lost:
            counts["n_short"] += 1
            details.append("N " + ", ".join(lost))
        if not loss(f.frames, oracle).complete:
            counts["n_visible"] += 1
    for f in joined["raw"]:
        lost = missing_ops(ops(ref["raw"].frames), ops(f.frames), "content")
        if lost:
            counts["raw_short"] += 1
            details.append(f"R {len(lost)} chunk(s); {len(ops(f.frames))} entries numbered 0..")
    for c in followers:
        if not compare_entries(oracle, reduce_forgectl(c.json_lines())):
            counts["cli_complete"] += 1
        c.kill()
    final = final_raw(server, run.process_id)["stdout"] if cli else ""
    delays: list[float] = []
    for c in raw_followers:
        if c.stdout == final:
            counts["cli_raw_complete"] += 1
        else:
            details.append(f"forgectl raw: {len(c.stdout)} of {len(final)} bytes")
        if c.lines:
            delays += live_delays(ref["raw"], c)
        c.kill()
    for raw_cli, json_cli in zip(raw_followers, followers, strict=True):
        if raw_cli.line_times and json_cli.line_times:
            FIRST["raw"].append(raw_cli.line_times[0] - raw_cli.started)
            FIRST["json"].append(json_cli.line_times[0] - json_cli.started)
    if delays:
        delays.sort()
        LATENCIES.extend(delays)
    print(
        f"trial {n}: {len(oracle)} entries, {len(ops(ref['normalized'].frames))} ops; "
        f"normalized joiners short {counts['n_short']}/{joins} "
        f"(end state wrong {counts['n_visible']}), raw joiners short {counts['raw_short']}/{joins}"
        + (
            f", forgectl complete {counts['cli_complete']}/{joins}, "
            f"forgectl raw complete {counts['cli_raw_complete']}/{joins}"
            + (f", raw delay {_summary(delays)}" if delays else "")
            if cli
            else ""
        ),
        flush=True,
    )
    for line in details:
        print("   ", line[:200])
    return counts


#: Every live raw line's delay, over all trials.
LATENCIES: list[float] = []
#: Seconds from starting forgectl to its first line: raw (held until a second
#: reading confirms it) and JSON followers started at the same moments.
FIRST: dict[str, list[float]] = {"raw": [], "json": []}


def live_delays(reference: WsFollower, follower: Cli) -> list[float]:
    """For each line forgectl printed that the reference client received after
    forgectl's first line (live for it, not history): how much later forgectl
    printed it."""
    available: list[tuple[int, float]] = []  # (bytes of stdout so far, when)
    size = 0
    for frame, at in zip(reference.frames, reference.times, strict=True):
        for op in frame.get("JsonPatch", []) if isinstance(frame, dict) else []:
            value = op.get("value") or {}
            if value.get("type") == "STDOUT":
                size += len(value["content"])
                available.append((size, at))
    delays, printed, i = [], 0, 0
    for line, at in zip(follower.lines, follower.line_times, strict=True):
        printed += len(line)
        while i < len(available) and available[i][0] < printed:
            i += 1
        if i == len(available):
            break
        came = available[i][1]
        if came >= follower.line_times[0]:  # produced after it printed its first line
            delays.append(at - came)
    return delays


def _summary(delays: list[float]) -> str:
    ms = sorted(d * 1000 for d in delays)

    def pick(q: float) -> float:
        return ms[min(len(ms) - 1, int(q * len(ms)))]

    return f"p50 {pick(0.5):.0f} ms, p95 {pick(0.95):.0f} ms, max {ms[-1]:.0f} ms ({len(ms)})"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--joins", type=int, default=10)
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--forgectl", action="store_true", help="also forgectl logs -f followers")
    opts = p.parse_args()
    bed = AgentBed(Path(tempfile.mkdtemp(prefix="forgectl-agents-")))
    total: dict[str, int] = {}
    with ForgeServer(path_prefix=[bed.bin_dir]) as server:
        for n in range(opts.trials):
            for key, value in trial(
                server, bed, n, opts.seed + n, opts.joins, opts.forgectl
            ).items():
                total[key] = total.get(key, 0) + value
    print("total:", json.dumps(total))
    if LATENCIES:
        print("forgectl raw live-line delay behind a plain client:", _summary(LATENCIES))
    if FIRST["raw"]:
        print("forgectl start to first line, raw -f:", _summary(FIRST["raw"]))
        print("forgectl start to first line, JSON -f:", _summary(FIRST["json"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
