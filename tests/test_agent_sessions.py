"""Agent sessions on the REAL Forge binary, for three executors, in JSON and on a terminal.

Each session (tests/agents: ``claude_approvals.full_session``, ``codex.full_session``,
``gemini.full_session``) produces every tool kind its executor's normalizer makes,
failed commands, edits, todos, errors and, where the executor can have one, a pending
approval answered through REST. Three clients follow it from before it starts:

* a plain websockets client: what the server sent (every version of every entry);
* ``forgectl logs -f --json``: each of its lines must be the server's entry at that
  index mapped through the schema, a version the server sent, in order, the last one
  its final version; and nothing of the entry may be missing (``agents.oracle``
  rebuilds the server's entry from the line);
* ``forgectl logs -f`` on a pseudo-terminal (pretty): what a person sees, live.

    unshare -rn sh -c 'ip link set lo up && exec .venv/bin/python -m pytest -q tests/test_agent_sessions.py'
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from agents import AgentBed, claude_approvals, codex, gemini
from agents.oracle import diff_lines, lost
from forge_server import ForgeServer
from session_player import Played, Rule, call_is, demo_session, play, status_of, tool_of
from support import EXE, note

from forgectl.dialects.forge.schema import entry_line

README = Path(__file__).resolve().parent.parent / "README.md"

pytestmark = [pytest.mark.forge, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def server(agent_server: ForgeServer) -> ForgeServer:
    """The real server, its coding agents played by ``bed`` (tests/conftest.py)."""
    return agent_server


# -- what every session must show --------------------------------------------------------


def check_json(played: Played) -> None:
    """forgectl's lines against the server's versions, field by field."""
    versions = played.versions()
    printed: dict[int, list[dict[str, Any]]] = {}
    for line in played.json_lines:
        printed.setdefault(line["metadata"]["index"], []).append(line)
    problems: list[str] = []
    for index, lines in sorted(printed.items()):
        if index not in versions:
            problems.append(f"index {index}: never sent by the server ({lines[0]['message']!r})")
            continue
        revisions = [line["metadata"]["revision"] for line in lines]
        if revisions != list(range(len(lines))):
            problems.append(f"index {index}: revisions {revisions}")
        at = 0
        for line in lines:
            mapped = [entry_line(v, index) for v in versions[index]]
            match = next(
                (k for k in range(at, len(mapped)) if not diff_lines(mapped[k] or {}, line)), None
            )
            if match is None:
                near = diff_lines(mapped[-1] or {}, line)
                problems.append(f"index {index} rev {line['metadata']['revision']}: {near[:4]}")
                continue
            problems += [f"index {index}: {p}" for p in lost(versions[index][match], line)]
            at = match + 1
        final = entry_line(versions[index][-1], index) or {}
        problems += [f"index {index} final: {p}" for p in diff_lines(final, lines[-1])[:4]]
    problems += [
        f"index {i}: not printed ({v[-1]['content']!r:.60})"
        for i, v in sorted(versions.items())
        if i not in printed
    ]
    for name, err in played.stderr.items():
        assert "Traceback" not in err and "error:" not in err, f"forgectl {name}: {err}"
    assert not problems, "\n".join(problems)


def kinds(played: Played) -> set[str]:
    """Everything the session made the server send: entry types, actions, statuses,
    file changes, exit statuses, result types."""
    out: set[str] = set()
    for version in (v for vs in played.versions().values() for v in vs):
        et = version["entry_type"]
        out.add(et["type"])
        if et["type"] == "error_message":
            out.add("error:" + et["error_type"]["type"])
        if et["type"] != "tool_use":
            continue
        action = et["action_type"]
        out.add("action:" + action["action"])
        out.add("status:" + et["status"]["status"])
        for change in action.get("changes") or ():
            out.add("change:" + change["action"])
        result = action.get("result")
        if isinstance(result, dict) and action["action"] == "command_run" and result["exit_status"]:
            out.add("exit:" + result["exit_status"]["type"])
        if isinstance(result, dict) and action["action"] == "tool":
            out.add("result:" + result["type"]["type"])
    return out


#: What a person must find on the screen for each kind of tool call.
COMMON_SCREEN = [
    r"^✗ \$ (bash -lc )?pytest -q  (exit 1|failed)$",
    r"^✓ .*\$ .*ls",
    r"^[•✓] read ",
    r"^[•✓] write src/new\.py \+1$",
    r"^  │ \+print\('hi'\)$",
]
TODOS = [r"^[•✓] todos$", r"^    \[x\] ", r"^    \[~\] "]


def check_screen(played: Played, expected: list[str]) -> None:
    screen = played.screen
    assert "--:--:--" not in screen
    assert "\x1b" not in screen  # --color never, and server text escaped
    for pattern in COMMON_SCREEN + expected:
        assert re.search(pattern, screen, re.M), f"{pattern!r} not on the screen:\n{screen}"
    # A tool call shows once it settles, and again only when what it shows changes:
    # never three times (the JSON prints every version).
    tool_lines = [
        line for line in screen.splitlines() if re.match(r"^(?:[•✓✗⊘⌛?] | APPROVAL NEEDED )", line)
    ]
    for line in set(tool_lines):
        assert tool_lines.count(line) <= 2, (line, screen)


def readme_recipes(server: ForgeServer, process_id: str) -> None:
    """The README's jq recipes for agent sessions print what they say they do."""
    recipes = [
        line.split("  # real server")[0]
        for line in README.read_text(encoding="utf-8").splitlines()
        if line.endswith("  # real server")
    ]
    assert len(recipes) == 3
    if shutil.which("jq") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("jq is not installed")
        return
    env = {
        **os.environ,
        "FORGE_URL": server.url,
        "PATH": f"{Path(EXE).parent}:{os.environ['PATH']}",
    }
    out = []
    for recipe in recipes:
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", recipe.replace("3f2a…", process_id)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        note(f"{recipe} (exit {done.returncode}): stderr", done.stderr)
        assert done.returncode == 0, (recipe, done.stderr)
        out.append(done.stdout.splitlines())
    commands, failed, edits = out
    assert commands[:2] == ["bash -lc ls src", "bash -lc pytest -q"]
    assert any('"exitCode":1' in line for line in failed)
    assert any('"newPath":"b.py"' in line for line in edits) and len(edits) >= 5


