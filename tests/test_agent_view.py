"""The pretty view of a coding agent's session (``forgectl/output/agent.py``).

Entries are the real server's, mapped by the schema (tests/test_agent_schema.py's
catalogue); the real-binary sessions are in tests/test_agent_sessions.py.
"""

from __future__ import annotations

import asyncio
import copy
import io
import re
import time
from typing import Any

import pytest
from test_agent_schema import CATALOGUE, content, tool

from forgectl.dialects.forge.schema import entry_line
from forgectl.events import LogEntry, ProcessEvent
from forgectl.output import agent
from forgectl.output.agent import diff_counts
from forgectl.output.pretty import PrettyRenderer

ENTRIES = dict(CATALOGUE)


def line(entry: dict[str, Any], index: int = 0) -> LogEntry:
    got = entry_line(entry, index)
    assert got is not None
    return LogEntry(got)


def screen(*events: Any, color: str = "never", **options: Any) -> str:
    out = io.BytesIO()
    renderer = PrettyRenderer(out, color=color, **options)
    for event in events:
        renderer.render(event)
    renderer.close()
    return out.getvalue().decode()


def command(
    output: str, status: str = "success", code: int = 0, cmd: str = "pytest -q"
) -> dict[str, Any]:
    result = {"exit_status": {"type": "exit_code", "code": code}, "output": output}
    action = {"action": "command_run", "command": cmd, "result": result}
    return content(tool("bash", action, status), f"`{cmd}`")


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("command_run success:false", "✗ $ pytest -q  failed\n  │ F.\n  │ 1 failed\n"),
        ("command_run exit code", "✗ $ bash -lc pytest -q  exit 1\n  │ F.\n"),
        ("command_run no result", "• $ ls\n"),
        ("command_run success, no output (gemini)", "✓ $ make docs\n"),
        ("file_read", "• read src/auth.py\n"),
        (
            "file_edit edit",
            "• edit src/auth.py +3 −1\n  │ @@ -1,1 +1,3 @@\n  │ -    return False\n"
            "  │ +    if not user:\n  │ +        return False\n  │ +    return user.active\n",
        ),
        (
            "file_edit rename write delete",
            "✓ rename a.py → b.py, write a.py +1, delete a.py, edit +1 −1\n  │ +print('hi')\n"
            "  │ @@ -1 +1 @@\n  │ -x\n  │ +y\n",
        ),
        ("search", '• search "def login"\n'),
        ("web_fetch", "• fetch https://example.com/d\n"),
        ("tool json", '✓ tool mcp:db:query {"sql":"select 1"}\n  │ {"rows":[[1]]}\n'),
        ("tool markdown", "✓ tool save_memory a JSON string\n  │ # done\n"),
        ("task_create", "• task Review auth\n"),
        ("plan_presentation", "• plan\n  │ 1. Fix\n  │ 2. Test\n"),
        (
            "todo_management",
            "• todos\n    [x] Fix login\n    [~] Add a test\n    [ ] Update docs (low)\n",
        ),
        ("other", "• List directory: `src`\n"),
        ("denied", "⊘ read x  denied: Keep it\n"),
        ("denied, no reason", "⊘ read x  denied\n"),
        ("timed_out", "⌛ $ ls  approval timed out\n"),
        ("user_feedback", "✋ Edit denied: Keep the old check\n"),
        ("assistant_message", "I'll read the code first.\n"),
        ("thinking", "thinking: Let me look.\n"),
        ("user_message", "> Fix it\n"),
        ("system_message", "· System initialized with model: m\n"),
        ("error other", "✗ warning\n"),
        ("error setup", "✗ setup required: no cursor\n"),
        ("token_usage_info", "· tokens: 1540 of 272000\n"),
        ("unknown kind", "· [mood_ring] calm\n"),
    ],
)
def test_each_kind_on_one_line(name: str, shown: str) -> None:
    assert screen(line(ENTRIES[name])) == shown


