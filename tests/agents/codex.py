"""Codex (executor ``CODEX``): its app-server JSON-RPC, and what Forge makes of it.

Forge 0.7.4 runs ``npx -y @openai/codex@0.55.0 app-server`` (with ``NODE_NO_WARNINGS=1
NO_COLOR=1 RUST_LOG=error``) and speaks JSON-RPC on its stdin/stdout, without
``"jsonrpc":"2.0"``, each request waiting for its answer (forge-core
``crates/executors/src/executors/codex/{client,jsonrpc}.rs``)::

    > {"method":"initialize","id":1,...}            < {"id":1,"result":{"userAgent":...}}
    > {"method":"initialized"}
    > {"method":"newConversation","id":2,...}       < {"id":2,"result":{"conversationId",
                                                        "model","reasoningEffort","rolloutPath"}}
    > {"method":"addConversationListener","id":3}   < {"id":3,"result":{"subscriptionId"}}
    > {"method":"sendUserMessage","id":4,...}       < {"id":4,"result":{}}   (the prompt)

:func:`respond` gives those answers. The session is then the agent's notifications
``{"method":"codex/event/<type>","params":{"id","msg":{"type":<type>,...},
"conversationId"}}``, built with :class:`Session`. After ``task_complete`` the server
stops reading and signals the process group (SIGINT, SIGTERM, SIGKILL, 2 s apart):
the process is then ``completed`` with exit code 0, whatever the program does, so a
script ends by lingering (:data:`ENDED_BY_SIGNAL`).

What the normalizer (``codex/normalize_logs.rs``) makes of the events:

* the answer to ``newConversation``, ``sessionConfigured`` and ``session_configured``:
  a ``system_message`` "model: M  reasoning effort: E" each;
* ``agent_message_delta``/``agent_message`` → ``assistant_message`` (added, replaced
  per delta, replaced by the final text), ``agent_reasoning*`` → ``thinking``;
* ``exec_command_begin`` → ``tool_use`` ``bash`` ``command_run`` (argv joined by
  spaces), ``created``, ``result {exit_status: null, output: null}``; output deltas
  replace its output; ``exec_command_end`` → ``exit_code`` status, ``formatted_output``,
  ``success``/``failed``;
* ``patch_apply_begin`` → one ``edit`` ``file_edit`` entry per file (``write``,
  ``delete``, ``[rename,] edit``; **in a hash map's order**, random per run), ``created``,
  then ``success``/``failed`` at ``patch_apply_end``;
* ``mcp_tool_call_*`` → ``tool`` ``mcp:S:T`` (text → markdown, ``structuredContent`` →
  json, ``Err`` → markdown and ``failed``); ``web_search_*`` → ``web_fetch``;
  ``view_image_tool_call`` → ``file_read``; ``plan_update`` → ``todo_management``;
* ``background_event`` → ``system_message``; ``stream_error`` and ``error`` →
  ``error_message``; stderr → ``error_message``; stdout lines that are not JSON and
  ``token_count``, ``task_started``, ``user_message``, ``turn_aborted`` → nothing;
* approvals (profile ``APPROVALS``): ``exec_approval_request`` and
  ``apply_patch_approval_request`` add their entries (``created``); the JSON-RPC
  request ``execCommandApproval``/``applyPatchApproval`` that follows asks the
  server's approval service. A patch approval is really pending (``pending_approval``,
  answered through ``POST /api/approvals/{id}/respond``); **an exec approval never
  is in 0.7.4**: its entry has ``tool_call_id: ""``, so the service finds nothing and
  answers at once "timed out" (an ``error_message`` "Approval timed out for tool Exec
  Command", decision ``denied``). A denial with a reason answers ``abort``; after
  ``turn_aborted`` the server sends the reason as a new ``sendUserMessage``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from . import Script

PROGRAMS = ("npx",)
PACKAGE = "@openai/codex@"
#: The server ends a turn by signalling the agent: exit quietly (agents/standin.py).
ENDED_BY_SIGNAL = True
CONVERSATION = "019a9e7c-1b2c-7d3e-8f40-5a6b7c8d9e0f"
MODEL = "gpt-5-codex"
EFFORT = "high"
ROLLOUT = f"/home/user/.codex/sessions/2025/11/20/rollout-2025-11-20T10-00-00-{CONVERSATION}.jsonl"
#: The system_message the server makes of a session's configuration.
MODEL_LINE = f"model: {MODEL}  reasoning effort: {EFFORT}"
#: How long a script lingers after its last step (the server kills it long before).
LINGER = 60.0


def matches(program: str, args: Sequence[str]) -> bool:
    return (
        program == "npx"
        and len(args) >= 3
        and args[0] == "-y"
        and args[1].startswith(PACKAGE)
        and "app-server" in args[2:]
    )


def _answers(method: str) -> dict[str, Any] | None:
    if method == "initialize":
        return {"userAgent": "codex_cli_rs/0.55.0 (Linux 6.1; x86_64) forge-codex-executor"}
    if method == "newConversation":
        return {
            "conversationId": CONVERSATION,
            "model": MODEL,
            "reasoningEffort": EFFORT,
            "rolloutPath": ROLLOUT,
        }
    if method == "addConversationListener":
        return {"subscriptionId": "6f1e8d2c-3b4a-4c5d-9e8f-7a6b5c4d3e2f"}
    if method == "sendUserMessage":
        return {}
    return None


def respond(line: str) -> list[str]:
    """Answer the server's requests as the app-server does (the server waits for each)."""
    try:
        message = json.loads(line)
    except ValueError:
        return []
    if not isinstance(message, dict) or "id" not in message:
        return []  # a notification ("initialized"), or the answer to our own request
    result = _answers(str(message.get("method")))
    if result is None:
        return []
    return [json.dumps({"id": message["id"], "result": result}) + "\n"]


