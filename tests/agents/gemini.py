"""Gemini (executor ``GEMINI``): the Agent Client Protocol, and what Forge makes of it.

Forge 0.7.4 runs ``npx -y @google/gemini-cli@0.8.1 --yolo --experimental-acp`` (with
``NODE_NO_WARNINGS=1``) and speaks ACP v1, JSON-RPC 2.0, on its stdin/stdout (forge-core
``crates/executors/src/executors/acp/{harness,client}.rs``)::

    > {"jsonrpc":"2.0","id":0,"method":"initialize",...}    < {"jsonrpc":"2.0","id":0,"result":{...}}
    > {"jsonrpc":"2.0","id":1,"method":"session/new",...}   < {"jsonrpc":"2.0","id":1,"result":{"sessionId"}}
    > {"jsonrpc":"2.0","id":2,"method":"session/prompt",...}   (the prompt: answered last)
    < {"jsonrpc":"2.0","method":"session/update","params":{"sessionId","update":{...}}} ...
    < {"jsonrpc":"2.0","id":2,"result":{"stopReason":"end_turn"}}   (the turn is over)

:func:`respond` answers the first two; a :class:`Session` script writes the updates
and, last, the answer to the prompt (``${prompt_id}``, filled in by :func:`fill`). The
server then signals the process group, as for Codex (:data:`ENDED_BY_SIGNAL`), and
records ``completed``/0. Qwen Code is the same protocol and normalizer.

The server's ACP client consumes the CLI's stdout and logs its own event lines; the
normalizer (``acp/normalize_logs.rs``) makes of the updates:

* ``agent_message_chunk`` → ``assistant_message``, ``agent_thought_chunk`` →
  ``thinking`` (added, replaced by the concatenation; any other update ends them);
* ``plan`` → a ``system_message`` "Plan:\\n1. …" (not a todo list);
* ``tool_call`` → ``tool_use`` whose ``tool_name`` is the call's **title**;
  ``tool_call_update`` replaces it (fields merged). ``kind`` gives the action:
  ``read`` → ``file_read`` (``read_many_files-*`` ids: ``tool``), ``edit`` →
  ``file_edit`` (``write`` when ``oldText`` is empty, else an ``edit`` diff),
  ``delete`` → ``file_edit [delete]``, ``execute`` → ``command_run`` (exit code and
  stdout, else stderr, from ``rawOutput``; ``success: true`` without it),
  ``search``, ``fetch``, ``think`` and ``other``/``move`` → ``tool``, ``switch_mode``
  → ``other``; status ``pending``/``in_progress`` → ``created``, ``completed`` →
  ``success``, ``failed`` → ``failed``;
* permission requests are approved at once (no approval service: ACP executors never
  have a ``pending_approval``); ``available_commands_update``,
  ``current_mode_update``, ``user_message_chunk`` and stdout that is not JSON → nothing;
* stderr → ``error_message``; an error answer to the prompt → ``error_message``
  "message: data".
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from typing import Any

from . import Script

PROGRAMS = ("npx",)
PACKAGE = "@google/gemini-cli@"
ENDED_BY_SIGNAL = True
SESSION_ID = "gem-sess-1"
LINGER = 60.0

_prompt_id: list[Any] = []
_lock = threading.Lock()


def matches(program: str, args: Sequence[str]) -> bool:
    return (
        program == "npx"
        and len(args) >= 2
        and args[0] == "-y"
        and args[1].startswith(PACKAGE)
        and "--experimental-acp" in args
    )


def respond(line: str) -> list[str]:
    try:
        message = json.loads(line)
    except ValueError:
        return []
    if not isinstance(message, dict) or "id" not in message:
        return []
    method = message.get("method")
    result: dict[str, Any]
    if method == "initialize":
        result = {
            "protocolVersion": 1,
            "agentCapabilities": {
                "loadSession": False,
                "promptCapabilities": {"image": True, "audio": True, "embeddedContext": True},
            },
            "authMethods": [],
        }
    elif method == "session/new":
        result = {"sessionId": SESSION_ID}
    else:
        if method == "session/prompt":
            with _lock:
                _prompt_id.append(message["id"])
        return []
    return [json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}) + "\n"]


def is_prompt(line: str) -> bool:
    return '"session/prompt"' in line


def fill(text: str) -> str:
    """``${prompt_id}``: the id of the server's ``session/prompt`` request."""
    if "${prompt_id}" not in text:
        return text
    with _lock:
        prompt = _prompt_id[-1] if _prompt_id else 2
    return text.replace("${prompt_id}", json.dumps(prompt))


