"""The scripted-agent test bed (tests/agents) against the REAL Forge server.

Proves that the stand-in is what the real server runs for a ``CLAUDE_CODE`` attempt,
that the server normalizes its stream-json as tests/agents/claude.py says (so other
tests may take ``claude.expected`` and the server's final state as their oracle), that
several sessions run at once, and that a stand-in fails loudly when it cannot play.

    unshare -rn sh -c 'ip link set lo up && exec .venv/bin/python -m pytest -q tests/test_agents.py'
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from agents import AgentBed, claude
from forge_bed import (
    WsFollower,
    compare_entries,
    final_entries,
    final_raw,
    loss,
    ops,
    reduce_forgectl,
    start_agent,
    wait_for,
)
from forge_server import TERMINAL_STATUSES, ForgeServer

pytestmark = [pytest.mark.forge, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def server(agent_server: ForgeServer) -> ForgeServer:
    """The real server, its coding agents played by ``bed`` (tests/conftest.py)."""
    return agent_server


def entries_in_order(server: ForgeServer, process_id: str) -> list[dict[str, Any]]:
    """One fresh read of a finished process: its final entries in index order."""
    return [e for _, e in sorted(final_entries(server, process_id, reads=1).items())]


def finished(server: ForgeServer, attempt_id: str, timeout: float = 30) -> dict[str, object]:
    return server.wait_for_process(attempt_id, "codingagent", TERMINAL_STATUSES, timeout)


def assert_matches(oracle: dict[int, object], session: claude.Session, server: ForgeServer) -> None:
    want = claude.expected(session)
    stdout_made = [oracle[i] for i in sorted(oracle)][: len(want)]
    problems = [
        f"index {i}: {p}"
        for i, (entry, w) in enumerate(zip(stdout_made, want, strict=False))
        for p in claude.check(entry, w)  # type: ignore[arg-type]
    ]
    assert len(oracle) >= len(want), f"server has {len(oracle)} entries, expected {len(want)}"
    assert not problems, "\n".join(problems) + "\nserver log:\n" + server.log_tail()


def test_every_tool_kind_normalized_as_the_generator_says(
    server: ForgeServer, bed: AgentBed
) -> None:
    turns = [claude.Turn([claude.Thinking("Let me look."), claude.Text("I will run the tools.")])]
    turns += [claude.Turn([claude.Text(f"Now {t.name}."), t]) for t in claude.all_tools()]
    turns.append(claude.Turn([claude.Text("All done: " + "word " * 40)]))
    session = claude.Session(
        turns, junk=["npm warn: not json"], system=["compact_boundary"], stderr=["boom", "bang"]
    )
    run = start_agent(server, bed, claude.script(session), "alltools")
    proc = finished(server, run.attempt_id)
    assert (proc["status"], proc["exit_code"]) == ("completed", 0), bed.failures()
    # Once the process has ended, every connection re-normalizes its log, stdout and
    # stderr in parallel: the stderr entry lands at a different index on each read
    # (measured: 37, 12, 4, 4). So compare in order without it, and it on its own.
    rests: list[list[dict[str, Any]]] = []
    for _ in range(6):  # a read can itself come up short (see final_entries)
        read = entries_in_order(server, run.process_id)
        rest = [e for e in read if e["entry_type"]["type"] != "error_message"]
        if rest in rests:
            break
        rests.append(rest)
    else:
        raise AssertionError("no two reads agree")
    assert_matches(dict(enumerate(rest)), session, server)
    assert len(rest) == len(claude.expected(session))
    # stderr after the result: one error_message with both lines
    assert [e["content"] for e in read if e["entry_type"]["type"] == "error_message"] == [
        "boom\nbang\n"
    ]
    record = bed.run_record(run.marker)
    assert record is not None and record["argv"][:2] == ["npx", "-y"]
    prompt = [line for line in record["stdin"] if '"type":"user"' in line]
    assert len(prompt) == 1 and run.marker in prompt[0]
    raw = final_raw(server, run.process_id)
    assert raw["stderr"] == "boom\nbang\n"
    assert raw["stdout"].count("\n") == len(claude.script(session)["steps"]) - 2


def test_streamed_text_is_replaced_delta_by_delta(server: ForgeServer, bed: AgentBed) -> None:
    """A follower connected before the session starts sees one ``add`` per entry and a
    ``replace`` per further delta (and one for the repeating assistant message)."""
    text = "streamed " * 30
    session = claude.Session([claude.Turn([claude.Text(text, chunk=5, interval=0.005)])])
    run = start_agent(server, bed, claude.script(session, gate=True), "deltas")
    bed.wait_started(run.marker)
    follower = WsFollower(
        server.ws_url, f"/api/execution-processes/{run.process_id}/normalized-logs/ws"
    )
    wait_for(lambda: follower.opened, 10, "the follower to connect")
    bed.release(run.marker)
    assert follower.done.wait(30), "no finished marker"
    assert follower.error is None, follower.error
    kinds = Counter(op["op"] for op in ops(follower.frames))
    assert kinds["add"] == 2  # the model line, the text
    assert kinds["replace"] == claude.replaces(session)
    assert_matches(final_entries(server, run.process_id, reads=2), session, server)


def test_sessions_run_side_by_side(server: ForgeServer, bed: AgentBed) -> None:
    sessions = {
        f"side{n}": claude.busy_session(n, turns=6, deltas_per_second=200) for n in range(3)
    }
    runs = {name: start_agent(server, bed, claude.script(s), name) for name, s in sessions.items()}
    for name, run in runs.items():
        proc = finished(server, run.attempt_id)
        assert proc["status"] == "completed", (name, bed.failures())
        assert_matches(final_entries(server, run.process_id, reads=2), sessions[name], server)
        record = bed.run_record(run.marker)
        assert record is not None and record["name"] == name


def test_queued_script_for_a_task_without_marker(server: ForgeServer, bed: AgentBed) -> None:
    session = claude.Session([claude.Turn([claude.Text("from the queue")])])
    bed.enqueue(claude.script(session))
    repo = server.make_repo("queued")
    project = server.create_project("queued", repo)
    task = server.create_task(project["id"], "no marker here")
    attempt = server.create_attempt(task["id"])["id"]
    proc = finished(server, attempt, timeout=40)  # waits MARKER_WAIT for a marker first
    assert proc["status"] == "completed", bed.failures()
    assert_matches(final_entries(server, proc["id"], reads=2), session, server)  # type: ignore[arg-type]


def test_unknown_command_line_fails_clearly(bed: AgentBed) -> None:
    proc = subprocess.run(
        [str(bed.bin_dir / "npx"), "-y", "some-other-package"],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "no executor module recognises this command line" in proc.stderr
    assert '"some-other-package"' in proc.stderr


def test_missing_script_fails_clearly(tmp_path: Path) -> None:
    bed = AgentBed(tmp_path / "empty")
    argv = [
        str(bed.bin_dir / "npx"),
        "-y",
        "@anthropic-ai/claude-code@2.0.31",
        *claude.REQUIRED_FLAGS,
    ]
    proc = subprocess.run(
        argv,
        input='{"type":"user","message":{"role":"user","content":"forgectl-session:nope"}}\n',
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert "cannot read script" in proc.stderr and "nope.json" in proc.stderr
    assert bed.failures() == [proc.stderr.strip()]


def test_the_oracle_comparison_sees_every_kind_of_difference() -> None:
    """compare_entries and loss must fail where forgectl or a connection falls short."""
    server_state = {
        0: {"entry_type": {"type": "assistant_message"}, "content": "final text"},
        1: {
            "entry_type": {"type": "tool_use", "tool_name": "Bash", "status": {"status": "failed"}},
            "content": "`ls`",
        },
    }

    def line(index: int, message: str, revision: int = 0, **meta: Any) -> dict[str, Any]:
        return {
            "level": meta.pop("level", "info"),
            "message": message,
            "metadata": {"index": index, "revision": revision, **meta},
        }

    right = [
        line(0, "final", entryType="assistant_message"),
        line(0, "final text", 1, entryType="assistant_message"),
        line(
            1,
            "ls",
            level="error",
            entryType="tool_use",
            content="`ls`",
            tool={"name": "Bash", "status": "failed"},
        ),
    ]
    assert compare_entries(server_state, reduce_forgectl(right)) == []
    stale = right[:1] + right[2:]
    assert (
        "message 'final' != server's final 'final text'"
        in compare_entries(server_state, reduce_forgectl(stale))[0]
    )
    assert compare_entries(server_state, reduce_forgectl(right[:2]))[0].startswith(
        "index 1: missing"
    )
    created = [
        *right[:2],
        line(
            1,
            "ls",
            level="info",
            entryType="tool_use",
            content="`ls`",
            tool={"name": "Bash", "status": "created"},
        ),
    ]
    problems = compare_entries(server_state, reduce_forgectl(created))
    assert any("level" in p for p in problems) and any("status" in p for p in problems)
    frames = [
        {
            "JsonPatch": [
                {
                    "op": "add",
                    "path": "/entries/0",
                    "value": {
                        "type": "NORMALIZED_ENTRY",
                        "content": {
                            "entry_type": {"type": "assistant_message"},
                            "content": "final",
                        },
                    },
                }
            ]
        },
    ]
    got = loss(frames, server_state)
    assert (got.lost_indices, got.stale_indices, got.complete) == ([1], [0], False)