def is_prompt(line: str) -> bool:
    return '"sendUserMessage"' in line


class Session:
    """A Codex turn as timed steps: ``session.message("Hi")``, ``session.exec(...)``,
    ..., ``session.script()``. ``pause`` is the time between events."""

    def __init__(self, pause: float = 0.01) -> None:
        self.pause = pause
        self.t = 0.0
        self.steps: list[list[Any]] = []
        self.turn = 0

    # -- raw steps ----------------------------------------------------------------------

    def write(self, obj: Any, after: float | None = None) -> None:
        self.t += self.pause if after is None else after
        text = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
        self.steps.append([round(self.t, 4), "out", text + "\n"])

    def stderr(self, text: str) -> None:
        self.t += self.pause
        self.steps.append([round(self.t, 4), "err", text])

    def gate(self, name: str) -> None:
        """Wait here until the test opens ``name`` (``AgentBed.open``)."""
        self.steps.append([round(self.t, 4), "gate", name])

    def await_line(self, regex: str) -> None:
        """Wait here until the server writes a stdin line matching ``regex``."""
        self.steps.append([round(self.t, 4), "await", regex])

    def event(self, kind: str, **fields: Any) -> None:
        msg = {"type": kind, **fields}
        self.write(
            {
                "method": f"codex/event/{kind}",
                "params": {"id": str(self.turn), "msg": msg, "conversationId": CONVERSATION},
            }
        )

    # -- what agents do -------------------------------------------------------------------

    def configured(self) -> None:
        """``sessionConfigured`` (another "model: ..." system message)."""
        self.write(
            {
                "method": "sessionConfigured",
                "params": {
                    "sessionId": CONVERSATION,
                    "model": MODEL,
                    "reasoningEffort": EFFORT,
                    "historyLogId": 0,
                    "historyEntryCount": 0,
                    "rolloutPath": ROLLOUT,
                },
            }
        )

    def reasoning(self, *pieces: str) -> None:
        for piece in pieces:
            self.event("agent_reasoning_delta", delta=piece)
        self.event("agent_reasoning", text="".join(pieces))
        self.event("agent_reasoning_section_break")

    def message(self, *pieces: str) -> None:
        """Assistant text: one delta per piece (none for a single piece), then the
        whole message."""
        for piece in pieces if len(pieces) > 1 else ():
            self.event("agent_message_delta", delta=piece)
        self.event("agent_message", message="".join(pieces))

    def plan(self, steps: list[tuple[str, str]], explanation: str | None = None) -> None:
        self.event(
            "plan_update",
            explanation=explanation,
            plan=[{"step": step, "status": status} for step, status in steps],
        )

    def exec(
        self,
        call_id: str,
        argv: list[str],
        *,
        stdout: str = "",
        stderr: str = "",
        exit_code: int = 0,
        formatted: str | None = None,
        runs_for: float = 0.05,
    ) -> None:
        """A command: begin, its output streamed (base64 chunks), end."""
        self.event(
            "exec_command_begin",
            call_id=call_id,
            command=argv,
            cwd="${cwd}",
            parsed_cmd=[{"type": "unknown", "cmd": " ".join(argv[2:] or argv)}],
        )
        for stream, text in (("stdout", stdout), ("stderr", stderr)):
            if text:
                chunk = base64.b64encode(text.encode()).decode()
                self.event("exec_command_output_delta", call_id=call_id, stream=stream, chunk=chunk)
        self.t += runs_for
        self.event(
            "exec_command_end",
            call_id=call_id,
            stdout=stdout,
            stderr=stderr,
            aggregated_output=stdout + stderr,
            exit_code=exit_code,
            duration={"secs": 0, "nanos": int(runs_for * 1e9)},
            formatted_output=(stdout + stderr).rstrip("\n") if formatted is None else formatted,
        )

    def patch(self, call_id: str, changes: dict[str, Any], *, success: bool = True) -> None:
        """``changes``: relative path → ``{"add": {content}}``, ``{"delete": {content}}`` or
        ``{"update": {unified_diff, move_path}}`` (``move_path`` relative too)."""
        self.event(
            "patch_apply_begin", call_id=call_id, auto_approved=True, changes=_absolute(changes)
        )
        self.event(
            "patch_apply_end",
            call_id=call_id,
            stdout="Success. Updated the following files:\n" if success else "",
            stderr="" if success else "patch rejected\n",
            success=success,
        )

    def mcp(self, call_id: str, server: str, tool: str, arguments: Any, result: Any) -> None:
        """``result``: ``{"Ok": CallToolResult}`` or ``{"Err": "text"}``."""
        invocation = {"server": server, "tool": tool, "arguments": arguments}
        self.event("mcp_tool_call_begin", call_id=call_id, invocation=invocation)
        self.event(
            "mcp_tool_call_end",
            call_id=call_id,
            invocation=invocation,
            duration={"secs": 0, "nanos": 120000000},
            result=result,
        )

    def web_search(self, call_id: str, query: str) -> None:
        self.event("web_search_begin", call_id=call_id)
        self.event("web_search_end", call_id=call_id, query=query)

    def view_image(self, call_id: str, path: str) -> None:
        self.event("view_image_tool_call", call_id=call_id, path=f"${{cwd}}/{path}")

    def exec_approval(self, call_id: str, argv: list[str], request_id: int, gate: str) -> None:
        """An exec approval request: the entry, then (once the test has seen it and
        opened ``gate``) the JSON-RPC request, and the wait for its decision."""
        reason = "Remove the stale build directory"
        self.event(
            "exec_approval_request", call_id=call_id, command=argv, cwd="${cwd}", reason=reason
        )
        self.gate(gate)
        self.write(
            {
                "id": request_id,
                "method": "execCommandApproval",
                "params": {
                    "conversationId": CONVERSATION,
                    "callId": call_id,
                    "command": argv,
                    "cwd": "${cwd}",
                    "reason": reason,
                },
            }
        )
        self.await_line(rf'"id":\s*{request_id}\s*,\s*"result"')

    def patch_approval(
        self, call_id: str, changes: dict[str, Any], request_id: int, gate: str
    ) -> None:
        """A patch approval request, as :meth:`exec_approval`."""
        full = _absolute(changes)
        reason = "Enable debug logging"
        self.event(
            "apply_patch_approval_request",
            call_id=call_id,
            changes=full,
            reason=reason,
            grant_root=None,
        )
        self.gate(gate)
        self.write(
            {
                "id": request_id,
                "method": "applyPatchApproval",
                "params": {
                    "conversationId": CONVERSATION,
                    "callId": call_id,
                    "fileChanges": full,
                    "reason": reason,
                    "grantRoot": None,
                },
            }
        )
        self.await_line(rf'"id":\s*{request_id}\s*,\s*"result"')

    def script(self, *, complete: bool = True) -> Script:
        """The steps, ending with ``task_complete`` (then lingering until killed)."""
        if complete:
            self.event("task_complete", last_agent_message=None)
        return {"executor": "codex", "steps": self.steps, "exit": 0, "end": self.t + LINGER}