def test_a_pending_approval_stands_out() -> None:
    text = screen(line(ENTRIES["pending_approval"]))
    assert text.startswith(" APPROVAL NEEDED  edit src/auth.py  approval 069ac9f1-52a8-46ad-a2ee")
    assert re.search(r"expires \d\d:\d\d:\d\d\n", text)
    coloured = screen(line(ENTRIES["pending_approval"]), color="always")
    assert re.search(r"\x1b\[[0-9;]*7[0-9;]*m APPROVAL NEEDED ", coloured)  # reverse video


def test_edits_are_coloured_mini_diffs() -> None:
    coloured = screen(line(ENTRIES["file_edit edit"]), color="always")
    assert re.search(r"\x1b\[32m\+    if not user:", coloured)
    assert re.search(r"\x1b\[31m-    return False", coloured)
    assert "+++" not in coloured and "---" not in coloured  # no file header


def test_counts_skip_the_diff_header() -> None:
    diff = "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n--- a comment line removed\n+++ added\n ok\n"
    assert diff_counts(diff) == (1, 1)


def test_output_is_compact_unless_asked() -> None:
    long = "\n".join(f"line {n}" for n in range(1, 21))
    entry = line(command(long, "failed", 1))
    compact = screen(entry).splitlines()
    assert compact[0] == "✗ $ pytest -q  exit 1"
    assert compact[1:] == [
        *(f"  │ line {n}" for n in range(1, 5)),
        "  │ … 12 more lines …",
        *(f"  │ line {n}" for n in range(17, 21)),
    ]
    assert screen(entry, tool_output="all").splitlines()[1:] == [
        f"  │ line {n}" for n in range(1, 21)
    ]
    assert screen(entry, tool_output="none") == "✗ $ pytest -q  exit 1\n"
    short = "\n".join(f"line {n}" for n in range(1, 10))  # 9 lines: nothing worth cutting
    assert len(screen(line(command(short))).splitlines()) == 10
    todos = screen(line(ENTRIES["todo_management"]), tool_output="none")
    assert "[~] Add a test" in todos  # a todo list is not output


def test_server_text_is_escaped() -> None:
    hostile = command("\x1b[2J\x1b]0;owned\x07ok\rX", cmd="echo \x1b[31mred")
    text = screen(line(hostile), color="always")
    assert (
        "\x1b[2J" not in text and "\x1b]0" not in text and "\x07" not in text and "\r" not in text
    )
    assert "\\x1b[2J\\x1b]0;owned\\x07ok\\x0dX" in text
    assert "echo \\x1b[31mred" in text
    name = content({"type": "user_feedback", "denied_tool": "E\x1bdit"}, "no\x9b")
    assert screen(line(name)) == "✋ E\\x1bdit denied: no\\x9b\n"
    usage = content({"type": "token_usage_info", "total_tokens": "\x1b[5m", "x\x07": 1}, "")
    assert "\x1b" not in screen(line(usage)) and "\\x1b[5m" in screen(line(usage))
    nxt = content({"type": "next_action", "failed\x1b": "\x07"}, "")
    assert screen(line(nxt)) == "· next: failed\\x1b \\x07\n"
    odd = content({"type": "k\x1bnd"}, "t")
    assert screen(line(odd)) == "· [k\\x1bnd] t\n"


def test_a_tool_call_prints_once_it_settles() -> None:
    """created, then its result: one block, no duplicate (the JSON prints both)."""
    created = line(ENTRIES["command_run no result"], 4)
    done = copy.deepcopy(ENTRIES["command_run no result"])
    done["entry_type"]["status"] = {"status": "success"}
    done["entry_type"]["action_type"]["result"] = {
        "exit_status": {"type": "success", "success": True},
        "output": "a\nb",
    }
    settled = line(done, 4)
    settled.data["metadata"]["revision"] = 1
    assert screen(created, settled) == "✓ $ ls\n  │ a\n  │ b\n"
    # another entry before the result: the call as it stood, then its result
    text = screen(created, line(ENTRIES["assistant_message"], 5), settled)
    assert text == "• $ ls\nI'll read the code first.\n✓ $ ls\n  │ a\n  │ b\n"
    # a version that changes nothing visible prints nothing
    assert screen(settled, settled) == "✓ $ ls\n  │ a\n  │ b\n"
    # the stream ends: what is held is printed
    assert screen(created) == "• $ ls\n"
    # process events and plain log lines never overtake a held call
    started = ProcessEvent({"type": "process_completed", "processId": "p"})
    assert screen(created, started).splitlines()[0] == "• $ ls"


