"""Reading the real server's RFC 6902 JSON Patch frames.

The server patches a handful of known documents (``/entries/<n>``,
``/entries/<file path>``, ``/execution_processes/<id>``), so each decoder
interprets ops on its own paths directly: an op costs O(size of the op), never a
copy of a document (a general JSON Patch library would either copy the document
or walk it from the root for every op). Anything else is reported, not applied.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from ..diagnostics import describe_frame

FINISHED = "finished"
#: Newer upstream servers end a stream's history with ``{"Ready": true}``.
READY = "Ready"


class Frame:
    """One parsed frame: a list of ops, the ``finished`` marker or the ``Ready`` one."""

    __slots__ = ("finished", "ops", "ready")

    def __init__(self, ops: list[dict[str, Any]], finished: bool, ready: bool = False) -> None:
        self.ops = ops
        self.finished = finished
        self.ready = ready


class BadFrame(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def parse(frame: bytes | str) -> Frame:
    """Parse ``{"JsonPatch":[...]}``, ``{"finished":true}`` or ``{"Ready":true}``;
    raise :class:`BadFrame`."""
    return shape(load(frame))


def load(frame: bytes | str) -> Any:
    """The frame's JSON value; :class:`BadFrame` if it is not JSON."""
    try:
        return orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise BadFrame("invalid JSON frame", describe_frame(frame, exc)) from None


def shape(obj: Any) -> Frame:
    """A parsed frame's ops or marker; :class:`BadFrame` for anything else."""
    if type(obj) is dict:
        ops = obj.get("JsonPatch")
        if type(ops) is list:
            return Frame(ops, False)
        if obj.get(FINISHED) is True:
            return Frame([], True)
        if obj.get(READY) is True:
            return Frame([], False, ready=True)
        keys = ", ".join(list(obj)[:5]) or "no keys"
        raise BadFrame("unexpected message", f"an object with {keys}")
    if type(obj) is list:  # SSE data lines carry the bare op list
        return Frame(obj, False)
    raise BadFrame("unexpected message", f"a JSON {type(obj).__name__}")


def unescape(segment: str) -> str:
    """JSON Pointer (RFC 6901) segment: ``~1`` is ``/``, ``~0`` is ``~`` (in that order)."""
    if "~" not in segment:
        return segment
    return segment.replace("~1", "/").replace("~0", "~")


def split(path: str, prefix: str) -> str | None:
    """The rest of ``path`` after ``prefix`` (unescaped), or None if it is not under it."""
    if not path.startswith(prefix):
        return None
    return unescape(path[len(prefix) :])


def ops_of(frame: Frame) -> Iterator[tuple[str, str, Any]]:
    for op in frame.ops:
        if type(op) is not dict:
            raise BadFrame("malformed JSON Patch op", f"a JSON {type(op).__name__}")
        name = op.get("op")
        path = op.get("path")
        if type(name) is not str or type(path) is not str:
            raise BadFrame("malformed JSON Patch op", "missing op or path")
        yield name, path, op.get("value")
