"""Choosing a dialect: ``--api auto|documented|forge``.

Auto-detection costs nothing on a documented server: the documented route is
tried first, and only when its handshake fails the way the real server fails
(its web UI's HTML page with status 200, or a 404) is ``GET /api/health`` asked.
The choice is made once per run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from ..errors import ConnectError, NotFoundError, ProtocolError, UsageError
from .base import Dialect, Plan, StreamRequest
from .documented import DocumentedDialect
from .forge import ForgeDialect

if TYPE_CHECKING:
    from ..diagnostics import Diagnostics
    from ..transport import Endpoint

API_CHOICES = ("auto", "documented", "forge")


async def probe_forge(endpoint: Endpoint) -> tuple[bool, str]:
    """Does ``GET /api/health`` answer like the real Forge server? (yes, what it said)"""
    from ..rest import get

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
        if isinstance(error, NotFoundError):
            self.chosen = self.documented
            diag.trace(
                "dialect: documented (its route answered 404 and /api/health is not Forge's)"
            )
            return None
        raise ProtocolError(
            f"{endpoint.server.url} speaks neither known API: the documented route "
            f"answered {error}, and GET /api/health answered {said}"
        )

    def connected(self, diag: Diagnostics) -> None:
        if self.chosen is None:
            self.chosen = self.documented
            diag.trace("dialect: documented (its WebSocket route accepted the handshake)")


def select_dialect(api: str) -> Dialect:
    if api == "auto":
        return AutoDialect()
    if api == "documented":
        return DocumentedDialect()
    if api == "forge":
        return ForgeDialect()
    raise UsageError(f"unknown API {api!r}: choose auto, documented or forge")
