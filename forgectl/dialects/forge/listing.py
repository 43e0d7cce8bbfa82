"""What the real server lists over REST, and the ids a prefix is matched against.

Forge 0.7.4 (forge-core ``crates/server/src/routes``) lists with:

- ``GET /api/projects``: every project ``{id, name, git_repo_path, ...}``;
- ``GET /api/tasks?project_id=`` (required): a project's tasks ``{id, project_id, title, ...}``;
- ``GET /api/task-attempts[?task_id=]``: every attempt, or a task's
  ``{id, task_id, branch, executor, created_at, ...}``;
- ``GET /api/execution-processes?task_attempt_id=`` (required): an attempt's
  processes, whole records (as the process streams send them).

There is no server-wide list of processes: ``ps`` asks for the attempts, then
for each attempt's processes (a few at a time). An id the server does not know
answers ``GET /api/<kind>/<id>`` with 404 (empty body); an unknown id in a list's
query gives an empty list, so each filter is checked first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ...errors import ProtocolError
from ...events import ProcessRecord
from ...ids import is_uuid, match_prefix, uuid_prefix
from ...transport.rest import get_data
from ...urls import segment
from .schema import process_record

if TYPE_CHECKING:
    from ...transport import Endpoint

#: How many GETs of an attempt's processes are in flight at once.
CONCURRENCY = 8

#: Kind of id → its REST collection.
_PLURAL = {
    "project": "projects",
    "task": "tasks",
    "attempt": "task-attempts",
    "process": "execution-processes",
}

Record = dict[str, Any]


async def _list(endpoint: Endpoint, path: str, query: dict[str, str] | None = None) -> list[Record]:
    data = await get_data(endpoint, path, query, what=f"the list at {path}")
    if not isinstance(data, list):
        url = endpoint.server.http_url(path, query)
        raise ProtocolError(f"{url}: expected a list, got {type(data).__name__}")
    return [r for r in data if isinstance(r, dict) and isinstance(r.get("id"), str)]


async def record(endpoint: Endpoint, kind: str, ident: str) -> Record:
    """The REST record of a project, task, attempt or process: NotFoundError (404)
    when the server does not know the id, UsageError (400) when it cannot parse it."""
    path = f"/api/{_PLURAL[kind]}/{segment(ident)}"
    data = await get_data(endpoint, path, what=f"{kind} {ident}")
    if not isinstance(data, dict):
        raise ProtocolError(f"{endpoint.server.http_url(path)}: unexpected answer (no record)")
    return data


async def projects(endpoint: Endpoint) -> list[Record]:
    return await _list(endpoint, "/api/projects")


async def tasks(endpoint: Endpoint, project: str) -> list[Record]:
    return await _list(endpoint, "/api/tasks", {"project_id": project})


async def attempts(endpoint: Endpoint, task: str | None = None) -> list[Record]:
    return await _list(endpoint, "/api/task-attempts", {"task_id": task} if task else None)


async def processes(endpoint: Endpoint, attempt_ids: Iterable[str]) -> list[Record]:
    """The processes of every attempt named, a few requests at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def of(attempt: str) -> list[Record]:
        async with gate:
            return await _list(endpoint, "/api/execution-processes", {"task_attempt_id": attempt})

    out: list[Record] = []
    for batch in await asyncio.gather(*(of(a) for a in dict.fromkeys(attempt_ids))):
        out.extend(batch)
    return out


async def all_tasks(endpoint: Endpoint) -> list[Record]:
    out: list[Record] = []
    for batch in await asyncio.gather(
        *(tasks(endpoint, p["id"]) for p in await projects(endpoint))
    ):
        out.extend(batch)
    return out


async def resolve(endpoint: Endpoint, kind: str, given: str) -> str:
    """The whole id that ``given`` names. A whole UUID, or anything that cannot
    start one, is used as given (the server judges it); a start of a UUID is
    matched against the ids the server lists (see :func:`forgectl.ids.match_prefix`)."""
    if is_uuid(given) or not uuid_prefix(given):
        return given
    return match_prefix(kind, given, await candidates(endpoint, kind))


async def candidates(endpoint: Endpoint, kind: str) -> dict[str, str]:
    """Every id of ``kind`` on the server, with a few words on each (for an
    ambiguity's message)."""
    if kind == "project":
        return {p["id"]: str(p.get("name") or "") for p in await projects(endpoint)}
    if kind == "task":
        return {t["id"]: str(t.get("title") or "") for t in await all_tasks(endpoint)}
    found = await attempts(endpoint)
    if kind == "attempt":
        return {a["id"]: _about(a.get("executor"), a.get("branch")) for a in found}
    return {
        p["id"]: _about(p.get("run_reason"), p.get("status"), f"attempt {p.get('task_attempt_id')}")
        for p in await processes(endpoint, (a["id"] for a in found))
    }


def _about(*parts: Any) -> str:
    return ", ".join(str(p) for p in parts if p)


async def list_processes(
    endpoint: Endpoint,
    *,
    attempt: str | None = None,
    task: str | None = None,
    project: str | None = None,
) -> list[ProcessRecord]:
    """The processes of an attempt, a task, a project (each id checked: an unknown
    one is NotFoundError), or of the whole server; any combination narrows."""
    if attempt is not None:
        chosen = [await record(endpoint, "attempt", attempt)]
    elif task is not None:
        await record(endpoint, "task", task)
        chosen = await attempts(endpoint, task)
    else:
        chosen = await attempts(endpoint)
    if task is not None:
        if attempt is not None:
            await record(endpoint, "task", task)
        chosen = [a for a in chosen if a.get("task_id") == task]
    if project is not None:
        await record(endpoint, "project", project)
        of_project = {t["id"] for t in await tasks(endpoint, project)}
        chosen = [a for a in chosen if a.get("task_id") in of_project]
    return [process_record(r) for r in await processes(endpoint, (a["id"] for a in chosen))]