# -- the sessions ---------------------------------------------------------------------------


def test_claude_code_session_with_partial_messages_and_approvals(
    server: ForgeServer, bed: AgentBed
) -> None:
    _, script, approvals = claude_approvals.full_session()
    rules: list[Rule] = []
    for tool_id, (_, gate, answer) in approvals.items():
        rules.append(Rule(call_is(tool_id, "created"), gate=gate))
        rules.append(Rule(call_is(tool_id, "pending_approval"), answer=answer))
    played = play(server, bed, "claude-full", script, {"executor": "CLAUDE_CODE"}, rules, opening=1)
    assert (played.record["process"]["status"], played.record["process"]["exit_code"]) == (
        "completed",
        0,
    )
    assert all(r.fired for r in rules), [(r.gate, r.answer) for r in rules if not r.fired]
    assert [r.response[0] for r in rules if r.response] == [200, 200]
    check_json(played)
    seen = kinds(played)
    want = {
        "assistant_message", "thinking", "system_message", "user_feedback",
        "error:other", "action:command_run", "action:file_read", "action:file_edit",
        "action:search", "action:web_fetch", "action:tool", "action:task_create",
        "action:plan_presentation", "action:todo_management", "action:other",
        "status:created", "status:success", "status:failed", "status:pending_approval",
        "status:denied", "change:edit", "change:write", "exit:success", "exit:exit_code",
        "result:json", "result:markdown",
    }  # fmt: skip
    assert want <= seen, sorted(want - seen)
    check_screen(
        played,
        [
            r"^thinking: Let me look at auth\.$",
            r"^I'll read the code first\.$",
            r"^ APPROVAL NEEDED  edit src/auth\.py \+3 −1  approval [0-9a-f-]{36}, expires \d\d:\d\d:\d\d$",
            r"^⊘ edit src/auth\.py \+3 −1  denied: Keep the old check$",
            r"^✋ Edit denied: Keep the old check$",
            r"^ APPROVAL NEEDED  \$ git status --short  approval ",
            r"^✓ \$ git status --short  approved$",
            r"^✓ \$ make  exit 2$",  # Claude's status follows is_error, not the exit code
            r"^  │ … 23 more lines …$",  # pytest -v: 31 lines, compact
            *TODOS,
            r"^✗ tool mcp:fs:read .*  failed$",
            r"^✓ tool mcp:github:create_issue ",
            r"^• search \"def main\"$",
            r"^• fetch https://example\.invalid/docs$",
            r"^• task Explore the codebase$",
            r"^• plan$",
            r"^· System: compact_boundary$",
            r"^✗ Claude Code \+ ANTHROPIC_API_KEY detected",
            r"^✗ warning: telemetry disabled$",
        ],
    )


