"""Checking forgectl's JSON lines against what the real server sent, field by field.

Two checks, written independently of forgectl's schema
(``forgectl/dialects/forge/schema.py``):

* :func:`unmap` rebuilds the server's ``NORMALIZED_ENTRY`` content from a forgectl
  line, by the README's rules read backwards. If it gives back exactly what the
  server sent, nothing was dropped or altered: every key of ``entry_type`` (the
  action, its fields, the result, the status and its approval fields) is under
  ``metadata``, every value as sent.
* :func:`diff_lines` lists where forgectl's line differs from the server's entry
  mapped through the schema (to check the decoders and the pipeline around it).
"""

from __future__ import annotations

import re
from typing import Any

_UPPER = re.compile(r"[A-Z]")


def snake(key: str) -> str:
    """``unifiedDiff`` → ``unified_diff`` (the server's keys are all snake_case)."""
    return _UPPER.sub(lambda m: "_" + m.group().lower(), key)


def _snaked(obj: dict[str, Any]) -> dict[str, Any]:
    return {snake(k): v for k, v in obj.items()}


#: entry type → where its own fields are under metadata (README)
SECTIONS = {
    "tool_use": "tool",
    "error_message": "error",
    "user_feedback": "feedback",
    "next_action": "nextAction",
    "token_usage_info": "usage",
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def unmap(line: dict[str, Any]) -> dict[str, Any]:
    """The server's entry content ``{timestamp, entry_type, content, metadata}`` that
    forgectl's ``line`` says it received."""
    meta = dict(line["metadata"])
    kind = meta.pop("entryType")
    meta.pop("index")
    meta.pop("revision")
    extra = dict(meta.pop("extra", {}))
    out: dict[str, Any] = {
        "timestamp": extra.pop("timestamp", line["timestamp"]),
        "content": meta.pop("content", line["message"]),
        "metadata": meta.pop("details", None),
    }
    entry_type: dict[str, Any] = {"type": kind}
    if kind == "tool_use":
        entry_type.update(_unmap_tool(dict(meta.pop("tool")), meta.pop("approval", None)))
    else:
        section = meta.pop(SECTIONS.get(kind) or _camel(kind), None)
        if section is not None:
            fields = dict(section)
            if kind == "error_message":
                error = {"type": fields.pop("type")}
                error.update(_snaked(fields.pop("extra", {})))
                error.update(_snaked(fields))
                fields = {"errorType": error}
            entry_type.update(_snaked(fields))
    out["entry_type"] = entry_type
    out.update({snake(k): v for k, v in extra.items()})
    if meta:
        raise AssertionError(f"metadata keys the README does not name: {sorted(meta)}")
    return out


def _unmap_tool(tool: dict[str, Any], approval: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "name" in tool:
        out["tool_name"] = tool.pop("name")
    status: dict[str, Any] = {}
    if "status" in tool:
        status["status"] = tool.pop("status")
    status.update(_snaked(approval or {}))
    action: dict[str, Any] = {}
    if "action" in tool:
        action["action"] = tool.pop("action")
    kind = action.get("action")
    if kind == "command_run":
        if "output" in tool:
            result: dict[str, Any] = {"exit_status": None, "output": tool.pop("output")}
            if "exitCode" in tool:
                result["exit_status"] = {"type": "exit_code", "code": tool.pop("exitCode")}
            elif "success" in tool:
                result["exit_status"] = {"type": "success", "success": tool.pop("success")}
            elif "exitStatus" in tool:
                result["exit_status"] = tool.pop("exitStatus")
            action["result"] = result
        else:
            action["result"] = tool.pop("result", None)
    if kind == "tool" and isinstance(tool.get("result"), dict):
        result = _snaked(tool.pop("result"))
        if isinstance(result.get("type"), str):
            result["type"] = {"type": result["type"]}
        action["result"] = result
    for key in ("changes", "todos"):
        if isinstance(tool.get(key), list):
            action[key] = [_snaked(i) if isinstance(i, dict) else i for i in tool.pop(key)]
    action.update(_snaked(tool))
    out["action_type"] = action
    out["status"] = status
    return out


def lost(server: dict[str, Any], line: dict[str, Any]) -> list[str]:
    """What of the server's entry content ``server`` the line does not give back."""
    try:
        rebuilt = unmap(line)
    except (AssertionError, KeyError, TypeError) as exc:
        return [f"cannot read the line back: {exc!r}"]
    return _differences(server, rebuilt, "")


def _differences(want: Any, got: Any, where: str) -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        out: list[str] = []
        for key in sorted(set(want) | set(got)):
            if key not in got:
                out.append(f"{where}.{key}: dropped (server: {want[key]!r:.80})")
            elif key not in want:
                out.append(f"{where}.{key}: not sent by the server ({got[key]!r:.80})")
            else:
                out += _differences(want[key], got[key], f"{where}.{key}")
        return out
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        return [
            p
            for i, (w, g) in enumerate(zip(want, got, strict=True))
            for p in _differences(w, g, f"{where}[{i}]")
        ]
    if want != got or type(want) is not type(got):
        return [f"{where}: {got!r:.80} != server's {want!r:.80}"]
    return []


def diff_lines(want: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Where ``got`` (forgectl's line) differs from ``want`` (the server's entry mapped
    through the schema), ``metadata.revision`` aside."""
    a = {**want, "metadata": {k: v for k, v in want["metadata"].items() if k != "revision"}}
    b = {
        **got,
        "metadata": {k: v for k, v in (got.get("metadata") or {}).items() if k != "revision"},
    }
    return _differences(a, b, "")
