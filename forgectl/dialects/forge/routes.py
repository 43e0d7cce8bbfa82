"""Where the real server serves each stream, and the REST look-ups that decide it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from orjson import JSONDecodeError

from ...errors import ConnectError, Hint, NotFoundError, ProtocolError, UsageError
from ...transport import Route
from ...transport.rest import get, get_data
from ...urls import segment
from ..base import Decoder, Dialect, Plan, StreamRequest
from . import listing
from .diffs import ForgeDiffDecoder
from .logs import ForgeLogsDecoder, ForgeRawAsLogsDecoder, ForgeRawDecoder
from .processes import ForgeMonitorDecoder
from .records import ForgeRecordsDecoder

if TYPE_CHECKING:
    from ...diagnostics import Diagnostics
    from ...events import ProcessRecord
    from ...transport import Endpoint


async def probe_forge(endpoint: Endpoint) -> tuple[bool, str]:
    """Does ``GET /api/health`` answer like the real Forge server? (yes, what it said)"""
    status, ctype, body = await get(endpoint, "/api/health", what="health check", timeout=5)
    said = f"HTTP {status} {ctype.split(';')[0] or 'no content type'}"
    if status == 200 and "json" in ctype:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return False, said + " (invalid JSON)"
        if isinstance(payload, dict) and ("success" in payload or "status" in payload):
            return True, said
    return False, said


def _no_normalized(process: str | None, reason: Any) -> str:
    return (
        f"process {process} ({reason or 'unknown kind'}) has no normalized log stream; "
        "showing its raw output as log entries"
    )


#: Run reasons of processes that run a script, not an agent: no normalized logs.
#: Only coding agents have normalized logs: a script's normalized stream sends
#: nothing while it runs and 404 once it has finished.
_SCRIPT_REASONS = frozenset({"setupscript", "cleanupscript", "devserver"})
#: A process in one of these states sends its whole log, then ``finished``.
_ENDED = frozenset({"completed", "failed", "killed"})


class ForgeDialect(Dialect):
    name = "forge"
    #: Known to be the real server (auto-detection asked it); with --api forge a
    #: 404 makes us ask, so another server's 404 is not taken for "not found".
    verified = False

    async def _verify(self, endpoint: Endpoint, error: Exception) -> None:
        try:
            is_forge, said = await probe_forge(endpoint)
        except ConnectError:
            return
        if not is_forge:
            answered = getattr(error, "answered", None) or str(error)
            raise ProtocolError(
                f"{endpoint.server.url} is not the real Forge server (its route answered "
                f"{answered}; GET /api/health answered {said})",
                url=endpoint.server.url,
                hint=Hint.DIALECT,
                answered=answered,
            )
        self.verified = True

    async def plan(self, request: StreamRequest, endpoint: Endpoint, diag: Diagnostics) -> Plan:
        target = segment(request.target or "")
        decoder: Decoder
        if request.kind in ("raw", "logs"):
            # Anything this GET cannot tell (another server, an unknown id) is
            # left to the stream to say.
            record = await self._record(endpoint, "process", request.target or "", strict=False)
            reason = record.get("run_reason") if record else None
            ended = record is not None and record.get("status") in _ENDED
            if request.kind == "raw":
                route = Route(f"/api/execution-processes/{target}/raw-logs/ws")
                decoder = ForgeRawDecoder(diag, request.follow, ended=ended)
            elif reason in _SCRIPT_REASONS:  # its normalized stream stays empty while it runs
                diag.note(_no_normalized(request.target, reason))
                route = Route(f"/api/execution-processes/{target}/raw-logs/ws")
                decoder = ForgeRawAsLogsDecoder(diag, request.follow, ended=ended)
            else:
                route = Route(f"/api/execution-processes/{target}/normalized-logs/ws")
                decoder = ForgeLogsDecoder(diag, request.follow, ended=ended)
        elif request.kind == "diff":
            query = {"stats_only": "true"} if request.stats_only else {}
            route = Route(f"/api/task-attempts/{target}/diff/ws", query)
            decoder = ForgeDiffDecoder(
                diag, request.target or "", request.follow, request.first_wait
            )
        elif request.kind == "records":
            if not request.target:
                raise ValueError("the real server streams the records of one attempt only")
            await self._check_attempt(endpoint, request.target)
            route = Route("/api/execution-processes/stream/ws", {"task_attempt_id": request.target})
            decoder = ForgeRecordsDecoder(diag, request.target)
        elif attempt := await self._monitor_attempt(request, endpoint):
            route = Route("/api/execution-processes/stream/ws", {"task_attempt_id": attempt})
            decoder = ForgeMonitorDecoder(diag, history=request.history, sse=False, attempt=attempt)
        else:
            route = Route("/api/events", sse=True)
            decoder = ForgeMonitorDecoder(diag, history=request.history, sse=True, attempt=None)
        return Plan(route, decoder, request.what)

    async def list_processes(
        self,
        endpoint: Endpoint,
        diag: Diagnostics,
        *,
        attempt: str | None = None,
        task: str | None = None,
        project: str | None = None,
    ) -> list[ProcessRecord]:
        try:
            return await listing.list_processes(
                endpoint, attempt=attempt, task=task, project=project
            )
        except NotFoundError as missing:
            if not self.verified:  # another server's 404 is not "no such attempt"
                await self._verify(endpoint, missing)
            raise

    async def resolve_id(self, kind: str, given: str, endpoint: Endpoint, diag: Diagnostics) -> str:
        try:
            found = await listing.resolve(endpoint, kind, given)
        except NotFoundError as missing:
            if not self.verified:
                await self._verify(endpoint, missing)
            raise
        if found != given:
            diag.trace(f"{kind} id {given} is {found}")
        return found

    async def _monitor_attempt(self, request: StreamRequest, endpoint: Endpoint) -> str | None:
        """The attempt whose process stream to follow: --attempt, else the one attempt
        of the --process ids (each checked, so an unknown one is exit 5 rather than a
        wait for events that never come), else None: the server-wide event stream."""
        if request.target:
            await self._check_attempt(endpoint, request.target)
            return request.target
        attempts = {await self._attempt_of(endpoint, pid) for pid in request.processes}
        return attempts.pop() if len(attempts) == 1 else None

    async def _attempt_of(self, endpoint: Endpoint, process: str) -> str | None:
        record = await self._record(endpoint, "process", process)
        attempt = record.get("task_attempt_id") if record else None
        return attempt if isinstance(attempt, str) else None

    async def _check_attempt(self, endpoint: Endpoint, attempt: str) -> None:
        """The process stream answers an unknown attempt with an empty map: ask REST."""
        await self._record(endpoint, "attempt", attempt)

    async def _record(
        self, endpoint: Endpoint, kind: str, ident: str, *, strict: bool = True
    ) -> dict[str, Any] | None:
        """The REST record of a process or an attempt, or None if the GET cannot tell.
        ``strict``: an id the server does not know is NotFoundError (404), one it
        cannot parse UsageError (400)."""
        plural = "execution-processes" if kind == "process" else "task-attempts"
        try:
            status, _, body = await get(endpoint, f"/api/{plural}/{segment(ident)}")
        except ConnectError:
            if strict:
                raise
            return None
        if strict and status == 404:
            missing = NotFoundError(f"{kind} {ident} not found")
            if not self.verified:
                await self._verify(endpoint, missing)
            raise missing
        if strict and status == 400:
            article = "an" if kind == "attempt" else "a"
            raise UsageError(
                f"{kind} {ident}: the server rejected it (HTTP 400: not {article} {kind} id)"
            )
        try:
            data = orjson.loads(body).get("data") if status == 200 else None
        except (JSONDecodeError, AttributeError):
            return None
        return data if isinstance(data, dict) else None

    async def fallback(
        self,
        request: StreamRequest,
        plan: Plan,
        error: Exception,
        endpoint: Endpoint,
        diag: Diagnostics,
    ) -> Plan | None:
        if isinstance(error, NotFoundError) and not self.verified:
            await self._verify(endpoint, error)
        if not isinstance(error, NotFoundError) or request.kind != "logs":
            return None
        if not isinstance(plan.decoder, ForgeLogsDecoder):
            return None
        try:
            record = await get_data(
                endpoint,
                f"/api/execution-processes/{segment(request.target or '')}",
                what=f"process {request.target}",
            )
        except NotFoundError:
            raise NotFoundError(f"process {request.target} not found") from None
        reason = record.get("run_reason") if isinstance(record, dict) else None
        diag.note(_no_normalized(request.target, reason))
        return Plan(
            Route(f"/api/execution-processes/{segment(request.target or '')}/raw-logs/ws"),
            ForgeRawAsLogsDecoder(diag, request.follow),
            plan.what,
        )
