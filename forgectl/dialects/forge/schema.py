"""The real server's records and entries, as the documented API's events.

The one place where what the real server says (normalized and raw log entries,
execution-process records, diff entries) becomes the documented shapes:
``{level, message, timestamp, source, metadata}`` log lines, ``process_*``
events, diff file entries.
"""

from __future__ import annotations

from typing import Any

from ...events import Event, LogEntry, ProcessEvent
from ...times import parse_time

#: The raw entry types, and the stream each names.
_STREAMS = {"STDOUT": "stdout", "STDERR": "stderr"}


def _raw_line(line: str, stream: str, index: int) -> LogEntry:
    return LogEntry(
        {
            "level": "warn" if stream == "stderr" else "info",
            "message": line,
            "timestamp": None,
            "source": stream,
            "metadata": {"entryType": stream.upper(), "index": index},
        }
    )


#: entry_type.type → (level, source)
_ENTRY_KINDS: dict[str, tuple[str, str]] = {
    "user_message": ("info", "user"),
    "user_feedback": ("info", "user"),
    "assistant_message": ("info", "assistant"),
    "system_message": ("info", "system"),
    "thinking": ("debug", "assistant"),
    "loading": ("debug", "executor"),
    "error_message": ("error", "executor"),
    "next_action": ("info", "executor"),
    "tool_use": ("info", "tool"),
}
_TOOL_LEVELS = {
    "success": "success",
    "failed": "error",
    "denied": "error",
    "timed_out": "error",
    "created": "info",
    "pending_approval": "warn",
}


def normalize_entry(index: int, value: dict[str, Any], revision: int = 0) -> dict[str, Any] | None:
    """A ``NORMALIZED_ENTRY`` as the documented ``{level, message, timestamp, source, metadata}``."""
    content = value.get("content")
    if type(content) is not dict or value.get("type") != "NORMALIZED_ENTRY":
        return None
    entry_type = content.get("entry_type")
    kind = entry_type.get("type") if type(entry_type) is dict else None
    if type(kind) is not str:
        kind = "unknown"
    level, source = _ENTRY_KINDS.get(kind, _DEFAULT_KIND)
    metadata: dict[str, Any] = {"entryType": kind, "index": index, "revision": revision}
    if kind == "tool_use" or kind == "error_message":
        level, source = _detail(kind, entry_type, metadata, level, source)  # type: ignore[arg-type]
    extra = content.get("metadata")
    if extra is not None:
        metadata["details"] = extra
    message = content.get("content")
    timestamp = content.get("timestamp")
    return {
        "level": level,
        "message": message if type(message) is str else "",
        "timestamp": timestamp if type(timestamp) is str else None,
        "source": source,
        "metadata": metadata,
    }


_DEFAULT_KIND = ("info", "executor")
#: The kinds whose level and source follow from the kind alone (no tool or error details).
_PLAIN_KINDS = {
    kind: where for kind, where in _ENTRY_KINDS.items() if kind not in ("tool_use", "error_message")
}


def _detail(
    kind: str, entry_type: dict[str, Any], metadata: dict[str, Any], level: str, source: str
) -> tuple[str, str]:
    """Tool calls and errors: their status, tool and error type in ``metadata``."""
    if kind == "tool_use":
        tool = entry_type.get("tool_name")
        if type(tool) is str:
            metadata["toolName"] = tool
            source = f"tool:{tool}"
        status = entry_type.get("status")
        status_name = status.get("status") if type(status) is dict else status
        if type(status_name) is str:
            metadata["status"] = status_name
            level = _TOOL_LEVELS.get(status_name, level)
        action = entry_type.get("action_type")
        if type(action) is dict and type(action.get("action")) is str:
            metadata["action"] = action["action"]
    else:
        error_type = entry_type.get("error_type")
        if type(error_type) is dict and type(error_type.get("type")) is str:
            metadata["errorType"] = error_type["type"]
    return level, source


def _executor(record: dict[str, Any]) -> str | None:
    action = record.get("executor_action")
    typ = action.get("typ") if type(action) is dict else None
    if type(typ) is not dict:
        return None
    profile = typ.get("executor_profile_id")
    if type(profile) is dict and type(profile.get("executor")) is str:
        return str(profile["executor"])
    for key in ("context", "type"):
        if type(typ.get(key)) is str:
            return str(typ[key])
    return None


def _state(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record.get("status"), record.get("exit_code"), record.get("completed_at"))


def process_events(record: dict[str, Any], started: bool, ended: bool) -> list[Event]:
    """The documented events for a record: started and/or its terminal event."""
    pid = record.get("id")
    base = {"processId": pid, "taskAttemptId": record.get("task_attempt_id")}
    reason = record.get("run_reason")
    out: list[Event] = []
    if started:
        out.append(
            ProcessEvent(
                {
                    "type": "process_started",
                    **base,
                    "executor": _executor(record),
                    "startedAt": record.get("started_at"),
                    "runReason": reason,
                }
            )
        )
    if not ended:
        return out
    status = record.get("status")
    exit_code = record.get("exit_code")
    done_at = record.get("completed_at") or record.get("updated_at")
    if status == "completed":
        begin, end = parse_time(record.get("started_at")), parse_time(done_at)
        duration = round((end - begin).total_seconds() * 1000) if begin and end else None
        out.append(
            ProcessEvent(
                {
                    "type": "process_completed",
                    **base,
                    "completedAt": done_at,
                    "duration": duration,
                    "exitCode": exit_code,
                    "runReason": reason,
                }
            )
        )
    elif status == "failed":
        code = f"exit code {exit_code}" if exit_code is not None else "no exit code"
        out.append(
            ProcessEvent(
                {
                    "type": "process_failed",
                    **base,
                    "failedAt": done_at,
                    "error": {
                        "code": "EXECUTION_ERROR",
                        "message": f"{reason or 'process'} failed ({code})",
                    },
                    "exitCode": exit_code,
                    "runReason": reason,
                }
            )
        )
    elif status == "killed":
        out.append(
            ProcessEvent(
                {
                    "type": "process_stopped",
                    **base,
                    "stoppedAt": done_at,
                    "reason": "killed",
                    "exitCode": exit_code,
                    "runReason": reason,
                }
            )
        )
    return out


def _fix_counts(content: dict[str, Any]) -> dict[str, Any]:
    """The server's counts (sent when contents are omitted) give an added file one
    deletion and, alike, a deleted file one addition; neither has any."""
    change = content.get("change")
    if change == "added" and content.get("deletions"):
        return {**content, "deletions": 0}
    if change == "deleted" and content.get("additions"):
        return {**content, "additions": 0}
    return content


#: The fields of a diff entry's content and the JSON types each may have.
_DIFF_FIELDS: dict[str, tuple[type, ...]] = {
    "change": (str,),
    "oldPath": (str, type(None)),
    "newPath": (str, type(None)),
    "oldContent": (str, type(None)),
    "newContent": (str, type(None)),
    "contentOmitted": (bool, type(None)),
    "additions": (int, type(None)),
    "deletions": (int, type(None)),
}


def diff_entry(content: dict[str, Any]) -> dict[str, Any] | str:
    """A diff entry's content, checked and with its counts fixed; or why it is
    not one (a field of the wrong type: the stream warns and skips it)."""
    for name, types in _DIFF_FIELDS.items():
        value = content.get(name)
        if not isinstance(value, types) or (type(value) is bool and bool not in types):
            return f"{name} is {_json_type(value)}"
    return _fix_counts(content)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    names = {str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), f"a JSON {type(value).__name__}")
