"""A coding agent's session on a terminal: what it said, and what each tool call did.

Renders the normalized entries of the real server (``metadata.entryType``, ``tool``,
``approval``, ... as ``dialects/forge/schema.py`` maps them; README, "Agent sessions
on a terminal"): assistant text as text, each tool call on one line (``$ pytest -q``,
``read src/auth.py``, ``edit src/auth.py +3 −1``) with its status and, below it, its
output cut to its first and last lines, an edit's hunks as a coloured mini-diff, a
todo list as checkboxes. A pending approval stands out.

Entries are revised while an agent works (a tool call gets its result, streamed text
grows). The view prints each tool call once it settles: a call still ``created`` is
held until its next version arrives, another entry does, :data:`HOLD` seconds pass,
or the stream ends. A version that changes nothing visible is not printed again; one
that does prints the call's line again (and its output, if that changed); text that
grew prints only what was added.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..constants import TOOL_OUTPUT_CHOICES as TOOL_OUTPUT
from ..times import parse_time

if TYPE_CHECKING:
    from rich.text import Text

    from ..events import LogEntry

#: How long a tool call still ``created`` waits for its result before it is shown.
HOLD = 1.5
#: Output lines shown in compact mode: this many first and last lines.
HEAD = TAIL = 4
#: Entry types this view renders (others: the plain log line).
AGENT_KINDS = frozenset(
    (
        "assistant_message",
        "thinking",
        "user_message",
        "user_feedback",
        "system_message",
        "error_message",
        "tool_use",
        "loading",
        "next_action",
        "token_usage_info",
        "user_answered_questions",
    )
)
_STATUS = {  # status → (glyph, style)
    "created": ("•", "cyan"),
    "success": ("✓", "green"),
    "failed": ("✗", "bold red"),
    "denied": ("⊘", "bold red"),
    "timed_out": ("⌛", "bold red"),
}
_TODO = {"completed": "[x]", "in_progress": "[~]", "pending": "[ ]"}
_GUTTER = "  │ "

Escape = Callable[[str], str]


def is_agent_entry(entry: LogEntry) -> bool:
    """A normalized entry of the real server: a kind this view knows, or any other
    the schema mapped (it numbers and revises them; raw lines are ``STDOUT``/``STDERR``)."""
    meta = entry.metadata
    if meta is None:
        return False
    kind = meta.get("entryType")
    if kind in AGENT_KINDS:
        return True
    return (
        isinstance(kind, str)
        and kind not in ("STDOUT", "STDERR")
        and isinstance(meta.get("index"), int)
        and isinstance(meta.get("revision"), int)
    )


@dataclass
class _Shown:
    """What the terminal shows of one entry (by ``metadata.index``)."""

    head: str = ""  # the tool call's line, or the text, as printed
    body: int = 0  # a hash of its output / diff as printed (0: none)
    pending: bool = False  # it waited for an approval


@dataclass
class Block:
    """One entry's lines: the first carries the entry's time columns, if any."""

    lines: list[Text] = field(default_factory=list)


class AgentView:
    """Turns agent entries into blocks of lines, holding tool calls until they settle.

    ``emit(entry, block)`` prints a block; ``schedule(delay, callback)`` runs
    ``callback`` later and returns a function cancelling it (None: no timer, a held
    call waits for the next entry or :meth:`release`); ``output(text, style)`` makes
    a line of a command's own output (its colours kept: default, escaped as text).
    """

    def __init__(
        self,
        emit: Callable[[LogEntry, Block], None],
        escape: Escape,
        *,
        tool_output: str = "compact",
        schedule: Callable[[float, Callable[[], None]], Callable[[], None] | None] | None = None,
        output: Callable[[str, str], Text] | None = None,
    ) -> None:
        if tool_output not in TOOL_OUTPUT:
            raise ValueError(f"tool_output must be one of {TOOL_OUTPUT}, not {tool_output!r}")
        self.emit = emit
        self.escape = escape
        self.tool_output = tool_output
        self.schedule = schedule
        self.output = output
        self.shown: dict[int, _Shown] = {}
        self.held: LogEntry | None = None
        self._cancel: Callable[[], None] | None = None

    # -- holding -----------------------------------------------------------------------

    def show(self, entry: LogEntry) -> None:
        meta = entry.metadata or {}
        index = meta.get("index")
        again = self.held is not None and _index(self.held) == index
        if self.held is not None and not again:
            self.release()
        tool = meta.get("tool")
        if (
            meta.get("entryType") == "tool_use"
            and isinstance(tool, dict)
            and tool.get("status") == "created"
            and isinstance(index, int)
        ):
            # Held until it settles; a newer version still running (output streaming
            # in) takes its place but not a new delay: a long command shows in time.
            self.held = entry
            if not again and self.schedule is not None:
                self._cancel = self.schedule(HOLD, self._expired(index))
            return
        if again:
            self._unhold()
        self._print(entry)

    def _expired(self, index: int) -> Callable[[], None]:
        def fire() -> None:
            if self.held is not None and _index(self.held) == index:
                self._cancel = None
                self.release()

        return fire

    def _unhold(self) -> None:
        self.held = None
        if self._cancel is not None:
            self._cancel()
            self._cancel = None

    def release(self) -> None:
        """Print the held tool call as it stands."""
        held = self.held
        if held is not None:
            self._unhold()
            self._print(held)

    # -- printing ----------------------------------------------------------------------

    def _print(self, entry: LogEntry) -> None:
        meta = entry.metadata or {}
        index = meta.get("index")
        kind = meta.get("entryType")
        before = self.shown.get(index) if isinstance(index, int) else None
        if kind == "tool_use":
            block = self._tool(entry, meta, before)
        elif kind in ("assistant_message", "thinking"):
            block = self._text(entry, kind, before)
        else:
            block = self._other(entry, meta, before)
        if block is not None and block.lines:
            self.emit(entry, block)

    def _text(self, entry: LogEntry, kind: str, before: _Shown | None) -> Block | None:
        from rich.text import Text

        text = entry.message.rstrip("\n")
        index = (entry.metadata or {}).get("index")
        style = "dim italic" if kind == "thinking" else ""
        if before is not None:
            if text == before.head:
                return None
            if text.startswith(before.head) and before.head:
                before.head, added = text, text[len(before.head) :]
                lines = self.escape(added).split("\n")
                block = Block([Text("…", style="dim")])
                block.lines[0].append(lines[0], style=style)
                block.lines += [Text(line, style=style) for line in lines[1:]]
                return block
        if isinstance(index, int):
            self.shown[index] = _Shown(head=text)
        lines = self.escape(text).split("\n")
        block = Block()
        for n, line in enumerate(lines):
            out = Text()
            if n == 0 and kind == "thinking":
                out.append("thinking: ", style="dim")
            if n == 0 and before is not None:
                out.append("(revised) ", style="dim")
            out.append(line, style=style)
            block.lines.append(out)
        return block

    def _other(self, entry: LogEntry, meta: dict[str, Any], before: _Shown | None) -> Block | None:
        from rich.text import Text

        kind = str(meta.get("entryType"))
        text = self.escape(entry.message.rstrip("\n"))
        if kind == "loading" and not text:
            return None
        head: Text
        if kind == "user_message":
            head, style = Text("> ", style="bold"), "bold"
        elif kind == "user_feedback":
            feedback = meta.get("feedback")
            tool = feedback.get("deniedTool") if isinstance(feedback, dict) else None
            head = Text(f"✋ {self.escape(str(tool))} denied: " if tool else "✋ ", style="yellow")
            style = "yellow"
        elif kind == "error_message":
            error = meta.get("error")
            kind_of = error.get("type") if isinstance(error, dict) else None
            label = "✗ setup required: " if kind_of == "setup_required" else "✗ "
            head, style = Text(label, style="bold red"), "red"
        elif kind == "token_usage_info":
            usage = _dict(meta.get("usage"))
            text = self.escape(
                f"tokens: {usage.get('totalTokens')} of {usage.get('modelContextWindow')}"
            )
            head, style = Text("· ", style="dim"), "dim"
        elif kind == "next_action":
            data = _dict(meta.get("nextAction"))
            text = self.escape("next: " + ", ".join(f"{k} {v}" for k, v in data.items()))
            head, style = Text("· ", style="dim"), "dim"
        else:  # system_message, and kinds this view does not know
            known = kind in ("system_message", "user_answered_questions")
            head = Text("· " if known else f"· [{self.escape(kind)}] ", style="dim")
            style = "dim"
        signature = head.plain + text
        index = meta.get("index")
        if before is not None and before.head == signature:
            return None
        if isinstance(index, int):
            self.shown[index] = _Shown(head=signature)
        lines = text.split("\n")
        first = head.copy()
        first.append(lines[0], style=style)
        pad = " " * len(head.plain) if kind != "user_message" else "  "
        return Block([first, *(Text(pad + line, style=style) for line in lines[1:])])

    # -- tool calls --------------------------------------------------------------------

    def _tool(self, entry: LogEntry, meta: dict[str, Any], before: _Shown | None) -> Block | None:
        from rich.text import Text

        tool = _dict(meta.get("tool"))
        status = tool.get("status")
        approval = meta.get("approval") if isinstance(meta.get("approval"), dict) else None
        what = self._what(entry, tool)
        head = Text()
        if status == "pending_approval":
            head.append(" APPROVAL NEEDED ", style="bold reverse yellow")
            head.append(" ")
            head.append_text(what)
            head.append("  " + self._approval(approval), style="bold yellow")
        else:
            glyph, style = _STATUS.get(str(status), ("?", "yellow"))
            head.append(f"{glyph} ", style=style)
            head.append_text(what)
            note = self._note(tool, status, approval, before)
            if note:
                head.append("  " + note, style=style if status != "success" else "dim")
        body = self._body(tool)
        index = meta.get("index")
        shown = before or _Shown()
        if before is not None and before.head == head.plain and before.body == _plain(body):
            return None
        block = Block([head])
        if before is None or before.body != _plain(body):
            block.lines += body
        shown.head, shown.body = head.plain, _plain(body)
        shown.pending = shown.pending or status == "pending_approval"
        if isinstance(index, int):
            self.shown[index] = shown
        return block

    def _approval(self, approval: dict[str, Any] | None) -> str:
        if not approval:
            return ""
        out = []
        if approval.get("approvalId") is not None:
            out.append(f"approval {self.escape(str(approval['approvalId']))}")
        expires = parse_time(approval.get("timeoutAt"))
        if expires is not None:
            out.append(f"expires {expires.astimezone().strftime('%H:%M:%S')}")
        return ", ".join(out)

    def _note(
        self,
        tool: dict[str, Any],
        status: Any,
        approval: dict[str, Any] | None,
        before: _Shown | None,
    ) -> str:
        """What the status says beyond its glyph."""
        if status == "failed":
            code = tool.get("exitCode")
            return f"exit {code}" if isinstance(code, int) and code else "failed"
        if status == "denied":
            reason = (approval or {}).get("reason")
            return f"denied: {self.escape(str(reason))}" if reason else "denied"
        if status == "timed_out":
            return "approval timed out"
        notes = []
        code = tool.get("exitCode")
        if isinstance(code, int) and not isinstance(code, bool) and code:
            notes.append(f"exit {code}")
        if before is not None and before.pending:
            notes.append("approved")
        if status not in _STATUS and status is not None:
            notes.append(self.escape(str(status)))
        return ", ".join(notes)

    def _what(self, entry: LogEntry, tool: dict[str, Any]) -> Text:
        """What the tool did, in a few words: ``$ pytest -q``, ``read src/auth.py``."""
        from rich.text import Text

        esc = self.escape
        action = tool.get("action")
        subject = esc(entry.message.replace("\n", " ").strip())
        out = Text()
        if action == "command_run":
            out.append("$ ", style="bold")
            out.append(subject, style="bold")
        elif action == "file_read":
            out.append(f"read {subject}")
        elif action == "file_edit":
            out.append_text(self._edit_line(subject, tool.get("changes")))
        elif action == "search":
            out.append("search " + esc(json.dumps(entry.message, ensure_ascii=False)))
        elif action == "web_fetch":
            out.append(f"fetch {subject}")
        elif action == "tool":
            out.append(f"tool {esc(str(tool.get('toolName') or entry.message))}")
            args = tool.get("arguments")
            if args is not None:
                text = args if isinstance(args, str) else _compact(args)
                out.append(" " + esc(_cut(text.replace("\n", " "), 80)), style="dim")
        elif action == "task_create":
            out.append(f"task {subject}")
        elif action == "plan_presentation":
            out.append("plan")
        elif action == "todo_management":
            todos = tool.get("todos")
            operation = tool.get("operation")
            out.append("todos" if todos else f"todo {esc(str(operation or 'list'))}")
        elif action == "other":
            out.append(subject)
        else:
            out.append(f"{esc(str(action))} {subject}" if action is not None else subject)
        return out

    def _edit_line(self, path: str, changes: Any) -> Text:
        """``edit src/auth.py +3 −1``, ``write src/new.py +1``, ``delete old.txt``,
        ``rename a.py → b.py, edit +1 −1``."""
        from rich.text import Text

        parts: list[Text] = []
        plus = minus = 0
        edited = False
        for change in changes if isinstance(changes, list) else ():
            if not isinstance(change, dict):
                continue
            kind = change.get("action")
            if kind == "rename":
                parts.append(Text(f"rename {path} → {self.escape(str(change.get('newPath')))}"))
            elif kind == "write":
                text = change.get("content")
                count = len(text.splitlines()) if isinstance(text, str) else 0
                part = Text(f"write {path} ")
                part.append(f"+{count}", style="green")
                parts.append(part)
            elif kind == "delete":
                parts.append(Text(f"delete {path}"))
            elif kind == "edit":
                edited = True
                added, removed = diff_counts(str(change.get("unifiedDiff") or ""))
                plus, minus = plus + added, minus + removed
            else:
                parts.append(Text(f"{self.escape(str(kind))} {path}"))
        if edited:
            part = Text("edit " if parts else f"edit {path} ")
            part.append(f"+{plus}", style="green")
            part.append(" ")
            part.append(f"−{minus}", style="red")
            parts.append(part)
        if not parts:
            parts.append(Text(f"edit {path}"))
        return Text(", ").join(parts)

    def _body(self, tool: dict[str, Any]) -> list[Text]:
        """The lines under a tool call: output, diff, plan, todos."""
        from rich.text import Text

        action = tool.get("action")
        esc = self.escape
        if action == "todo_management":
            out = []
            for todo in tool.get("todos") or ():
                if not isinstance(todo, dict):
                    continue
                box = _TODO.get(str(todo.get("status")), "[?]")
                line = Text()
                line.append(f"    {box} ", style="green" if box == "[x]" else "")
                done = "dim strike" if box == "[x]" else ("bold" if box == "[~]" else "")
                line.append(esc(str(todo.get("content"))), style=done)
                if todo.get("priority"):
                    line.append(f" ({esc(str(todo['priority']))})", style="dim")
                out.append(line)
            return out
        if self.tool_output == "none":
            return []
        styled: list[tuple[str, str]] = []
        if action == "command_run":
            text = tool.get("output")
            if isinstance(text, str) and text.strip("\n"):
                # A command's output is the process's own: its colours are kept.
                styled = [(line, _OWN) for line in text.rstrip("\n").split("\n")]
        elif action == "file_edit":
            for change in tool.get("changes") or ():
                if not isinstance(change, dict):
                    continue
                if change.get("action") == "edit":
                    styled += _hunks(str(change.get("unifiedDiff") or ""))
                elif change.get("action") == "write" and isinstance(change.get("content"), str):
                    styled += [("+" + line, "green") for line in change["content"].splitlines()]
        elif action == "tool":
            result = tool.get("result")
            if isinstance(result, dict) and result.get("value") is not None:
                value = result["value"]
                text = value if isinstance(value, str) else _compact(value)
                styled = [(line, "") for line in text.rstrip("\n").split("\n")]
        elif action == "plan_presentation":
            plan = tool.get("plan")
            if isinstance(plan, str):
                styled = [(line, "") for line in plan.rstrip("\n").split("\n")]
        if self.tool_output == "compact" and len(styled) > HEAD + TAIL + 1:
            cut = len(styled) - HEAD - TAIL
            styled = [*styled[:HEAD], (f"… {cut} more lines …", "dim italic"), *styled[-TAIL:]]
        lines = []
        for text, style in styled:
            line = Text()
            line.append(_GUTTER, style="dim")
            if style == _OWN and self.output is not None:
                line.append_text(self.output(text, ""))
            else:
                line.append(esc(text), style="" if style == _OWN else style)
            lines.append(line)
        return lines


#: The style of a line of a command's own output (its colours, if any, are its own).
_OWN = "own"


def _hunks(diff: str) -> list[tuple[str, str]]:
    """A unified diff's hunks (not its ``---``/``+++`` header), with their colours."""
    out: list[tuple[str, str]] = []
    inside = False
    for line in diff.rstrip("\n").split("\n"):
        if line.startswith("@@"):
            inside = True
            out.append((line, "cyan"))
        elif not inside:
            continue
        elif line.startswith("+"):
            out.append((line, "green"))
        elif line.startswith("-"):
            out.append((line, "red"))
        else:
            out.append((line, ""))
    return out


def diff_counts(diff: str) -> tuple[int, int]:
    """Lines added and removed by a unified diff's hunks (``---``/``+++`` headers are
    not removals: only lines after an ``@@`` count)."""
    plus = minus = 0
    inside = False
    for line in diff.split("\n"):
        if line.startswith("@@"):
            inside = True
        elif inside and line.startswith("+"):
            plus += 1
        elif inside and line.startswith("-"):
            minus += 1
    return plus, minus


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _compact(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _plain(lines: list[Text]) -> int:
    return hash("\n".join(line.plain for line in lines)) if lines else 0


def _index(entry: LogEntry) -> Any:
    return (entry.metadata or {}).get("index")
