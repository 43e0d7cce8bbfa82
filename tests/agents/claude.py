"""Claude Code (executor ``CLAUDE_CODE``): its stream-json output, and what Forge makes of it.

Forge 0.7.4 runs ``npx -y @anthropic-ai/claude-code@2.0.31 -p
--dangerously-skip-permissions --verbose --output-format=stream-json
--input-format=stream-json --include-partial-messages`` and writes on its stdin a
``control_request`` ``initialize``, a ``set_permission_mode`` and then the prompt as
``{"type":"user","message":{"role":"user","content":"<title>\\n\\n<description>"}}``.

What the server's normalizer (forge-core ``crates/executors/src/executors/claude.rs``)
does with the output, which :func:`expected` mirrors:

* ``system``/``init`` is skipped; the first ``message_start`` with a model adds
  ``system_message`` "System initialized with model: M"; another ``system`` subtype S
  adds "System: S"; a stdout line that is not JSON becomes a ``system_message``.
* a text (thinking) block gets its entry at its first ``text_delta``
  (``thinking_delta``); every further delta *replaces* it with the text so far; the
  ``assistant`` message that repeats the block replaces it once more (same index).
* a ``tool_use`` block gets its entry (status ``created``) when the ``assistant``
  message arrives, after the streamed text blocks of that message, whatever its
  position; its input_json_deltas are ignored.
* a ``tool_result`` replaces the entry of a ``Bash`` call (``command_run`` with
  ``result: {exit_status: {type: success, success: !is_error}, output}``, status
  success/failed, ``command`` in backticks, metadata null; a result that is JSON
  ``{"output", "exitCode"}`` gives ``exit_status: {type: exit_code, code}``) and of
  MCP/unknown tools (``tool`` with ``arguments`` and ``result``); results of Read,
  Edit, Write, Grep, Glob, TodoWrite, WebFetch, Task... change nothing: those entries
  stay ``created``.
* ``result`` adds nothing, and the server stops reading stdout after it.
* stderr becomes ``error_message`` entries (lines less than 2 s apart grouped into one
  entry, replaced as lines arrive); its indices interleave with stdout's by timing.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import Script

PROGRAMS = ("npx",)
PACKAGE = "@anthropic-ai/claude-code@"
REQUIRED_FLAGS = (
    "-p",
    "--verbose",
    "--output-format=stream-json",
    "--input-format=stream-json",
    "--include-partial-messages",
)
MODEL = "claude-sonnet-4-5-20250929"


def matches(program: str, args: Sequence[str]) -> bool:
    return (
        program == "npx"
        and len(args) >= 2
        and args[0] == "-y"
        and args[1].startswith(PACKAGE)
        and all(flag in args for flag in REQUIRED_FLAGS)
    )


def respond(line: str) -> list[str]:
    """Answer control requests as the real CLI does (the server ignores the answers)."""
    try:
        message = json.loads(line)
    except ValueError:
        return []
    if not isinstance(message, dict) or message.get("type") != "control_request":
        return []
    reply = {
        "type": "control_response",
        "response": {"subtype": "success", "request_id": message.get("request_id"), "response": {}},
    }
    return [json.dumps(reply) + "\n"]


def is_prompt(line: str) -> bool:
    """The server's prompt line (after it, no marker can come)."""
    try:
        message = json.loads(line)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "user"


# -- the session model ------------------------------------------------------------------


@dataclass
class Text:
    """Assistant text, streamed ``chunk`` characters per delta, one every ``interval`` s."""

    text: str
    chunk: int = 8
    interval: float = 0.02


@dataclass
class Thinking:
    text: str
    chunk: int = 8
    interval: float = 0.02


@dataclass
class Tool:
    """A tool call; its ``result`` (text, or None for no tool_result) comes ``runs_for``
    seconds after the assistant message."""

    name: str
    input: dict[str, Any]
    result: str | None = ""
    is_error: bool = False
    runs_for: float = 0.05


Block = Text | Thinking | Tool


@dataclass
class Turn:
    """One assistant message, ``pause`` seconds after the previous step."""

    blocks: list[Block]
    pause: float = 0.05