class Session:
    """An ACP prompt turn as timed steps (see :class:`agents.codex.Session`)."""

    def __init__(self, pause: float = 0.01) -> None:
        self.pause = pause
        self.t = 0.0
        self.steps: list[list[Any]] = []

    def write(self, obj: Any) -> None:
        self.t += self.pause
        text = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
        self.steps.append([round(self.t, 4), "out", text + "\n"])

    def stderr(self, text: str) -> None:
        self.t += self.pause
        self.steps.append([round(self.t, 4), "err", text])

    def await_line(self, regex: str) -> None:
        self.steps.append([round(self.t, 4), "await", regex])

    def update(self, what: str, /, **fields: Any) -> None:
        self.write(
            {
                "jsonrpc": "2.0",
                "method": "session/update",
                "params": {"sessionId": SESSION_ID, "update": {"sessionUpdate": what, **fields}},
            }
        )

    def message(self, *chunks: str) -> None:
        for chunk in chunks:
            self.update("agent_message_chunk", content={"type": "text", "text": chunk})

    def thought(self, *chunks: str) -> None:
        for chunk in chunks:
            self.update("agent_thought_chunk", content={"type": "text", "text": chunk})

    def tool(self, call_id: str, title: str, kind: str, status: str, **fields: Any) -> None:
        self.update(
            "tool_call", toolCallId=call_id, title=title, kind=kind, status=status, **fields
        )

    def tool_update(self, call_id: str, status: str, **fields: Any) -> None:
        self.update("tool_call_update", toolCallId=call_id, status=status, **fields)

    def permission(self, request_id: int, tool_call: dict[str, Any]) -> None:
        """A permission request: the server answers it at once (auto-approval)."""
        self.write(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "session/request_permission",
                "params": {
                    "sessionId": SESSION_ID,
                    "toolCall": tool_call,
                    "options": [
                        {
                            "optionId": "proceed_always",
                            "name": "Always allow",
                            "kind": "allow_always",
                        },
                        {"optionId": "proceed_once", "name": "Allow once", "kind": "allow_once"},
                        {"optionId": "cancel", "name": "Reject", "kind": "reject_once"},
                    ],
                },
            }
        )
        self.await_line(rf'"id":\s*{request_id}\s*,\s*"result"')

    def script(self, *, error: dict[str, Any] | None = None) -> Script:
        """The steps, ending with the answer to the prompt (``error``: an error answer)."""
        answer: dict[str, Any] = {"jsonrpc": "2.0", "id": "${prompt_id}"}
        if error is None:
            answer["result"] = {"stopReason": "end_turn"}
        else:
            answer["error"] = error
        self.write(re.sub(r'"\$\{prompt_id\}"', "${prompt_id}", json.dumps(answer)))
        return {"executor": "gemini", "steps": self.steps, "exit": 0, "end": self.t + LINGER}


def _text(text: str) -> list[dict[str, Any]]:
    return [{"type": "content", "content": {"type": "text", "text": text}}]


