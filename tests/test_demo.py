"""The README's first set-up command, ``bash tests/demo.sh``, runs forgectl's main job
against the real binary: this runs the same script (tests/demo.py) with its output
piped, so every command prints JSON lines, and checks what each one printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent

pytestmark = [pytest.mark.forge, pytest.mark.timeout(240)]


def sections(out: str) -> dict[str, list[str]]:
    """The demo's output: each ``$ forgectl ...`` banner and the lines after it."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in out.splitlines():
        if line.startswith("$ "):
            current = found.setdefault(line[2:], [])
        elif line:
            current.append(line)
    return found


def objects(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def entries(lines: list[str]) -> list[dict[str, Any]]:
    """The log entries among ``lines`` (not the monitor's events)."""
    return [e for e in objects(lines) if "level" in e]


def test_the_demo_runs_end_to_end(forge_binary: Path) -> None:
    env = {
        **os.environ,
        "FORGECTL_FORGE_BIN": str(forge_binary),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(
        [sys.executable, str(TESTS / "demo.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=200,
    )
    report = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.returncode == 0, report
    assert "Traceback" not in done.stderr and "error:" not in done.stderr, report
    out = sections(done.stdout)
    by_command = {banner.split(" ", 2)[1]: lines for banner, lines in out.items()}
    assert len(out) == 10, report

    # The monitor runs in the background all along: its events land in every section.
    logs = [lines for banner, lines in out.items() if banner.startswith("forgectl logs")]
    setup, raw, agent = logs[0], logs[1], logs[2]
    # The script writes the warning to stderr, then "setup done" to stdout: the server
    # reads the two pipes apart, so on a busy machine they can land either way round.
    # forgectl's entries are in the order the server has them (its raw output).
    server_order = [x for x in raw if not x.startswith("{")][-2:]
    assert sorted(server_order) == ["setup done", "warning: 1 deprecated API"], report
    assert [e["message"] for e in entries(setup)][-2:] == server_order, report
    session = entries(agent)
    tools = [e["metadata"]["tool"] for e in session if "tool" in e["metadata"]]
    assert [t["action"] for t in tools] == ["command_run", "file_edit", "command_run"], report
    assert "2 passed" in tools[-1]["output"] and tools[0]["status"] == "failed", report
    assert session[-1]["message"] == "All tests pass now.", report

    diff = next(lines for banner, lines in out.items() if banner.startswith("forgectl diff"))
    updates = [e for e in objects(diff) if e.get("type") == "diff_update"]
    assert updates and (updates[0]["filesChanged"], updates[0]["insertions"]) == (2, 3), report
    listed = [p for p in objects(by_command["ps"]) if "type" not in p]
    assert [p["runReason"] for p in listed] == ["devserver", "codingagent", "setupscript"], report
    assert [p["status"] for p in listed] == ["killed", "completed", "completed"], report
    # logs --attempt --raw --tail 3, piped: the bytes of the last 3 lines of each of
    # the 3 processes (the agent's own lines are JSON; the monitor's events are not)
    printed = [
        x for x in logs[-1] if not x.startswith(('{"type":"process_', "(monitor", "Forge server"))
    ]
    assert len(printed) == 9 and printed[-1].startswith("dev server: request"), "\n".join(printed)
    events = {e["type"] for e in objects(done.stdout.splitlines()) if "type" in e}
    assert {"process_started", "process_completed", "process_stopped"} <= events, report
    assert "(monitor stopped with Ctrl-C: died by signal 2" in done.stdout, report