@dataclass
class Session:
    turns: list[Turn]
    model: str = MODEL
    exit: int = 0
    #: lines on stderr after the last turn (each becomes part of an error_message)
    stderr: list[str] = field(default_factory=list)
    #: stdout lines that are not JSON, written before the first turn
    junk: list[str] = field(default_factory=list)
    #: ``system`` messages with these subtypes, written before the first turn
    system: list[str] = field(default_factory=list)
    #: keep running (silent) this long after the last step
    linger: float = 0.0
    session_id: str = "8f1c2d3e-0000-4000-8000-000000000001"


# -- the script --------------------------------------------------------------------------


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), max(1, size))] or [""]


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.steps: list[list[Any]] = []

    def out(self, obj: Any, after: float = 0.0) -> None:
        self.t += after
        self.steps.append([round(self.t, 4), "out", json.dumps(obj, ensure_ascii=False) + "\n"])

    def line(self, stream: str, text: str, after: float = 0.0) -> None:
        self.t += after
        self.steps.append([round(self.t, 4), stream, text])


def _content_item(block: Block, tool_id: str) -> dict[str, Any]:
    if isinstance(block, Text):
        return {"type": "text", "text": block.text}
    if isinstance(block, Thinking):
        return {"type": "thinking", "thinking": block.text, "signature": "c2lnbmF0dXJl"}
    return {"type": "tool_use", "id": tool_id, "name": block.name, "input": block.input}