def test_codex_session_with_a_pending_patch_approval(server: ForgeServer, bed: AgentBed) -> None:
    def command(c: dict[str, Any]) -> Any:
        return (tool_of(c).get("action_type") or {}).get("command")

    def path(c: dict[str, Any]) -> Any:
        return (tool_of(c).get("action_type") or {}).get("path")

    rules = [
        # 0.7.4 cannot make an exec approval pending (tool_call_id ""): it times out
        # at once; the stand-in waits for the test to have seen the entry all the same.
        Rule(
            lambda c: command(c) == "bash -lc rm -rf build" and status_of(c) == "created",
            gate="exec-seen",
        ),
        Rule(lambda c: path(c) == "config.toml" and status_of(c) == "created", gate="patch-seen"),
        Rule(
            lambda c: path(c) == "config.toml" and status_of(c) == "pending_approval",
            answer={"status": "denied", "reason": "Keep the old config"},
        ),
    ]
    script = codex.full_session().script()
    profile = {"executor": "CODEX", "variant": "APPROVALS"}
    played = play(server, bed, "codex-full", script, profile, rules, opening=0)
    assert (played.record["process"]["status"], played.record["process"]["exit_code"]) == (
        "completed",
        0,
    )
    assert played.record.get("signal") == 2  # ended by the server's SIGINT, quietly
    assert all(r.fired for r in rules)
    check_json(played)
    seen = kinds(played)
    want = {
        "assistant_message", "thinking", "system_message", "user_feedback", "error:other",
        "action:command_run", "action:file_read", "action:file_edit", "action:web_fetch",
        "action:tool", "action:todo_management", "status:created", "status:success",
        "status:failed", "status:pending_approval", "status:denied", "change:edit",
        "change:write", "change:delete", "change:rename", "exit:exit_code", "result:json",
        "result:markdown",
    }  # fmt: skip
    assert want <= seen, sorted(want - seen)
    finals = list(played.finals().values())
    assert any(c["content"] == "Approval timed out for tool Exec Command" for c in finals)
    stdin = "".join(played.record["stdin"])
    assert '"decision":"denied"' in stdin and '"decision":"abort"' in stdin
    assert "User feedback: Keep the old config" in stdin
    readme_recipes(server, played.process_id)
    check_screen(
        played,
        [
            r"^· model: gpt-5-codex  reasoning effort: high$",
            *TODOS,
            r"^    \[ \] Update docs$",
            r"^✓ rename a\.py → b\.py, edit \+1 −1$",
            r"^✓ delete old\.txt$",
            r"^✓ edit src/auth\.py \+2 −1$",
            r"^✗ edit setup\.cfg \+1 −1  failed$",
            r"^ APPROVAL NEEDED  edit config\.toml \+1 −1  approval [0-9a-f-]{36}, expires ",
            r"^⊘ edit config\.toml \+1 −1  denied: Keep the old config$",
            r"^✋ Edit denied: Keep the old config$",
            r"^✓ tool mcp:db:query \{\"sql\":\"select 1\"\}$",
            r"^  │ \{\"rows\":\[\[1\]\]\}$",
            r"^✗ tool mcp:github:create_issue  failed$",
            r"^✓ fetch pytest fixtures scope$",
            r"^✓ read docs/screen\.png$",
            r"^✗ Approval timed out for tool Exec Command$",
            r"^  │ … 23 more lines …$",
            r"^Understood, config\.toml stays as it is\.$",
        ],
    )


def test_gemini_session_over_acp(server: ForgeServer, bed: AgentBed) -> None:
    script = gemini.full_session().script()
    played = play(server, bed, "gemini-full", script, {"executor": "GEMINI"}, [], opening=1)
    assert (played.record["process"]["status"], played.record["process"]["exit_code"]) == (
        "completed",
        0,
    )
    prompt = [line for line in played.record["stdin"] if '"session/prompt"' in line]
    assert len(prompt) == 1 and '"id":2' in prompt[0]
    check_json(played)
    seen = kinds(played)
    want = {
        "assistant_message", "thinking", "system_message", "error:other",
        "action:command_run", "action:file_read", "action:file_edit", "action:search",
        "action:web_fetch", "action:tool", "action:other", "status:created",
        "status:success", "status:failed", "change:edit", "change:write", "change:delete",
        "exit:exit_code", "exit:success", "result:json", "result:markdown",
    }  # fmt: skip
    assert want <= seen, sorted(want - seen)
    check_screen(
        played,
        [
            r"^· Plan:$",
            r"^  1\. Read auth\.py$",
            r"^✓ tool read_many_files Will attempt to read files",
            r"^✓ edit src/auth\.py \+3 −1$",
            r"^✓ delete old\.txt$",
            r"^✓ \$ make docs$",
            r"^✓ search \"'def login' within src\"$",
            r"^✓ fetch https://example\.org/api$",
            r"^✓ tool save_memory ",
            r"^✓ tool move$",
            r"^✓ Ready to code$",
            r"^✓ \$ rm -rf build$",
            r"^✗ \[WARN\] Skipping unreadable directory: /proc$",
            r"^Done: the login check is fixed\.$",
        ],
    )


def test_the_readme_screen_is_what_the_terminal_shows(server: ForgeServer, bed: AgentBed) -> None:
    """The README's capture of a session on a terminal is what ``logs -f`` prints
    for the session it names (``tests/session_player.py``), but the approval's id
    and expiry, which differ from run to run."""
    script, rules = demo_session()
    played = play(server, bed, "readme", script, {"executor": "CLAUDE_CODE"}, rules, opening=2)
    captured = README.read_text(encoding="utf-8").split("colours\nleft out here):\n\n```\n", 1)
    assert len(captured) == 2, "the README's captured screen is not where it was"
    block = captured[1].split("```", 1)[0]

    def steady(screen: str) -> str:
        return re.sub(r"approval [0-9a-f-]{36}, expires \d\d:\d\d:\d\d", "approval …", screen)

    assert steady(played.screen) == steady(block), (
        "the README's screen is stale: replace it with "
        "`python tests/session_player.py`'s output\n" + played.screen
    )
