"""Playing a scripted agent session on the REAL Forge server, with followers.

:func:`play` starts an attempt whose agent plays a script of ``tests/agents``, and
follows it from its first entry with three clients: a plain websockets client (what
the server sent: every version of every entry), ``forgectl logs -f --json`` and
``forgectl logs -f`` on a pseudo-terminal (the pretty view, as a person sees it).
:class:`Rule` s open the stand-in's gates and answer approvals through REST, as a
person would: once the terminal and the JSON show the approval.

Used by tests/test_agent_sessions.py, and by ``python tests/session_player.py``,
which plays a short Claude Code session and prints the screen (the README's capture).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents import AgentBed, Script
from forge_bed import Cli, WsFollower, ops, wait_for
from forge_server import TERMINAL_STATUSES, ForgeServer
from ptyrun import PtyRun
from support import EXE, note


@dataclass
class Rule:
    """What the test does when an entry version matching ``when`` arrives: open a
    gate of the stand-in, and/or answer the entry's pending approval."""

    when: Callable[[dict[str, Any]], bool]
    gate: str | None = None
    answer: dict[str, Any] | None = None
    fired: bool = False
    response: tuple[int, str] | None = None


@dataclass
class Played:
    process_id: str
    record: dict[str, Any]
    ops: list[dict[str, Any]]
    json_lines: list[dict[str, Any]]
    screen: str
    rules: list[Rule]
    stderr: dict[str, str] = field(default_factory=dict)

    def versions(self) -> dict[int, list[dict[str, Any]]]:
        """index → every version the server sent, in order."""
        out: dict[int, list[dict[str, Any]]] = {}
        for op in self.ops:
            if op["op"] in ("add", "replace"):
                index = int(op["path"].rsplit("/", 1)[1])
                out.setdefault(index, []).append(op["value"]["content"])
        return out

    def finals(self) -> dict[int, dict[str, Any]]:
        return {i: v[-1] for i, v in self.versions().items()}


def tool_of(content: dict[str, Any]) -> dict[str, Any]:
    et = content["entry_type"]
    return et if et.get("type") == "tool_use" else {}


def status_of(content: dict[str, Any]) -> Any:
    return (tool_of(content).get("status") or {}).get("status")


def status_in(line: dict[str, Any]) -> Any:
    """The tool status of one of forgectl's JSON lines."""
    return ((line.get("metadata") or {}).get("tool") or {}).get("status")


def call_is(tool_id: str, status: str) -> Callable[[dict[str, Any]], bool]:
    """A Claude tool call (by its ``tool_use`` id) in ``status``."""

    def when(content: dict[str, Any]) -> bool:
        details = content.get("metadata") or {}
        return details.get("tool_call_id") == tool_id and status_of(content) == status

    return when


def play(
    server: ForgeServer,
    bed: AgentBed,
    name: str,
    script: Script,
    profile: dict[str, str],
    rules: list[Rule],
    *,
    opening: int,
) -> Played:
    """Run ``script`` as ``profile``'s agent; its first ``opening`` steps make an entry,
    then it waits until every follower has printed that entry (so none joins late,
    when the server may drop ops: tests/FORGE_NOTES.md) before it goes on."""
    steps = list(script["steps"])
    at = steps[opening - 1][0] if opening else 0.0
    steps.insert(opening, [at, "gate", "followers"])
    marker = bed.add({**script, "steps": steps, "gate": False}, name)
    repo = server.make_repo(name)
    project = server.create_project(name, repo)
    task = server.create_task(project["id"], "Fix the login check", f"Scripted session {marker}")
    attempt = server.api(
        "POST",
        "/api/task-attempts",
        json={"task_id": task["id"], "executor_profile_id": profile, "base_branch": "main"},
    )
    proc = server.wait_for_process(
        attempt["id"], "codingagent", {"running", *TERMINAL_STATUSES}, 20
    )
    assert proc["status"] == "running", (proc, bed.failures(), server.log_tail())
    pid = proc["id"]
    route = f"/api/execution-processes/{pid}/normalized-logs/ws"
    plain = WsFollower(server.ws_url, route)
    as_json = Cli(server.url, "logs", pid, "-f", "--json")
    pretty = PtyRun([EXE, "-s", server.url, "logs", pid, "-f", "--color", "never"])
    note(
        f"forgectl -s {server.url} logs {pid} -f (on a terminal): stderr",
        lambda: pretty.stderr,
    )
    try:
        wait_for(lambda: plain.frames, 30, f"the first entry ({bed.failures()})")
        wait_for(as_json.json_lines, 30, "forgectl --json to print the first entry")
        pretty.wait_for(bool, 30, "the first entry")
        bed.open(marker, "followers")
        waiting: list[tuple[Rule, str, int]] = []  # approvals to answer, the n-th asked
        asked = 0
        deadline = time.monotonic() + 120
        seen = 0
        while not plain.done.is_set():
            assert time.monotonic() < deadline, (
                f"no end of stream; {bed.failures()}\n{server.log_tail()}"
            )
            frames = list(plain.frames)
            for op in ops(frames[seen:]):
                value = op.get("value")
                if not isinstance(value, dict) or value.get("type") != "NORMALIZED_ENTRY":
                    continue
                for rule in rules:
                    if not rule.fired and rule.when(value["content"]):
                        rule.fired = True
                        if rule.gate is not None:
                            bed.open(marker, rule.gate)
                        if rule.answer is not None:
                            approval = value["content"]["entry_type"]["status"]["approval_id"]
                            asked += 1
                            waiting.append((rule, approval, asked))
            seen = len(frames)
            # A person answers once the terminal asks (and so does the JSON): the
            # pending version must reach both before the decision replaces it.
            for rule, approval, n in list(waiting):
                asked = pretty.text.count("APPROVAL NEEDED") >= n and (
                    sum(status_in(line) == "pending_approval" for line in as_json.json_lines()) >= n
                )
                if asked:
                    waiting.remove((rule, approval, n))
                    r = server.request(
                        "POST",
                        f"/api/approvals/{approval}/respond",
                        json={"execution_process_id": pid, "status": rule.answer},
                    )
                    rule.response = (r.status_code, r.text)
            time.sleep(0.01)
        assert plain.error is None, plain.error
        assert as_json.wait(60) == 0, as_json.describe()
        assert pretty.wait(60) == 0, f"{pretty.text}\n{pretty.stderr}"
        end = server.wait_for_process(attempt["id"], "codingagent", TERMINAL_STATUSES, 30)
    finally:
        as_json.kill()
        pretty.kill()
        plain.stop()
    record = bed.run_record(marker)
    assert record is not None
    return Played(
        pid,
        {**record, "process": end},
        ops(plain.frames),
        as_json.json_lines(),
        pretty.text,
        rules,
        {"json": as_json.stderr, "pretty": pretty.stderr},
    )