def script(session: Session, *, gate: bool = False) -> Script:
    """The stream-json lines of ``session``, timed, as a stand-in script."""
    clock = _Clock()
    sid = session.session_id
    clock.out(
        {
            "type": "system",
            "subtype": "init",
            "cwd": ".",
            "session_id": sid,
            "tools": ["Task", "Bash", "Glob", "Grep", "Read", "Edit", "Write", "TodoWrite"],
            "mcp_servers": [],
            "model": session.model,
            "permissionMode": "bypassPermissions",
            "apiKeySource": "none",
        }
    )
    for line in session.junk:
        clock.line("out", line + "\n")
    for subtype in session.system:
        clock.out({"type": "system", "subtype": subtype, "session_id": sid})
    for n, turn in enumerate(session.turns):
        mid = f"msg_{n:05d}"
        clock.t += turn.pause
        message: dict[str, Any] = {
            "id": mid,
            "type": "message",
            "role": "assistant",
            "model": session.model,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 12, "output_tokens": 1},
        }
        clock.out(_event({"type": "message_start", "message": message}, sid))
        tool_ids = [f"toolu_{n:05d}_{i}" for i in range(len(turn.blocks))]
        for i, block in enumerate(turn.blocks):
            if isinstance(block, Tool):
                start = {"type": "tool_use", "id": tool_ids[i], "name": block.name, "input": {}}
                clock.out(
                    _event({"type": "content_block_start", "index": i, "content_block": start}, sid)
                )
                partial = json.dumps(block.input)
                for piece in _pieces(partial, max(1, len(partial) // 2 + 1)):
                    delta = {"type": "input_json_delta", "partial_json": piece}
                    clock.out(
                        _event({"type": "content_block_delta", "index": i, "delta": delta}, sid),
                        0.005,
                    )
            else:
                kind = "text" if isinstance(block, Text) else "thinking"
                start = {"type": kind, kind: ""}
                clock.out(
                    _event({"type": "content_block_start", "index": i, "content_block": start}, sid)
                )
                for piece in _pieces(block.text, block.chunk):
                    delta = {"type": f"{kind}_delta", kind: piece}
                    clock.out(
                        _event({"type": "content_block_delta", "index": i, "delta": delta}, sid),
                        block.interval,
                    )
            clock.out(_event({"type": "content_block_stop", "index": i}, sid))
        content = [_content_item(b, tool_ids[i]) for i, b in enumerate(turn.blocks)]
        has_tools = any(isinstance(b, Tool) for b in turn.blocks)
        stop_reason = "tool_use" if has_tools else "end_turn"
        clock.out(
            {
                "type": "assistant",
                "message": {**message, "content": content, "stop_reason": None},
                "parent_tool_use_id": None,
                "session_id": sid,
            }
        )
        clock.out(
            _event(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": 40},
                },
                sid,
            )
        )
        clock.out(_event({"type": "message_stop"}, sid))
        for i, block in enumerate(turn.blocks):
            if isinstance(block, Tool) and block.result is not None:
                result = {
                    "type": "tool_result",
                    "tool_use_id": tool_ids[i],
                    "content": block.result,
                    "is_error": block.is_error,
                }
                clock.out(
                    {
                        "type": "user",
                        "message": {"role": "user", "content": [result]},
                        "parent_tool_use_id": None,
                        "session_id": sid,
                    },
                    block.runs_for,
                )
    clock.out(
        {
            "type": "result",
            "subtype": "success" if session.exit == 0 else "error_during_execution",
            "is_error": session.exit != 0,
            "duration_ms": int(clock.t * 1000),
            "num_turns": len(session.turns),
            "result": "done",
            "session_id": sid,
            "total_cost_usd": 0.0,
        },
        0.01,
    )
    for line in session.stderr:
        clock.line("err", line + "\n", 0.01)
    return {
        "executor": "claude",
        "steps": clock.steps,
        "exit": session.exit,
        "gate": gate,
        "end": clock.t + session.linger,
    }


def _event(event: dict[str, Any], sid: str) -> dict[str, Any]:
    return {"type": "stream_event", "event": event, "session_id": sid, "parent_tool_use_id": None}


def duration(s: Script) -> float:
    return float(s.get("end", 0.0))


def replaces(session: Session) -> int:
    """How many ``replace`` ops the server should send for ``session`` (stdout only)."""
    n = 0
    for turn in session.turns:
        for block in turn.blocks:
            if isinstance(block, Text | Thinking):
                n += len(_pieces(block.text, block.chunk))  # deltas after the first + the message
            elif _replaced_by_result(block):
                n += 1
    return n


# -- what the server should make of it -------------------------------------------------


def _replaced_by_result(tool: Tool) -> bool:
    return tool.result is not None and (tool.name == "Bash" or _generic(tool.name))


_KNOWN = {
    "TodoWrite", "Task", "Glob", "LS", "Read", "Bash", "Grep", "ExitPlanMode", "Edit",
    "MultiEdit", "Write", "WebFetch", "WebSearch", "TodoRead",
}  # fmt: skip


def _generic(name: str) -> bool:
    """Shown as a generic ``tool`` (with arguments and result): MCP and unknown tools."""
    return name not in _KNOWN and name != "NotebookEdit"


def _label(name: str) -> str:
    parts = name.split("__")
    return f"mcp:{parts[1]}:{parts[2]}" if name.startswith("mcp__") and len(parts) >= 3 else name


def _tool_expectation(tool: Tool) -> dict[str, Any]:
    """Fields of the final entry of a tool call (a subset: what is checked)."""
    name, inp = tool.name, tool.input
    action: str
    content: str
    if name == "Read":
        action, content = "file_read", f"`{inp['file_path']}`"
    elif name in ("Edit", "MultiEdit", "Write"):
        action, content = "file_edit", f"`{inp['file_path']}`"
    elif name == "Bash":
        action, content = "command_run", f"`{inp['command']}`"
    elif name in ("Grep", "Glob"):
        action, content = "search", f"`{inp['pattern']}`"
    elif name == "WebFetch":
        action, content = "web_fetch", f"`{inp['url']}`"
    elif name == "WebSearch":
        action, content = "web_fetch", f"`{inp['query']}`"
    elif name == "Task":
        desc = inp.get("description") or inp.get("prompt") or ""
        action, content = "task_create", f"Task: `{desc}`" if desc else "Task"
    elif name == "TodoWrite":
        action, content = "todo_management", "TODO list updated"
    elif name == "ExitPlanMode":
        action, content = "plan_presentation", inp["plan"]
    elif name == "LS":
        action, content = "other", f"List directory: `{inp['path']}`"
    else:
        action, content = ("tool", _label(name)) if name.startswith("mcp__") else ("other", name)
    status = "created"
    tool_name = name
    fields: dict[str, Any] = {"type": "tool_use", "content": content}
    if _replaced_by_result(tool):
        status = "failed" if tool.is_error else "success"
        if name == "Bash":
            fields["action_type"] = {
                "action": "command_run",
                "command": content,  # the server puts the backticked text here
                "result": _bash_result(tool),
            }
        else:
            tool_name = _label(name)
            action = "tool"
    fields.update(tool_name=tool_name, action=action, status=status)
    return fields


def _bash_result(tool: Tool) -> dict[str, Any]:
    text = tool.result or ""
    try:
        amp = json.loads(text)
    except ValueError:
        amp = None
    if isinstance(amp, dict) and isinstance(amp.get("exitCode"), int):
        return {
            "exit_status": {"type": "exit_code", "code": amp["exitCode"]},
            "output": amp.get("output", ""),
        }
    return {"exit_status": {"type": "success", "success": not tool.is_error}, "output": text}


def expected(session: Session) -> list[dict[str, Any]]:
    """The final version of every stdout-made entry, in index order, as the fields to
    check (see :func:`check`): ``type`` (entry_type.type), ``content``, and for tools
    ``tool_name``, ``action``, ``status`` (and ``action_type`` for Bash)."""
    entries: list[dict[str, Any]] = []
    for line in session.junk:
        if line.strip():
            entries.append({"type": "system_message", "content": line.strip()})
    for subtype in session.system:
        entries.append({"type": "system_message", "content": f"System: {subtype}"})
    model_said = False
    for turn in session.turns:
        if not model_said:
            entries.append(
                {
                    "type": "system_message",
                    "content": f"System initialized with model: {session.model}",
                }
            )
            model_said = True
        for block in turn.blocks:  # streamed blocks get their index at their first delta
            if isinstance(block, Text) and block.text:
                entries.append({"type": "assistant_message", "content": block.text})
            elif isinstance(block, Thinking) and block.text:
                entries.append({"type": "thinking", "content": block.text})
        for block in turn.blocks:  # tool calls when the assistant message arrives
            if isinstance(block, Tool):
                entries.append(_tool_expectation(block))
    return entries


def check(entry: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Differences between a server entry (``NORMALIZED_ENTRY``'s ``content``) and
    :func:`expected`'s fields for it."""
    et = entry.get("entry_type") or {}
    got: dict[str, Any] = {"type": et.get("type"), "content": entry.get("content")}
    if et.get("type") == "tool_use":
        got.update(
            tool_name=et.get("tool_name"),
            action=(et.get("action_type") or {}).get("action"),
            status=(et.get("status") or {}).get("status"),
        )
        if "action_type" in want:
            got["action_type"] = et.get("action_type")
    return [
        f"{k}: server {got.get(k)!r}, expected {v!r}" for k, v in want.items() if got.get(k) != v
    ]


# -- generators ----------------------------------------------------------------------------

_WORDS = tuple(
    [
        "the",
        "test",
        "suite",
        "fails",
        "because",
        "parser",
        "returns",
        "None",
        "when",
        "input",
        "is",
        "empty",
        "so",
        "we",
        "guard",
        "that",
        "case",
        "add",
        "a",
        "regression",
        "test",
        "and",
        "run",
        "pytest",
        "again",
        "while",
        "checking",
        "the",
        "config",
        "loader",
        "handles",
        "missing",
        "keys",
        "refactor",
        "helper",
        "rename",
        "variable",
        "update",
        "docs",
        "module",
        "function",
        "retry",
        "backoff",
        "socket",
        "stream",
        "entry",
        "index",
        "revision",
        "follower",
        "server",
        "client",
    ]
)


def _prose(rng: random.Random, words: int) -> str:
    out = [rng.choice(_WORDS) for _ in range(words)]
    out[0] = out[0].capitalize()
    text = " ".join(out)
    # a few sentence breaks and a code span, as agents write
    if words > 12:
        cut = rng.randrange(6, words - 4)
        parts = text.split(" ")
        parts[cut] += ".\n\n`" + rng.choice(_WORDS) + "()`"
        text = " ".join(parts)
    return text + "."


def _output(rng: random.Random, lines: int) -> str:
    return "\n".join(
        f"{rng.choice(['PASSED', 'ok', 'INFO', 'collected'])} {rng.choice(_WORDS)}_{rng.randrange(1000)}"
        for _ in range(lines)
    )


def all_tools(prefix: str = "src") -> list[Tool]:
    """One call of every tool kind the normalizer knows, with results."""
    return [
        Tool(
            "Bash",
            {"command": "pytest -q", "description": "Run tests"},
            "1 failed, 4 passed",
            is_error=True,
        ),
        Tool("Bash", {"command": "ls"}, "README.md\nsrc\n"),
        Tool("Bash", {"command": "make"}, json.dumps({"output": "built", "exitCode": 2})),
        Tool("Read", {"file_path": f"{prefix}/app.py"}, "     1\timport os\n     2\t"),
        Tool(
            "Edit",
            {"file_path": f"{prefix}/app.py", "old_string": "a = 1\n", "new_string": "a = 2\n"},
            "ok",
        ),
        Tool(
            "MultiEdit",
            {"file_path": f"{prefix}/b.py", "edits": [{"old_string": "x", "new_string": "y"}]},
            "ok",
        ),
        Tool(
            "Write", {"file_path": f"{prefix}/new.py", "content": "print('hi')\n"}, "File created"
        ),
        Tool(
            "Grep",
            {"pattern": "def main", "path": prefix, "output_mode": "content"},
            "src/app.py:3",
        ),
        Tool("Glob", {"pattern": "**/*.py"}, "src/app.py\nsrc/b.py"),
        Tool(
            "TodoWrite",
            {
                "todos": [
                    {"content": "Fix parser", "status": "completed", "activeForm": "Fixing parser"},
                    {"content": "Add test", "status": "in_progress", "activeForm": "Adding test"},
                ]
            },
            "Todos have been modified successfully",
        ),
        Tool(
            "WebFetch", {"url": "https://example.invalid/docs", "prompt": "summarise"}, "Docs say X"
        ),
        Tool("WebSearch", {"query": "python asyncio timeout"}, "results"),
        Tool(
            "Task",
            {
                "description": "Explore the codebase",
                "prompt": "Find the parser",
                "subagent_type": "Explore",
            },
            "Found it in src/app.py",
        ),
        Tool("LS", {"path": prefix}, "app.py\nb.py"),
        Tool("ExitPlanMode", {"plan": "1. fix\n2. test"}, "ok"),
        Tool("mcp__github__create_issue", {"title": "Bug"}, '{"number": 7}'),
        Tool("mcp__fs__read", {"path": "x"}, "not json", is_error=True),
        Tool("SlashCommand", {"command": "/review"}, "reviewed"),
    ]


def busy_session(
    seed: int,
    *,
    turns: int,
    deltas_per_second: float = 50.0,
    chunk: int = 6,
    words: tuple[int, int] = (20, 80),
    tool_ratio: float = 0.5,
    thinking_ratio: float = 0.3,
    prelude: int = 0,
    prelude_rate: float = 1000.0,
    parallel: tuple[int, int] = (1, 1),
) -> Session:
    """A realistic session: ``turns`` assistant messages of thinking, streamed text
    (``deltas_per_second`` deltas of ``chunk`` characters) and tool calls with
    results (commands that pass and fail, reads, edits, searches, todos...).

    ``prelude``: first, one long text of that many characters streamed at
    ``prelude_rate`` deltas/s (the server's history, and so the time it takes to copy
    it for each new connection, grows with every version of a long entry)."""
    rng = random.Random(seed)
    kinds = all_tools()
    interval = 1.0 / deltas_per_second
    out: list[Turn] = []
    if prelude:
        long: list[str] = []
        while sum(len(w) + 1 for w in long) < prelude:
            long.append(rng.choice(_WORDS))
        out.append(Turn([Text(" ".join(long), chunk, 1.0 / prelude_rate)]))
    for _ in range(turns):
        blocks: list[Block] = []
        if rng.random() < thinking_ratio:
            blocks.append(Thinking(_prose(rng, rng.randint(*words) // 2), chunk, interval))
        blocks.append(Text(_prose(rng, rng.randint(*words)), chunk, interval))
        if rng.random() < tool_ratio:  # ``parallel`` calls at once, as Claude issues them
            for _ in range(rng.randint(*parallel)):
                tool = rng.choice(kinds)
                result = tool.result
                if tool.name == "Bash" and rng.random() < 0.5:
                    result = _output(rng, rng.randint(1, 30))
                blocks.append(
                    Tool(tool.name, dict(tool.input), result, tool.is_error, rng.uniform(0.01, 0.1))
                )
        out.append(Turn(blocks, pause=rng.uniform(0.0, 0.05)))
    return Session(out)