def test_an_approval_then_its_result() -> None:
    base = command(" M src/auth.py", cmd="git status --short")
    created = copy.deepcopy(base)
    created["entry_type"]["status"] = {"status": "created"}
    created["entry_type"]["action_type"]["result"] = None
    pending = copy.deepcopy(created)
    pending["entry_type"]["status"] = {"status": "pending_approval", "approval_id": "a1"}
    versions = [line(created, 3), line(pending, 3), line(created, 3), line(base, 3)]
    assert screen(*versions) == (
        " APPROVAL NEEDED  $ git status --short  approval a1\n"
        "✓ $ git status --short  approved\n"
        "  │  M src/auth.py\n"
    )


def test_growing_text_prints_what_was_added() -> None:
    first = line(content({"type": "assistant_message"}, "I'll read the"), 2)
    more = line(content({"type": "assistant_message"}, "I'll read the code first."), 2)
    other = line(content({"type": "assistant_message"}, "Something else."), 2)
    assert screen(first, more) == "I'll read the\n… code first.\n"
    assert screen(first, other) == "I'll read the\n(revised) Something else.\n"
    assert screen(first, first) == "I'll read the\n"


async def test_a_running_call_is_shown_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent, "HOLD", 0.05)
    out = io.BytesIO()
    renderer = PrettyRenderer(out, color="never")
    renderer.render(line(ENTRIES["command_run no result"], 0))
    assert out.getvalue() == b""
    deadline = time.monotonic() + 10
    while out.getvalue() == b"" and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert out.getvalue() == b"\xe2\x80\xa2 $ ls\n"
    renderer.close()
    assert out.getvalue() == b"\xe2\x80\xa2 $ ls\n"


def test_no_placeholder_time_when_the_server_sends_none() -> None:
    text = screen(line(ENTRIES["assistant_message"]), line(ENTRIES["file_read"], 1))
    assert "--:--:--" not in text
    stamped = screen(line(ENTRIES["assistant_message"]), timestamps=True)
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} I'll read the code first\.\n", stamped)
    timed = line(ENTRIES["timestamp"])
    both = screen(timed, line(ENTRIES["assistant_message"], 1), timestamps=True).splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} \d\d:\d\d:\d\d hi", both[0])
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} {10}I'll read the code first\.", both[1])


def test_plain_log_lines_have_no_placeholder_time_either() -> None:
    raw = LogEntry(
        {
            "level": "warn",
            "message": "err 1",
            "timestamp": None,
            "source": "stderr",
            "metadata": {"entryType": "STDERR", "index": 0},
        }
    )
    assert screen(raw) == "WARN    stderr  err 1\n"
    documented = LogEntry(
        {"level": "info", "message": "m", "timestamp": "2024-01-15T10:30:00Z", "source": "s"}
    )
    assert re.fullmatch(r"\d\d:\d\d:\d\d INFO    s  m\n", screen(documented))


async def test_a_call_streaming_output_is_shown_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Codex streams a command's output into its entry: each new version of a held call
    takes its place, but does not restart the wait."""
    monkeypatch.setattr(agent, "HOLD", 0.2)
    out = io.BytesIO()
    renderer = PrettyRenderer(out, color="never")
    running = copy.deepcopy(ENTRIES["command_run running (codex)"])
    started = time.monotonic()
    n = 0
    while out.getvalue() == b"" and time.monotonic() - started < 10:
        n += 1
        running["entry_type"]["action_type"]["result"]["output"] = f"line {n}"
        entry = line(running, 0)
        entry.data["metadata"]["revision"] = n
        renderer.render(entry)
        await asyncio.sleep(0.02)
    assert time.monotonic() - started < 5  # shown after HOLD, not when it stops changing
    assert out.getvalue().decode().startswith("• $ rm -rf build\n  │ line ")
    renderer.close()