def demo_session() -> tuple[Script, list[Rule]]:
    """A short Claude Code session: what the README's capture shows."""
    from agents import claude, claude_approvals

    failing = (
        "F.\n"
        "=================================== FAILURES ===================================\n"
        "_________________________________ test_login __________________________________\n"
        "    def test_login():\n"
        ">       assert login(User(active=True))\n"
        "E       assert False\n"
        "tests/test_auth.py:5: AssertionError\n"
        "1 failed, 1 passed in 0.03s"
    )
    passing = "\n".join(f"tests/test_auth.py::test_{n} PASSED" for n in range(1, 12))
    edit = claude.Tool(
        "Edit",
        {
            "file_path": "${cwd}/src/auth.py",
            "old_string": "    return False\n",
            "new_string": "    if not user:\n        return False\n    return user.active\n",
        },
        "The file src/auth.py has been updated.",
    )
    todos = {
        "todos": [
            {"content": "Find why login fails", "status": "completed", "activeForm": "Finding"},
            {"content": "Fix the check", "status": "in_progress", "activeForm": "Fixing"},
            {"content": "Run the tests", "status": "pending", "activeForm": "Running"},
        ]
    }
    commit = claude.Tool(
        "Bash",
        {"command": 'git commit -am "Check that the user is active"'},
        "[main 3f2a9c1] 1 file",
    )
    turns = [
        claude.Turn(
            [
                claude.Thinking("login() returns False for every user; read it first."),
                claude.Text("I'll look at the login check and run the tests."),
                claude.Tool("Read", {"file_path": "${cwd}/src/auth.py"}, "def login(user): ..."),
            ]
        ),
        claude.Turn([claude.Tool("Bash", {"command": "pytest -q"}, failing, is_error=True)]),
        claude.Turn([claude.Tool("TodoWrite", todos, "Todos have been modified successfully")]),
        claude.Turn([claude.Text("The check never looks at the user. Fixing it:"), edit]),
        claude.Turn([claude.Tool("Bash", {"command": "pytest -v"}, passing + "\n11 passed")]),
        claude.Turn([claude.Text("All tests pass. Committing."), commit]),
        claude.Turn([claude.Text("Fixed: login() now returns whether the user is active.")]),
    ]
    script = claude.script(claude.Session(turns))
    tool_id = next(
        i
        for i, name in claude_approvals.tool_ids(script).items()
        if name == "Bash" and "commit" in json.dumps(claude_approvals.input_of(script, i))
    )
    script = claude_approvals.with_approval(script, tool_id, "commit-seen", 1)
    rules = [
        Rule(call_is(tool_id, "created"), gate="commit-seen"),
        Rule(call_is(tool_id, "pending_approval"), answer={"status": "approved"}),
    ]
    return script, rules


def main() -> int:
    """Play :func:`demo_session` on the real server and print what the terminal showed.

    Run inside the private network namespace the real server needs::

        unshare -rn sh -c 'ip link set lo up && exec .venv/bin/python tests/session_player.py'
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="forgectl-demo-") as tmp:
        bed = AgentBed(Path(tmp) / "agents")
        with ForgeServer(path_prefix=[bed.bin_dir]) as server:
            script, rules = demo_session()
            # step 0: system/init (no entry); 1: message_start ("System initialized")
            profile = {"executor": "CLAUDE_CODE"}
            played = play(server, bed, "demo", script, profile, rules, opening=2)
    sys.stdout.write(played.screen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