def _absolute(changes: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, change in changes.items():
        change = json.loads(json.dumps(change))
        update = change.get("update")
        if isinstance(update, dict) and update.get("move_path"):
            update["move_path"] = f"${{cwd}}/{update['move_path']}"
        out[f"${{cwd}}/{path}"] = change
    return out


def full_session(*, approvals: bool = True) -> Session:
    """Every kind of entry the Codex normalizer makes (with ``approvals``: the
    APPROVALS profile's exec approval, which times out at once, and a patch approval
    that the test answers; gates ``exec-seen`` and ``patch-seen``)."""
    s = Session()
    s.configured()
    s.event("task_started", model_context_window=272000)
    s.stderr("2025-11-20T10:00:00Z WARN codex_core: slow filesystem\n")
    s.write("codex: not a JSON line (the normalizer ignores it)")
    s.reasoning("**Reading** ", "the auth module")
    s.message("Let me run ", "the tests.")
    s.plan(
        [("Run the tests", "completed"), ("Fix login", "in_progress"), ("Update docs", "pending")]
    )
    s.exec("call_1", ["bash", "-lc", "ls src"], stdout="auth.py\nnew.py\n")
    s.exec(
        "call_2",
        ["bash", "-lc", "pytest -q"],
        stdout="F.\n",
        stderr="E   assert False\n",
        exit_code=1,
        formatted="F.\nE   assert False\n" + "\n".join(f"line {n}" for n in range(1, 30)),
    )
    s.patch(
        "call_3",
        {
            "src/new.py": {"add": {"content": "print('hi')\n"}},
            "src/auth.py": {
                "update": {
                    "unified_diff": "@@ -1,2 +1,3 @@\n def login(user):\n-    return False\n"
                    "+    if not user:\n+        return False\n",
                    "move_path": None,
                }
            },
            "old.txt": {"delete": {"content": "bye\n"}},
            "a.py": {
                "update": {"unified_diff": "@@ -1 +1 @@\n-x = 1\n+x = 2\n", "move_path": "b.py"}
            },
        },
    )
    s.patch(
        "call_11",
        {"setup.cfg": {"update": {"unified_diff": "@@ -1 +1 @@\n-a\n+b\n", "move_path": None}}},
        success=False,
    )
    s.mcp(
        "call_4",
        "github",
        "search_issues",
        {"query": "login"},
        {
            "Ok": {
                "content": [
                    {"type": "text", "text": "#12 login fails"},
                    {"type": "text", "text": "#15 login slow"},
                ]
            }
        },
    )
    s.mcp(
        "call_5",
        "db",
        "query",
        {"sql": "select 1"},
        {
            "Ok": {
                "content": [{"type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png"}],
                "structuredContent": {"rows": [[1]]},
                "isError": False,
            }
        },
    )
    s.mcp(
        "call_6",
        "github",
        "create_issue",
        None,
        {"Err": "tool call failed: server github not connected"},
    )
    s.web_search("call_7", "pytest fixtures scope")
    s.view_image("call_8", "docs/screen.png")
    s.event("background_event", message="Rate limit resets in 5s")
    s.event("stream_error", message="stream disconnected - retrying turn (1/5 in 200ms)...")
    s.event("error", message="unexpected status 500 Internal Server Error")
    s.event(
        "token_count",
        info={
            "total_token_usage": {"input_tokens": 1200, "output_tokens": 340, "total_tokens": 1540},
            "model_context_window": 272000,
        },
        rate_limits=None,
    )
    if approvals:
        s.exec_approval("call_9", ["bash", "-lc", "rm -rf build"], 100, "exec-seen")
        s.exec("call_9", ["bash", "-lc", "rm -rf build"])  # the agent runs it anyway
        s.patch_approval(
            "call_10",
            {
                "config.toml": {
                    "update": {
                        "unified_diff": "@@ -1 +1 @@\n-debug = false\n+debug = true\n",
                        "move_path": None,
                    }
                }
            },
            101,
            "patch-seen",
        )
        s.event("turn_aborted", reason="interrupted")
        s.await_line(r'"sendUserMessage".*User feedback')
        s.turn += 1
    s.message("Understood, config.toml stays as it is.")
    return s
