"""Choosing a dialect: ``--api auto|documented|forge``.

Auto-detection costs nothing on a documented server: the documented route is
tried first, and only when its handshake fails the way the real server fails
(its web UI's HTML page with status 200, or a 404) is ``GET /api/health`` asked.
A 404 from a server that is not Forge is an unknown id only if the documented
monitor route (which takes no id) accepts a WebSocket: a plain web server answers
404 everywhere, and speaks neither API (exit 6, not 5). The choice is made once
per run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConnectError, Hint, NotFoundError, ProtocolError
from ..ids import is_uuid, uuid_prefix
from .base import Dialect, Plan, StreamRequest
from .documented import MONITOR_PATH, DocumentedDialect, serves_documented
from .forge import ForgeDialect, probe_forge

if TYPE_CHECKING:
    from ..diagnostics import Diagnostics
    from ..events import ProcessRecord
    from ..transport import Endpoint


class AutoDialect(Dialect):
    """Starts as the documented dialect; switches to the real server's on evidence."""

    name = "auto"

    def __init__(self) -> None:
        self.documented = DocumentedDialect()
        self.forge = ForgeDialect()
        self.chosen: Dialect | None = None

    async def plan(self, request: StreamRequest, endpoint: Endpoint, diag: Diagnostics) -> Plan:
        if self.chosen is not None:
            return await self.chosen.plan(request, endpoint, diag)
        return await self.documented.plan(request, endpoint, diag)

    async def fallback(
        self,
        request: StreamRequest,
        plan: Plan,
        error: Exception,
        endpoint: Endpoint,
        diag: Diagnostics,
    ) -> Plan | None:
        if self.chosen is not None:
            return await self.chosen.fallback(request, plan, error, endpoint, diag)
        if not isinstance(error, (ProtocolError, NotFoundError)):
            return None
        try:
            is_forge, said = await probe_forge(endpoint)
        except ConnectError:
            return None
        if is_forge:
            self.chosen = self.forge
            self.forge.verified = True
            diag.trace(
                f"dialect: forge (the documented route answered: {error}; "
                f"GET /api/health answered {said})"
            )
            return await self.forge.plan(request, endpoint, diag)
        url = endpoint.server.url
        answered = error.answered or str(error)
        if isinstance(error, NotFoundError):
            # An unknown id, or no documented API at all: its monitor route says which.
            on_it = plan.route.path == MONITOR_PATH  # the route that failed is that one
            serves, on_monitor = (False, answered) if on_it else await serves_documented(endpoint)
            if serves is not False:
                self.chosen = self.documented
                self.documented.verified = serves is True
                diag.trace(
                    "dialect: documented (its route answered 404, its monitor route "
                    f"{on_monitor}, and /api/health is not Forge's)"
                )
                return None
            answered = answered if on_it else f"{answered} ({MONITOR_PATH} too)"
        raise ProtocolError(
            f"{url} speaks neither known API: the documented route answered {answered}, "
            f"and GET /api/health answered {said}",
            url=url,
            status=error.status,
            hint=Hint.SERVER,
            answered=answered,
        )

    async def _decide(self, endpoint: Endpoint, diag: Diagnostics) -> Dialect | None:
        """The dialect, asking ``GET /api/health`` if none is chosen yet: the real
        server's when it answers as Forge, else None (the documented route is then
        tried first, as ever)."""
        if self.chosen is None:
            is_forge, said = await probe_forge(endpoint)
            if not is_forge:
                return None
            self.chosen = self.forge
            self.forge.verified = True
            diag.trace(f"dialect: forge (GET /api/health answered {said})")
        return self.chosen

    async def list_processes(
        self,
        endpoint: Endpoint,
        diag: Diagnostics,
        *,
        attempt: str | None = None,
        task: str | None = None,
        project: str | None = None,
    ) -> list[ProcessRecord] | None:
        chosen = await self._decide(endpoint, diag)
        if chosen is None:
            return None
        return await chosen.list_processes(
            endpoint, diag, attempt=attempt, task=task, project=project
        )

    async def resolve_id(self, kind: str, given: str, endpoint: Endpoint, diag: Diagnostics) -> str:
        # Only an id the real server could complete is worth asking about: the
        # documented API's ids have no fixed form.
        if self.chosen is None and (is_uuid(given) or not uuid_prefix(given)):
            return given
        chosen = await self._decide(endpoint, diag)
        return given if chosen is None else await chosen.resolve_id(kind, given, endpoint, diag)

    def connected(self, diag: Diagnostics) -> None:
        if self.chosen is None:
            self.chosen = self.documented
            diag.trace("dialect: documented (its WebSocket route accepted the handshake)")