def full_session() -> Session:
    """One tool call of every kind the ACP normalizer knows, and the other updates."""
    s = Session()
    s.stderr("[WARN] Skipping unreadable directory: /proc\n")
    s.write("Data collection is disabled. (not JSON: the server drops it)")
    s.thought("**Planning the fix** ", "I need to read auth.py first.")
    s.message("I'll fix ", "the login check.")
    s.update(
        "plan",
        entries=[
            {"content": "Read auth.py", "priority": "high", "status": "completed"},
            {"content": "Fix the check", "priority": "medium", "status": "in_progress"},
            {"content": "Run the tests", "priority": "low", "status": "pending"},
        ],
    )
    s.update(
        "available_commands_update",
        availableCommands=[{"name": "memory", "description": "Manage memory", "input": None}],
    )
    s.update("user_message_chunk", content={"type": "text", "text": "echoed user text"})
    s.tool(
        "read_file-1",
        "src/auth.py",
        "read",
        "pending",
        locations=[{"path": "${cwd}/src/auth.py"}],
        rawInput={"absolute_path": "${cwd}/src/auth.py"},
    )
    s.tool_update("read_file-1", "completed", content=_text("def login(user):\n    return False\n"))
    s.tool(
        "read_many_files-2",
        "Will attempt to read files: src/**/*.py",
        "read",
        "in_progress",
        rawInput={"paths": ["src/**/*.py"]},
    )
    s.tool_update(
        "read_many_files-2",
        "completed",
        content=_text("--- src/auth.py ---\ndef login(user): ...\n"),
    )
    s.tool(
        "replace-3",
        "src/auth.py: return False => return user.active",
        "edit",
        "pending",
        locations=[{"path": "${cwd}/src/auth.py", "line": 2}],
        content=[
            {
                "type": "diff",
                "path": "${cwd}/src/auth.py",
                "oldText": "def login(user):\n    return False\n",
                "newText": "def login(user):\n    if not user:\n        return False\n    return user.active\n",
            }
        ],
        rawInput={"file_path": "${cwd}/src/auth.py"},
    )
    s.tool_update("replace-3", "completed")
    s.tool(
        "write_file-4",
        "Writing to src/new.py",
        "edit",
        "pending",
        locations=[{"path": "${cwd}/src/new.py"}],
        content=[
            {
                "type": "diff",
                "path": "${cwd}/src/new.py",
                "oldText": None,
                "newText": "print('hi')\n",
            }
        ],
    )
    s.tool_update("write_file-4", "completed")
    s.tool("delete-5", "old.txt", "delete", "completed", locations=[{"path": "${cwd}/old.txt"}])
    s.tool(
        "run_shell_command-6",
        "ls src (List the sources)",
        "execute",
        "in_progress",
        rawInput={"command": "ls src"},
    )
    s.tool_update(
        "run_shell_command-6",
        "completed",
        rawOutput={"exit_code": 0, "stdout": "auth.py\nnew.py\n", "stderr": ""},
        content=_text("auth.py\nnew.py\n"),
    )
    s.tool(
        "run_shell_command-7",
        "pytest -q (Run the tests)",
        "execute",
        "in_progress",
        rawInput={"command": "pytest -q"},
    )
    s.tool_update(
        "run_shell_command-7", "failed", rawOutput={"exit_code": 1, "stderr": "1 failed, 1 passed"}
    )
    s.tool("run_shell_command-8", "make docs", "execute", "in_progress")
    s.tool_update("run_shell_command-8", "completed")
    s.tool(
        "search_file_content-9",
        "'def login' within src",
        "search",
        "completed",
        rawInput={"pattern": "def login", "path": "src"},
    )
    s.tool(
        "google_web_search-10",
        'Searching the web for: "pytest fixtures"',
        "search",
        "completed",
        rawInput={"query": "pytest fixtures"},
    )
    s.tool(
        "web_fetch-11",
        "Fetching https://example.com/docs and summarizing",
        "fetch",
        "completed",
        rawInput={"prompt": "Summarize https://example.com/docs"},
    )
    s.tool(
        "web_fetch-12",
        "web_fetch",
        "fetch",
        "completed",
        rawInput={"url": "https://example.org/api"},
    )
    s.tool(
        "save_memory-13",
        "Save memory",
        "think",
        "completed",
        content=_text("The user prefers pytest.\n"),
    )
    s.tool(
        "search_issues-14",
        "search_issues (github MCP Server)",
        "other",
        "pending",
        rawInput={"query": "login"},
    )
    s.tool_update("search_issues-14", "completed", rawOutput={"items": [{"number": 12}]})
    s.tool("move-15", "a.py => b.py", "move", "completed")
    s.tool("exit_plan_mode-16", "Ready to code", "switch_mode", "completed")
    pending = {
        "toolCallId": "run_shell_command-17",
        "title": "rm -rf build (Clean the build directory)",
        "kind": "execute",
        "status": "pending",
        "rawInput": {"command": "rm -rf build"},
    }
    s.permission(50, pending)  # the server's client makes the entry of the call
    s.tool_update(
        "run_shell_command-17", "completed", rawOutput={"exit_code": 0, "stdout": "", "stderr": ""}
    )
    s.message("Done: the login check is fixed.")
    return s
