"""The real server's records and entries, as the documented API's events.

The one place where what the real server says (normalized and raw log entries,
execution-process records, diff entries) becomes the documented shapes:
``{level, message, timestamp, source, metadata}`` log lines, ``process_*``
events, diff file entries.
"""

from __future__ import annotations

from typing import Any

from ...events import Event, LogEntry, ProcessEvent, ProcessRecord
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


# -- normalized entries ------------------------------------------------------------------
#
# A ``NORMALIZED_ENTRY`` is ``{timestamp, entry_type: {type, ...}, content, metadata}``
# (forge-core ``crates/executors/src/logs/mod.rs``). It becomes
# ``{level, message, timestamp, source, metadata}``, and everything the server said
# is kept under ``metadata`` (README, "Agent sessions in JSON"):
#
# * ``entryType``, ``index``, ``revision``: always; ``details``: the entry's own
#   ``metadata``, verbatim, when not null.
# * the fields of ``entry_type`` beyond ``type``, camelCased, in one object per kind
#   (:data:`_SECTIONS`): ``tool`` for ``tool_use`` (``{name, action, status}`` and the
#   action's fields, :func:`_tool`), ``approval`` for the fields of its status,
#   ``error`` for ``error_message``, ``feedback`` for ``user_feedback``, and so on.
# * ``content``: the server's text, when ``message`` is not it (tool calls, whose
#   ``message`` is what the tool acted on) or when it is not a string.
# * ``extra``: anything else (unknown keys of the entry and of the patch value, a
#   key that would collide with one forgectl sets), camelCased, values verbatim.
#
# Keys the server names are camelCased; values are copied verbatim, and so are the
# free-form values agents fill in (tool arguments, results, the entry's metadata).

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
    "token_usage_info": ("debug", "executor"),  # newer servers
    "user_answered_questions": ("info", "user"),  # newer servers
}
_DEFAULT_KIND = ("info", "executor")
#: The kinds with no fields of their own: an entry of one of these, in the usual
#: shape, is mapped by the first lines of :func:`entry_line` alone (most of an
#: agent's output, and what the decoders' hot path sees).
_PLAIN_KINDS = {
    kind: where
    for kind, where in _ENTRY_KINDS.items()
    if kind in ("user_message", "assistant_message", "system_message", "thinking", "loading")
}
#: Where a kind's own fields go under ``metadata`` (other kinds: the kind camelCased).
_SECTIONS = {
    "tool_use": "tool",
    "error_message": "error",
    "user_feedback": "feedback",
    "next_action": "nextAction",
    "token_usage_info": "usage",
}
#: tool status → level
_TOOL_LEVELS = {
    "success": "success",
    "failed": "error",
    "denied": "error",
    "timed_out": "error",
    "created": "info",
    "pending_approval": "warn",
}
#: Statuses the approval service sets: the entry always has ``metadata.approval``.
_APPROVAL_STATUSES = frozenset(("pending_approval", "denied", "timed_out"))
#: action → the field that says what the tool acted on (its ``message``)
_ACTION_SUBJECTS = {
    "file_read": "path",
    "file_edit": "path",
    "command_run": "command",
    "search": "query",
    "web_fetch": "url",
    "tool": "tool_name",
    "task_create": "description",
    "plan_presentation": "plan",
}
#: ``tool`` keys forgectl sets itself: an action field of that name goes to ``extra``.
_TOOL_OWN = frozenset(("name", "action", "status"))
_ENTRY_KEYS = frozenset(("timestamp", "entry_type", "content", "metadata"))

_CAMEL: dict[str, str] = {}


def camel(key: str) -> str:
    """``unified_diff`` → ``unifiedDiff``; keys without ``_`` (``apiKeySource``) unchanged."""
    done = _CAMEL.get(key)
    if done is None:
        head, *rest = key.split("_")
        done = head + "".join(part[:1].upper() + part[1:] for part in rest) if rest else key
        if len(_CAMEL) < 4096:  # keys come from a closed set; a hostile server's stay uncached
            _CAMEL[key] = done
    return done


def _put(target: dict[str, Any], key: str, value: Any, own: frozenset[str] = frozenset()) -> None:
    """``target[key] = value``, or into ``target["extra"]`` if the key is taken."""
    if key in own or key in target or key == "extra":
        target.setdefault("extra", {})[key] = value
    else:
        target[key] = value


def _fields(obj: dict[str, Any], skip: str) -> dict[str, Any]:
    """The fields of a server object but ``skip``, camelCased, values verbatim."""
    return {camel(k): v for k, v in obj.items() if k != skip}


