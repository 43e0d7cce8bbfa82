"""Claude Code sessions with tool approvals, on top of :mod:`agents.claude`'s scripts.

Forge 0.7.4 attaches its approval service to every Claude Code process, whatever the
profile. A call waits for a human decision when the CLI, after the ``assistant``
message holding the ``tool_use``, sends the server a ``hook_callback`` control request
for it and then a ``can_use_tool`` one (forge-core ``executors/claude/client.rs``):

1. ``{"type":"control_request","request_id":"hook-N","request":{"subtype":
   "hook_callback","callback_id":"tool_approval","input":{...},"tool_use_id":ID}}``;
   the server answers on stdin (``control_response``, ``request_id`` hook-N);
2. the test waits until the ``tool_use`` entry exists (the approval service looks it
   up in the server's store by ``metadata.tool_call_id``: an entry not there yet
   makes the approval time out at once) and opens the gate;
3. ``{"type":"control_request","request_id":"perm-N","request":{"subtype":
   "can_use_tool","tool_name":NAME,"input":{...}}}``: the entry becomes
   ``pending_approval`` and the server stops reading stdout until the test answers
   (``POST /api/approvals/{id}/respond``); then the status is ``created`` (approved)
   or ``denied {reason}`` (and a ``user_feedback`` entry follows), and the server
   answers perm-N on stdin.

:func:`with_approval` splices that exchange into a script after the message that
calls the tool; its ``tool_result`` (in the script already) follows the answer.
"""

from __future__ import annotations

import json
from typing import Any

from . import Script, claude

#: The tool_result Claude Code reports for a call the user refused.
REFUSED = "The user doesn't want to proceed with this tool use."


def tool_ids(script: Script) -> dict[str, str]:
    """tool_use id → tool name, for every call of a :func:`claude.script`."""
    out: dict[str, str] = {}
    for _, stream, text in script["steps"]:
        if stream != "out":
            continue
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if isinstance(line, dict) and line.get("type") == "assistant":
            for block in line["message"]["content"]:
                if block.get("type") == "tool_use":
                    out[block["id"]] = block["name"]
    return out


def with_approval(script: Script, tool_id: str, gate: str, n: int) -> Script:
    """``script`` with the approval exchange for call ``tool_id`` (request ids
    hook-``n`` and perm-``n``; the test opens ``gate`` once it has seen the entry)."""
    steps: list[list[Any]] = []
    done = False
    for step in script["steps"]:
        steps.append(step)
        at, stream, text = step
        if done or stream != "out" or f'"id": "{tool_id}"' not in text:
            continue
        line = json.loads(text)
        if line.get("type") != "assistant":  # the streamed content_block_start
            continue
        block = next(b for b in line["message"]["content"] if b.get("id") == tool_id)
        hook = {
            "type": "control_request",
            "request_id": f"hook-{n}",
            "request": {
                "subtype": "hook_callback",
                "callback_id": "tool_approval",
                "input": {"hook_event_name": "PreToolUse", "tool_name": block["name"]},
                "tool_use_id": tool_id,
            },
        }
        ask = {
            "type": "control_request",
            "request_id": f"perm-{n}",
            "request": {
                "subtype": "can_use_tool",
                "tool_name": block["name"],
                "input": block["input"],
            },
        }
        steps += [
            [at, "out", json.dumps(hook) + "\n"],
            [at, "await", rf'"request_id":\s*"hook-{n}"'],
            [at, "gate", gate],
            [at, "out", json.dumps(ask) + "\n"],
            [at, "await", rf'"request_id":\s*"perm-{n}"'],
        ]
        done = True
    if not done:
        raise ValueError(f"no assistant message calls {tool_id}")
    return {**script, "steps": steps}


def billing_warning(script: Script) -> Script:
    """The ``system``/``init`` line with ``apiKeySource: ANTHROPIC_API_KEY``: the server
    then adds an ``error_message`` about pay-as-you-go billing."""
    steps = [list(s) for s in script["steps"]]
    first = json.loads(steps[0][2])
    assert first["type"] == "system" and first["subtype"] == "init"
    first["apiKeySource"] = "ANTHROPIC_API_KEY"
    steps[0][2] = json.dumps(first) + "\n"
    return {**script, "steps": steps}


#: The calls of :func:`full_session` that wait for a decision: tool name, input, the
#: gate the test opens, and the answer it gives.
APPROVALS = {
    "Edit": ("edit-seen", {"status": "denied", "reason": "Keep the old check"}),
    "Bash": ("bash-seen", {"status": "approved"}),
}
EDIT = claude.Tool(
    "Edit",
    {
        "file_path": "${cwd}/src/auth.py",
        "old_string": "    return False\n",
        "new_string": "    if not user:\n        return False\n    return user.active\n",
    },
    REFUSED,
    is_error=True,
)
APPROVED_BASH = claude.Tool("Bash", {"command": "git status --short"}, " M src/auth.py")


def full_session() -> tuple[claude.Session, Script, dict[str, tuple[str, str, dict[str, Any]]]]:
    """Every tool kind Claude Code's normalizer knows (with results), thinking and
    streamed text, a system message, stdout that is not JSON, stderr, the billing
    warning, a long command output, a denied edit and an approved command.

    Returns the session, its script (its first step makes an entry: the billing
    warning) and the approvals: tool_use id → (tool name, gate, answer)."""
    long = "\n".join(f"test_{n} PASSED" for n in range(1, 31)) + "\n30 passed"
    turns = [
        claude.Turn(
            [claude.Thinking("Let me look at auth."), claude.Text("I'll read the code first.")]
        )
    ]
    turns += [claude.Turn([claude.Text(f"Now {t.name}."), t]) for t in claude.all_tools("src")]
    turns.append(claude.Turn([claude.Tool("Bash", {"command": "pytest -v"}, long)]))
    turns.append(claude.Turn([claude.Text("Let me fix the check."), EDIT]))
    turns.append(claude.Turn([APPROVED_BASH]))
    turns.append(
        claude.Turn([claude.Text("Fixed the login check; " + "one test still fails. " * 3)])
    )
    session = claude.Session(
        turns,
        junk=["Claude Code warming up (not JSON)"],
        system=["compact_boundary"],
        stderr=["warning: telemetry disabled"],
    )
    script = billing_warning(claude.script(session))
    approvals: dict[str, tuple[str, str, dict[str, Any]]] = {}
    calls = tool_ids(script)
    for n, (name, (gate, answer)) in enumerate(APPROVALS.items(), 1):
        tool = EDIT if name == "Edit" else APPROVED_BASH
        tool_id = next(
            i for i, called in calls.items() if called == name and input_of(script, i) == tool.input
        )
        script = with_approval(script, tool_id, gate, n)
        approvals[tool_id] = (name, gate, answer)
    return session, script, approvals


def input_of(script: Script, tool_id: str) -> Any:
    """The input of call ``tool_id`` in a :func:`claude.script`."""
    for _, stream, text in script["steps"]:
        if stream == "out" and f'"id": "{tool_id}"' in text:
            line = json.loads(text)
            if line.get("type") == "assistant":
                for block in line["message"]["content"]:
                    if block.get("id") == tool_id:
                        return block["input"]
    return None
