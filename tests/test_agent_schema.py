"""The mapping of the real server's normalized entries (``dialects/forge/schema.py``).

Every entry type, action, file change, result, exit status, tool status and error
type Forge 0.7.4 serializes (forge-core ``crates/executors/src/logs/mod.rs``), the
shapes of newer servers, and shapes no server sends yet: each must come back whole
from forgectl's line (``agents.oracle.unmap``, written from the README's rules, not
from the schema), and the documented fields must be where the README says.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from agents.oracle import diff_lines, lost, unmap

from forgectl.diagnostics import Diagnostics
from forgectl.dialects.forge import ForgeLogsDecoder
from forgectl.dialects.forge.schema import (
    _ACTION_SUBJECTS,
    _ENTRY_KINDS,
    _TOOL_LEVELS,
    camel,
    entry_line,
    normalize_entry,
)

WT = "/var/tmp/automagik-forge/worktrees/678c-fix"


def content(entry_type: dict[str, Any], text: str = "text", metadata: Any = None) -> dict[str, Any]:
    return {"timestamp": None, "entry_type": entry_type, "content": text, "metadata": metadata}


def tool(
    name: str, action: dict[str, Any], status: str = "created", **fields: Any
) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "tool_name": name,
        "action_type": action,
        "status": {"status": status, **fields},
    }


#: (name, content) for every variant; exact entry_type objects from real 0.7.4 runs.
CATALOGUE: list[tuple[str, dict[str, Any]]] = [
    (
        "user_message",
        content({"type": "user_message"}, "Fix it", {"type": "text", "text": "Fix it"}),
    ),
    (
        "user_feedback",
        content({"type": "user_feedback", "denied_tool": "Edit"}, "Keep the old check"),
    ),
    ("assistant_message", content({"type": "assistant_message"}, "I'll read the code first.")),
    ("system_message", content({"type": "system_message"}, "System initialized with model: m")),
    (
        "thinking",
        content(
            {"type": "thinking"}, "Let me look.", {"type": "thinking", "thinking": "Let me look."}
        ),
    ),
    (
        "error other",
        content({"type": "error_message", "error_type": {"type": "other"}}, "warning\n"),
    ),
    (
        "error setup",
        content({"type": "error_message", "error_type": {"type": "setup_required"}}, "no cursor"),
    ),
    ("loading", content({"type": "loading"}, "")),
    (
        "next_action",
        content(
            {"type": "next_action", "failed": True, "execution_processes": 2, "needs_setup": False},
            "",
        ),
    ),
    (
        "file_read",
        content(tool("Read", {"action": "file_read", "path": "src/auth.py"}), "`src/auth.py`"),
    ),
    (
        "file_edit edit",
        content(
            tool(
                "Edit",
                {
                    "action": "file_edit",
                    "path": "src/auth.py",
                    "changes": [
                        {
                            "action": "edit",
                            "unified_diff": f"--- a/{WT}/src/auth.py\n+++ b/{WT}/src/auth.py\n"
                            "@@ -1,1 +1,3 @@\n-    return False\n+    if not user:\n"
                            "+        return False\n+    return user.active\n",
                            "has_line_numbers": False,
                        }
                    ],
                },
            ),
            "`src/auth.py`",
            {
                "type": "tool_use",
                "id": "toolu_04",
                "name": "Edit",
                "input": {"file_path": "x"},
                "tool_call_id": "toolu_04",
            },
        ),
    ),
    (
        "file_edit rename write delete",
        content(
            tool(
                "edit",
                {
                    "action": "file_edit",
                    "path": "a.py",
                    "changes": [
                        {"action": "rename", "new_path": "b.py"},
                        {"action": "write", "content": "print('hi')\n"},
                        {"action": "delete"},
                        {
                            "action": "edit",
                            "unified_diff": "@@ -1 +1 @@\n-x\n+y\n",
                            "has_line_numbers": True,
                        },
                    ],
                },
                "success",
            ),
            "a.py",
            {"tool_call_id": "call_3"},
        ),
    ),
    (
        "file_edit no changes",
        content(tool("Edit", {"action": "file_edit", "path": "x", "changes": []}), "`x`"),
    ),
    (
        "command_run success:false",
        content(
            tool(
                "Bash",
                {
                    "action": "command_run",
                    "command": "`pytest -q`",
                    "result": {
                        "exit_status": {"type": "success", "success": False},
                        "output": "F.\n1 failed",
                    },
                },
                "failed",
            ),
            "`pytest -q`",
        ),
    ),
    (
        "command_run exit code",
        content(
            tool(
                "bash",
                {
                    "action": "command_run",
                    "command": "bash -lc pytest -q",
                    "result": {"exit_status": {"type": "exit_code", "code": 1}, "output": "F."},
                },
                "failed",
            ),
            "`bash -lc pytest -q`",
            {"tool_call_id": "call_2"},
        ),
    ),
    (
        "command_run no result",
        content(tool("Bash", {"action": "command_run", "command": "ls", "result": None}), "`ls`"),
    ),
    (
        "command_run running (codex)",
        content(
            tool(
                "bash",
                {
                    "action": "command_run",
                    "command": "rm -rf build",
                    "result": {"exit_status": None, "output": None},
                },
            ),
            "`rm -rf build`",
            {"tool_call_id": ""},
        ),
    ),
    (
        "command_run success, no output (gemini)",
        content(
            tool(
                "make docs",
                {
                    "action": "command_run",
                    "command": "make docs",
                    "result": {"exit_status": {"type": "success", "success": True}, "output": None},
                },
                "success",
            ),
            "make docs",
        ),
    ),
    ("search", content(tool("Grep", {"action": "search", "query": "def login"}), "`def login`")),
    (
        "web_fetch",
        content(tool("WebFetch", {"action": "web_fetch", "url": "https://example.com/d"}), "`u`"),
    ),
    (
        "tool json",
        content(
            tool(
                "mcp:db:query",
                {
                    "action": "tool",
                    "tool_name": "mcp:db:query",
                    "arguments": {"sql": "select 1"},
                    "result": {"type": {"type": "json"}, "value": {"rows": [[1]]}},
                },
                "success",
            ),
            "query",
        ),
    ),
    (
        "tool markdown",
        content(
            tool(
                "Save memory",
                {
                    "action": "tool",
                    "tool_name": "save_memory",
                    "arguments": "a JSON string",
                    "result": {"type": {"type": "markdown"}, "value": "# done"},
                },
                "success",
            ),
            "Saving memory",
        ),
    ),
    (
        "tool no result",
        content(
            tool(
                "a.py => b.py",
                {"action": "tool", "tool_name": "move", "arguments": None, "result": None},
            ),
            "a.py => b.py",
        ),
    ),
    (
        "task_create",
        content(
            tool("Task", {"action": "task_create", "description": "Review auth"}),
            "Task: `Review auth`",
        ),
    ),
    (
        "plan_presentation",
        content(
            tool("ExitPlanMode", {"action": "plan_presentation", "plan": "1. Fix\n2. Test"}),
            "1. Fix\n2. Test",
        ),
    ),
    (
        "todo_management",
        content(
            tool(
                "TodoWrite",
                {
                    "action": "todo_management",
                    "todos": [
                        {"content": "Fix login", "status": "completed", "priority": None},
                        {"content": "Add a test", "status": "in_progress", "priority": None},
                        {"content": "Update docs", "status": "pending", "priority": "low"},
                    ],
                    "operation": "write",
                },
            ),
            "TODO list updated",
        ),
    ),
    (
        "other",
        content(
            tool("LS", {"action": "other", "description": "List directory"}),
            "List directory: `src`",
        ),
    ),
    (
        "pending_approval",
        content(
            tool(
                "Edit",
                {"action": "file_edit", "path": "src/auth.py", "changes": []},
                "pending_approval",
                approval_id="069ac9f1-52a8-46ad-a2ee-8627820b88d8",
                requested_at="2026-12-01T20:47:45.701587241Z",
                timeout_at="2026-12-01T21:47:45.701587241Z",
            ),
            "`src/auth.py`",
        ),
    ),
    (
        "denied",
        content(
            tool("Edit", {"action": "file_read", "path": "x"}, "denied", reason="Keep it"), "`x`"
        ),
    ),
    (
        "denied, no reason",
        content(tool("Edit", {"action": "file_read", "path": "x"}, "denied", reason=None), "`x`"),
    ),
    (
        "timed_out",
        content(
            tool("Bash", {"action": "command_run", "command": "ls", "result": None}, "timed_out"),
            "`ls`",
        ),
    ),
    # newer servers (vibe-kanban upstream)
    (
        "token_usage_info",
        content(
            {"type": "token_usage_info", "total_tokens": 1540, "model_context_window": 272000}, ""
        ),
    ),
    (
        "user_answered_questions",
        content(
            {
                "type": "user_answered_questions",
                "answers": [{"question": "Which?", "answer": ["A"]}],
            },
            "",
        ),
    ),
    (
        "command_run category",
        content(
            tool(
                "Bash",
                {"action": "command_run", "command": "ls", "result": None, "category": "read"},
            ),
            "`ls`",
        ),
    ),
    (
        "task_create subagent",
        content(
            tool(
                "Task",
                {
                    "action": "task_create",
                    "description": "d",
                    "subagent_type": "Explore",
                    "result": {"type": {"type": "markdown"}, "value": "found"},
                },
            ),
            "Task: `d`",
        ),
    ),
    (
        "ask_user_question",
        content(
            tool(
                "AskUserQuestion",
                {
                    "action": "ask_user_question",
                    "questions": [{"question": "Q", "multiSelect": False}],
                },
            ),
            "Q",
        ),
    ),
    (
        "pending, upstream",
        content(
            tool(
                "Edit",
                {"action": "other", "description": "d"},
                "pending_approval",
                approval_id="a1",
            ),
            "d",
        ),
    ),
    # shapes nobody sends yet
    ("unknown kind", content({"type": "mood_ring", "colour_now": "blue"}, "calm")),
    (
        "unknown status",
        content(
            tool("X", {"action": "other", "description": "d"}, "queued", queue_position=3), "d"
        ),
    ),
    (
        "unknown exit status",
        content(
            tool(
                "B",
                {
                    "action": "command_run",
                    "command": "c",
                    "result": {"exit_status": {"type": "signal", "signal": 9}, "output": ""},
                },
            ),
            "c",
        ),
    ),
    (
        "timestamp",
        {**content({"type": "assistant_message"}, "hi"), "timestamp": "2026-12-01T20:47:45Z"},
    ),
    ("extra key", {**content({"type": "assistant_message"}, "hi"), "parent_id": 4}),
    ("assistant with a field", content({"type": "assistant_message", "streaming": True}, "hi")),
]


#: Shapes the README's rules cannot be read back from exactly (the oracle takes every
#: field in ``tool`` for an action field); where their fields go is checked below.
ODD: list[tuple[str, dict[str, Any]]] = [
    (
        "action field named like ours",
        content(tool("X", {"action": "other", "description": "d", "name": "n", "status": 1}), "d"),
    ),
    (
        "unknown tool_use field",
        content({**tool("X", {"action": "other", "description": "d"}), "duration_ms": 5}, "d"),
    ),
    (
        "string status",
        content(
            {
                "type": "tool_use",
                "tool_name": "X",
                "action_type": {"action": "other", "description": "d"},
                "status": "created",
            },
            "d",
        ),
    ),
]


@pytest.mark.parametrize(("name", "entry"), CATALOGUE, ids=[n for n, _ in CATALOGUE])
def test_nothing_the_server_says_is_dropped(name: str, entry: dict[str, Any]) -> None:
    line = normalize_entry(7, {"type": "NORMALIZED_ENTRY", "content": copy.deepcopy(entry)}, 2)
    assert line is not None
    assert set(line) == {"level", "message", "timestamp", "source", "metadata"}
    assert lost(entry, line) == [], json.dumps(line, indent=1)
    meta = line["metadata"]
    assert (meta["entryType"], meta["index"], meta["revision"]) == (
        entry["entry_type"]["type"],
        7,
        2,
    )
    assert isinstance(line["message"], str)
    assert json.loads(json.dumps(line)) == line  # plain JSON


def line_of(entry: dict[str, Any]) -> dict[str, Any]:
    got = entry_line(entry, 3)
    assert got is not None
    return got


def test_a_command_run_keeps_its_output_and_exit_status() -> None:
    """Issue 14: the output and exit status of a Bash call were gone."""
    got = line_of(dict(CATALOGUE)["command_run success:false"])
    assert got == {
        "level": "error",
        "message": "pytest -q",
        "timestamp": None,
        "source": "tool:Bash",
        "metadata": {
            "entryType": "tool_use",
            "index": 3,
            "revision": 0,
            "tool": {
                "name": "Bash",
                "action": "command_run",
                "status": "failed",
                "command": "`pytest -q`",
                "success": False,
                "output": "F.\n1 failed",
            },
            "content": "`pytest -q`",
        },
    }
    codex = line_of(dict(CATALOGUE)["command_run exit code"])
    assert codex["metadata"]["tool"]["exitCode"] == 1 and "success" not in codex["metadata"]["tool"]
    assert codex["metadata"]["details"] == {"tool_call_id": "call_2"}
    assert codex["message"] == "bash -lc pytest -q"
    none = line_of(dict(CATALOGUE)["command_run no result"])["metadata"]["tool"]
    assert "output" not in none and "exitCode" not in none  # result: null
    running = line_of(dict(CATALOGUE)["command_run running (codex)"])["metadata"]["tool"]
    assert running["output"] is None and "exitCode" not in running


def test_edits_todos_and_tool_results_are_camel_case_with_values_verbatim() -> None:
    edit = line_of(dict(CATALOGUE)["file_edit rename write delete"])["metadata"]["tool"]
    assert edit["changes"] == [
        {"action": "rename", "newPath": "b.py"},
        {"action": "write", "content": "print('hi')\n"},
        {"action": "delete"},
        {"action": "edit", "unifiedDiff": "@@ -1 +1 @@\n-x\n+y\n", "hasLineNumbers": True},
    ]
    result = line_of(dict(CATALOGUE)["tool json"])
    assert result["message"] == "mcp:db:query"
    assert result["metadata"]["tool"]["result"] == {"type": "json", "value": {"rows": [[1]]}}
    assert result["metadata"]["tool"]["arguments"] == {"sql": "select 1"}  # keys not renamed
    todos = line_of(dict(CATALOGUE)["todo_management"])["metadata"]["tool"]
    assert todos["operation"] == "write" and todos["todos"][2] == {
        "content": "Update docs",
        "status": "pending",
        "priority": "low",
    }


def test_approvals_are_under_metadata_approval() -> None:
    pending = line_of(dict(CATALOGUE)["pending_approval"])
    assert pending["level"] == "warn"
    assert pending["metadata"]["approval"] == {
        "approvalId": "069ac9f1-52a8-46ad-a2ee-8627820b88d8",
        "requestedAt": "2026-12-01T20:47:45.701587241Z",
        "timeoutAt": "2026-12-01T21:47:45.701587241Z",
    }
    denied = line_of(dict(CATALOGUE)["denied"])
    assert (denied["level"], denied["metadata"]["approval"]) == ("error", {"reason": "Keep it"})
    timed_out = line_of(dict(CATALOGUE)["timed_out"])
    assert (timed_out["level"], timed_out["metadata"]["approval"]) == ("error", {})
    for settled in ("command_run no result", "file_read", "tool json"):
        assert "approval" not in line_of(dict(CATALOGUE)[settled])["metadata"]


@pytest.mark.parametrize(
    ("name", "level", "source", "message", "section"),
    [
        (
            "user_feedback",
            "info",
            "user",
            "Keep the old check",
            ("feedback", {"deniedTool": "Edit"}),
        ),
        ("error setup", "error", "executor", "no cursor", ("error", {"type": "setup_required"})),
        ("thinking", "debug", "assistant", "Let me look.", None),
        (
            "next_action",
            "error",
            "executor",
            "",
            ("nextAction", {"failed": True, "executionProcesses": 2, "needsSetup": False}),
        ),
        (
            "token_usage_info",
            "debug",
            "executor",
            "",
            ("usage", {"totalTokens": 1540, "modelContextWindow": 272000}),
        ),
        ("unknown kind", "info", "executor", "calm", ("moodRing", {"colourNow": "blue"})),
        ("file_read", "info", "tool:Read", "src/auth.py", None),
        ("search", "info", "tool:Grep", "def login", None),
        ("task_create", "info", "tool:Task", "Review auth", None),
        ("other", "info", "tool:LS", "List directory: `src`", None),
        ("todo_management", "info", "tool:TodoWrite", "TODO list updated", None),
    ],
)
def test_levels_sources_messages_and_sections(
    name: str, level: str, source: str, message: str, section: tuple[str, Any] | None
) -> None:
    got = line_of(dict(CATALOGUE)[name])
    assert (got["level"], got["source"], got["message"]) == (level, source, message)
    if section is not None:
        assert got["metadata"][section[0]] == section[1]


def test_what_no_server_sends_yet_is_kept_not_dropped() -> None:
    odd = dict(ODD)
    assert line_of(odd["unknown tool_use field"])["metadata"]["tool"]["durationMs"] == 5
    plain = line_of(odd["string status"])
    assert (plain["level"], plain["metadata"]["tool"]["status"]) == ("info", "created")
    clash = line_of(odd["action field named like ours"])["metadata"]["tool"]
    assert (clash["name"], clash["status"], clash["extra"]) == (
        "X",
        "created",
        {"name": "n", "status": 1},
    )
    future = line_of(dict(CATALOGUE)["command_run category"])["metadata"]["tool"]
    assert future["category"] == "read"
    signal = line_of(dict(CATALOGUE)["unknown exit status"])["metadata"]["tool"]
    assert signal["exitStatus"] == {"type": "signal", "signal": 9}
    extra = normalize_entry(
        0, {"type": "NORMALIZED_ENTRY", "content": dict(CATALOGUE)["extra key"], "seq": 9}
    )
    assert extra is not None and extra["metadata"]["extra"] == {"parentId": 4, "seq": 9}
    bare = entry_line({"entry_type": "nope", "content": 5, "timestamp": 12}, 0)
    assert bare is not None and bare["message"] == "" and bare["timestamp"] is None
    assert bare["metadata"] == {
        "entryType": "unknown",
        "index": 0,
        "revision": 0,
        "extra": {"entryType": "nope", "timestamp": 12},
        "content": 5,
    }
    assert entry_line("not an object", 0) is None
    assert normalize_entry(0, {"type": "STDOUT", "content": "x"}) is None


def test_camel_case() -> None:
    assert [
        camel(k) for k in ("unified_diff", "has_line_numbers", "apiKeySource", "x", "a_b_c")
    ] == [
        "unifiedDiff",
        "hasLineNumbers",
        "apiKeySource",
        "x",
        "aBC",
    ]


def test_the_decoder_prints_what_the_schema_maps() -> None:
    """Hot path (``add`` of the next entry) and general path (``replace``) alike."""
    decoder = ForgeLogsDecoder(Diagnostics(lambda level, line: None), follow=False)
    frames = []
    for i, (_, entry) in enumerate(CATALOGUE):
        value = {"type": "NORMALIZED_ENTRY", "content": entry}
        frames.append({"JsonPatch": [{"op": "add", "path": f"/entries/{i}", "value": value}]})
    changed = copy.deepcopy(dict(CATALOGUE)["command_run no result"])
    changed["entry_type"]["status"] = {"status": "success"}
    value = {"type": "NORMALIZED_ENTRY", "content": changed}
    frames.append({"JsonPatch": [{"op": "replace", "path": "/entries/0", "value": value}]})
    events = [e for f in frames for e in decoder.feed(json.dumps(f))] + list(decoder.finish())
    lines = [e.to_dict() for e in events]
    assert len(lines) == len(CATALOGUE) + 1
    for i, (_, entry) in enumerate(CATALOGUE):
        assert diff_lines(line_of_index(entry, i), lines[i]) == []
        assert lost(entry, lines[i]) == []
    assert lines[-1]["metadata"]["revision"] == 1 and lost(changed, lines[-1]) == []


def line_of_index(entry: dict[str, Any], index: int) -> dict[str, Any]:
    got = entry_line(entry, index)
    assert got is not None
    return got


def test_a_changed_output_with_the_same_status_is_a_new_version() -> None:
    """Codex streams a command's output into its entry, the status staying ``created``:
    each version is news (the version mark covers all of metadata)."""
    decoder = ForgeLogsDecoder(Diagnostics(lambda level, line: None), follow=False)
    base = dict(CATALOGUE)["command_run running (codex)"]
    out: list[Any] = []
    for i, text in enumerate([None, "stdout:\nauth.py", "stdout:\nauth.py\nnew.py"]):
        entry = copy.deepcopy(base)
        entry["entry_type"]["action_type"]["result"]["output"] = text
        op = "add" if i == 0 else "replace"
        value = {"type": "NORMALIZED_ENTRY", "content": entry}
        out += decoder.feed(
            json.dumps({"JsonPatch": [{"op": op, "path": "/entries/0", "value": value}]})
        )
        out += decoder.quiet()  # printed each time
    assert [e.to_dict()["metadata"]["tool"]["output"] for e in out] == [
        None,
        "stdout:\nauth.py",
        "stdout:\nauth.py\nnew.py",
    ]


def test_unmap_sees_a_dropped_field() -> None:
    """The oracle itself fails where a line falls short."""
    entry = dict(CATALOGUE)["command_run exit code"]
    good = line_of(entry)
    assert lost(entry, good) == []
    bad = copy.deepcopy(good)
    del bad["metadata"]["tool"]["exitCode"]
    assert lost(entry, bad) == [
        ".entry_type.action_type.result.exit_status: None != server's {'type': 'exit_code', 'code': 1}"
    ]
    bad = copy.deepcopy(good)
    bad["metadata"]["tool"]["output"] = "F"
    assert lost(entry, bad) == [".entry_type.action_type.result.output: 'F' != server's 'F.'"]
    bad = copy.deepcopy(good)
    del bad["metadata"]["details"]
    assert lost(entry, bad)
    assert unmap(good)["entry_type"] == entry["entry_type"]


README = Path(__file__).resolve().parent.parent / "README.md"


def readme_section() -> str:
    return (
        README.read_text(encoding="utf-8")
        .split("## Agent sessions in JSON", 1)[1]
        .split("\n## ", 1)[0]
    )


def test_the_readme_examples_are_what_the_schema_prints() -> None:
    block = readme_section().split("```json\n", 1)[1].split("```", 1)[0]
    examples = [json.loads(text) for text in block.strip().splitlines()]
    assert len(examples) >= 4
    for example in examples:
        meta = example["metadata"]
        value = {"type": "NORMALIZED_ENTRY", "content": unmap(example)}
        assert normalize_entry(meta["index"], value, meta["revision"]) == example


def test_the_readme_tables_name_every_kind_action_and_status() -> None:
    section = readme_section()
    for name in [*_ENTRY_KINDS, *_ACTION_SUBJECTS, "todo_management", "other", *_TOOL_LEVELS]:
        assert f"`{name}`" in section, name