def entry_line(content: Any, index: int, revision: int = 0) -> dict[str, Any] | None:
    """A ``NORMALIZED_ENTRY``'s ``content`` as the documented log line (None if it is
    not an object). The decoders' hot path calls this for every entry: the usual
    shape, a kind without fields, is mapped by the first lines alone."""
    try:
        entry_type = content["entry_type"]
        kind = entry_type["type"]
        message = content["content"]
        timestamp = content["timestamp"]
        details = content["metadata"]
        plain = _PLAIN_KINDS.get(kind) if len(entry_type) == 1 and len(content) == 4 else None
    except (LookupError, TypeError):
        plain = None
    if plain is not None and type(message) is str and (timestamp is None or type(timestamp) is str):
        metadata = {"entryType": kind, "index": index, "revision": revision}
        if details is not None:
            metadata["details"] = details
        return {
            "level": plain[0],
            "message": message,
            "timestamp": timestamp,
            "source": plain[1],
            "metadata": metadata,
        }
    if type(content) is not dict:
        return None
    return _entry_line(content, index, revision)


def _entry_line(content: dict[str, Any], index: int, revision: int) -> dict[str, Any]:
    """Every entry :func:`entry_line` does not map in its first lines."""
    entry_type = content.get("entry_type")
    kind = entry_type.get("type") if type(entry_type) is dict else None
    if type(kind) is not str:
        kind = "unknown"
    level, source = _ENTRY_KINDS.get(kind, _DEFAULT_KIND)
    metadata: dict[str, Any] = {"entryType": kind, "index": index, "revision": revision}
    text = content.get("content")
    message = text if type(text) is str else ""
    if type(entry_type) is dict:
        if kind == "tool_use":
            level, source, message = _tool(entry_type, metadata, message)
        else:
            section = {k: v for k, v in entry_type.items() if k != "type"}
            if section:
                own = _kind_section(kind, section)
                metadata[_SECTIONS.get(kind) or camel(kind)] = own
                if kind == "next_action" and own.get("failed") is True:
                    level = "error"
    elif entry_type is not None:
        metadata["extra"] = {"entryType": entry_type}
    if kind == "tool_use" or type(text) is not str:
        _put(metadata, "content", text)
    timestamp = content.get("timestamp")
    if timestamp is not None and type(timestamp) is not str:
        metadata.setdefault("extra", {})["timestamp"] = timestamp
        timestamp = None
    details = content.get("metadata")
    if details is not None:
        metadata["details"] = details
    if not _ENTRY_KEYS.issuperset(content):
        extra = metadata.setdefault("extra", {})
        for key, value in content.items():
            if key not in _ENTRY_KEYS:
                extra[camel(key)] = value
    return {
        "level": level,
        "message": message,
        "timestamp": timestamp,
        "source": source,
        "metadata": metadata,
    }


def _kind_section(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The fields of an entry type other than ``tool_use``, camelCased. An error's
    type (``{"type": "setup_required"}``) is unwrapped to its name."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if kind == "error_message" and key == "error_type":
            if type(value) is dict and type(value.get("type")) is str:
                out["type"] = value["type"]
                for k, v in value.items():
                    if k != "type":
                        _put(out, camel(k), v)
                continue
            _put(out, "type", value)
            continue
        _put(out, camel(key), value)
    return out


def _tool(
    entry_type: dict[str, Any], metadata: dict[str, Any], content: str
) -> tuple[str, str, str]:
    """``tool_use``: ``metadata.tool`` (and ``metadata.approval``); its level, source
    and message (what the tool acted on, else the server's text)."""
    tool: dict[str, Any] = {}
    level = "info"
    source = "tool"
    message = content
    name = entry_type.get("tool_name")
    if name is not None:
        tool["name"] = name
        if type(name) is str:
            source = f"tool:{name}"
    action_type = entry_type.get("action_type")
    action: Any = None
    if type(action_type) is dict:
        action = action_type.get("action")
        if "action" in action_type:
            tool["action"] = action
    status = entry_type.get("status")
    approval: dict[str, Any] | None = None
    if type(status) is dict:
        state = status.get("status")
        if "status" in status:
            tool["status"] = state
        if type(state) is str:
            level = _TOOL_LEVELS.get(state, "info")
        fields = _fields(status, "status")
        if fields or state in _APPROVAL_STATUSES:
            approval = fields
    elif status is not None:
        tool["status"] = status
        if type(status) is str:
            level = _TOOL_LEVELS.get(status, "info")
    if type(action_type) is dict:
        for key, value in action_type.items():
            if key != "action":
                _action_field(tool, action, key, value)
        subject = action_type.get(_ACTION_SUBJECTS.get(action, "") if type(action) is str else "")
        if type(subject) is str and subject:
            if action == "command_run" and len(subject) > 1 and subject[0] == subject[-1] == "`":
                subject = subject[1:-1]  # Claude's summary: the command in backticks
            message = subject
    elif action_type is not None:
        _put(tool, "actionType", action_type)
    for key, value in entry_type.items():
        if key not in ("type", "tool_name", "action_type", "status"):
            _put(tool, camel(key), value, _TOOL_OWN)
    metadata["tool"] = tool
    if approval is not None:
        metadata["approval"] = approval
    return level, source, message


def _action_field(tool: dict[str, Any], action: Any, key: str, value: Any) -> None:
    """One field of an ``action_type`` into ``metadata.tool``."""
    if key == "result" and action == "command_run":
        # CommandRunResult {exit_status, output}: flattened. No ``output`` key at all
        # means the server sent ``result: null`` (no result yet).
        if type(value) is dict:
            for k, v in value.items():
                if k == "exit_status":
                    _exit_status(tool, v)
                else:
                    _put(tool, camel(k), v, _TOOL_OWN)
        elif value is not None:
            _put(tool, "result", value, _TOOL_OWN)
        return
    if key == "result" and action == "tool" and type(value) is dict:
        # ToolResult {type: {type: markdown|json}, value}: the type unwrapped.
        result = dict(value)
        kind = result.get("type")
        if type(kind) is dict and len(kind) == 1 and type(kind.get("type")) is str:
            result["type"] = kind["type"]
        _put(tool, "result", _fields(result, ""), _TOOL_OWN)
        return
    if key in ("changes", "todos") and type(value) is list:
        # FileChange and TodoItem: server objects, their keys camelCased
        value = [_fields(item, "") if type(item) is dict else item for item in value]
    _put(tool, camel(key), value, _TOOL_OWN)


def _exit_status(tool: dict[str, Any], status: Any) -> None:
    """CommandExitStatus: ``{type: exit_code, code}`` → ``exitCode``, ``{type: success,
    success}`` → ``success``; anything else verbatim as ``exitStatus``."""
    if type(status) is dict and len(status) == 2:
        kind = status.get("type")
        if kind == "exit_code" and "code" in status:
            _put(tool, "exitCode", status["code"], _TOOL_OWN)
            return
        if kind == "success" and "success" in status:
            _put(tool, "success", status["success"], _TOOL_OWN)
            return
    if status is not None:
        _put(tool, "exitStatus", status, _TOOL_OWN)


def normalize_entry(index: int, value: dict[str, Any], revision: int = 0) -> dict[str, Any] | None:
    """A ``NORMALIZED_ENTRY`` patch value as the documented log line (None if it is
    not one)."""
    content = value.get("content")
    if type(content) is not dict or value.get("type") != "NORMALIZED_ENTRY":
        return None
    line = entry_line(content, index, revision)
    if line is not None and len(value) > 2:
        extra = line["metadata"].setdefault("extra", {})
        for key, item in value.items():
            if key not in ("type", "content"):
                extra.setdefault(camel(key), item)
    return line


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


def process_record(record: dict[str, Any]) -> ProcessRecord:
    """A real-server execution-process record as ``ps`` prints it (the documented
    names; ``chained`` when its ``executor_action`` names a ``next_action``)."""
    action = record.get("executor_action")
    chained = type(action) is dict and type(action.get("next_action")) is dict
    status = record.get("status")
    return ProcessRecord(
        {
            "processId": record.get("id"),
            "taskAttemptId": record.get("task_attempt_id"),
            "runReason": record.get("run_reason"),
            "executor": _executor(record),
            "status": status if type(status) is str else "running",
            "exitCode": record.get("exit_code"),
            "startedAt": record.get("started_at") or record.get("created_at"),
            "completedAt": record.get("completed_at"),
        },
        chained=chained,
    )


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
    """The server's counts (sent when it omits the contents) put right where it
    gets them wrong, for an added or a deleted file.

    It counts with forge-core's ``compute_line_change_counts``: a line diff of
    the two texts after adding a newline to any text that lacks one (``similar``'s
    ``TextDiff::from_lines``). An added file's missing old text is ``""``, which
    that makes one empty line: it is deleted (``a\nb\n`` → 2 additions, 1
    deletion), or, when the new file has an empty line of its own, matched
    against it, and that line is not counted as added (``a\n\nb\n`` → 2, 0; git
    says 3, 0). A deleted file alike, the other way round. One case is beyond
    repair: 0, 0 for an added file is an empty file (0 lines) or a file of one
    empty line (1): taken as the empty file. For a modified file the added
    newline hides a change to a last line without one; those counts stay the
    server's.
    """
    change = content.get("change")
    additions, deletions = content.get("additions"), content.get("deletions")
    if type(additions) is not int or type(deletions) is not int:
        return content
    if change == "added":
        if deletions:
            return {**content, "deletions": 0}
        if additions:
            return {**content, "additions": additions + 1}
    elif change == "deleted":
        if additions:
            return {**content, "additions": 0}
        if deletions:
            return {**content, "deletions": deletions + 1}
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
