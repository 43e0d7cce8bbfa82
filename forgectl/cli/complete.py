"""Shell completion of process and attempt ids, asked of the server.

Only the real Forge server can list them (``GET /api/task-attempts``,
``GET /api/execution-processes?task_attempt_id=``); the documented API has no
listing. Completion must never get in the way of typing: every look-up shares one
short deadline, prints nothing and raises nothing; no answer means no candidates.

This module is imported by the command modules, so it imports only the standard
library, and only when a completion is actually requested.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl

    import click
    from click.shell_completion import CompletionItem

#: The whole look-up (every request together) must finish within this many seconds.
DEADLINE = 0.5
#: Asking per attempt is one request each: the most recent ones are enough.
MAX_ATTEMPTS = 25


def complete_attempt_id(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Task attempt ids starting with ``incomplete`` (newest first)."""
    try:
        return _complete(ctx, incomplete, processes=False)
    except Exception:  # completion must never break the shell
        return []


def complete_process_id(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Execution process ids starting with ``incomplete`` (of the newest attempts)."""
    try:
        return _complete(ctx, incomplete, processes=True)
    except Exception:
        return []


def _complete(ctx: click.Context, incomplete: str, *, processes: bool) -> list[CompletionItem]:
    from click.shell_completion import CompletionItem

    conn = _connection(ctx)
    if conn.get("api") == "documented":
        return []
    lister = _Lister(conn, time.monotonic() + DEADLINE)
    attempts = lister.get("/api/task-attempts")
    if attempts is None:
        return []
    attempts.sort(key=lambda a: str(a.get("created_at") or ""), reverse=True)
    items: list[CompletionItem] = []
    if not processes:
        for attempt in attempts:
            aid = attempt["id"]
            if aid.startswith(incomplete) and _usable(aid):
                items.append(CompletionItem(aid, help=_describe_attempt(attempt)))
        return items
    for attempt in attempts[:MAX_ATTEMPTS]:
        records = lister.get("/api/execution-processes", {"task_attempt_id": attempt["id"]})
        if records is None:
            break  # out of time, or the server stopped answering
        records.sort(key=lambda r: str(r.get("created_at") or ""), reverse=True)
        for record in records:
            pid = record["id"]
            if pid.startswith(incomplete) and _usable(pid):
                items.append(CompletionItem(pid, help=_describe_process(record)))
    return items


def _connection(ctx: click.Context) -> dict[str, Any]:
    """Server, token, dialect and TLS settings: command line (innermost wins), else environment.

    The connection options' callbacks fill the application object while click
    parses for completion too (the root's read the environment variables); the
    fallback covers a command used on its own.
    """
    from ..constants import DEFAULT_SERVER, ENV_API, ENV_CACERT, ENV_SERVER, ENV_TOKEN

    env = {"server": ENV_SERVER, "token": ENV_TOKEN, "api": ENV_API, "cacert": ENV_CACERT}
    given = getattr(ctx.obj, "connection", None)
    found: dict[str, Any] = {
        key: value
        for key, value in (given if isinstance(given, dict) else {}).items()
        if key in (*env, "insecure") and value
    }
    for key, name in env.items():
        if key not in found and os.environ.get(name):
            found[key] = os.environ[name]
    found.setdefault("server", DEFAULT_SERVER)
    return found


class _Lister:
    """GETs Forge REST listings until the shared deadline; ``None`` on any failure."""

    def __init__(self, conn: dict[str, Any], deadline: float) -> None:
        from ..urls import parse_server

        self.server = parse_server(str(conn["server"]))
        self.token = conn.get("token")
        self.deadline = deadline
        self.context: ssl.SSLContext | None = None
        if self.server.tls and (conn.get("cacert") or conn.get("insecure")):
            import ssl

            self.context = ssl.create_default_context(cafile=conn.get("cacert"))
            if conn.get("insecure"):
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE

    def get(self, path: str, query: dict[str, str] | None = None) -> list[dict[str, Any]] | None:
        import json
        import urllib.request

        remaining = self.deadline - time.monotonic()
        if remaining <= 0.01:
            return None
        request = urllib.request.Request(self.server.http_url(path, query))
        request.add_header("Accept", "application/json")
        if self.token and not self._proxied_in_clear():
            request.add_header("Cookie", f"token={self.token}")
        try:
            with urllib.request.urlopen(
                request, timeout=remaining, context=self.context
            ) as response:
                if response.status != 200:
                    return None
                payload = json.loads(response.read(8 * 1024 * 1024))
        except Exception:
            return None
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            return None
        return [r for r in data if isinstance(r, dict) and isinstance(r.get("id"), str)]

    def _proxied_in_clear(self) -> bool:
        """Would urllib send this request through a proxy, unencrypted? The token
        then stays home: completion is never worth it (see transport/proxy.py)."""
        import urllib.request

        if self.server.tls:
            return False
        proxies = urllib.request.getproxies()
        host = f"[{self.server.host}]" if ":" in self.server.host else self.server.host
        return bool(proxies.get("http")) and not urllib.request.proxy_bypass(
            f"{host}:{self.server.port}"
        )


def _usable(ident: str) -> bool:
    """Ids the commands would refuse (control characters, ``..``) are not offered."""
    from ..errors import UsageError
    from ..urls import check_id

    try:
        check_id(ident)
    except UsageError:
        return False
    return True


def _describe(parts: list[Any]) -> str:
    # Shells show descriptions on the terminal: server text, escaped.
    from ..escape import escape_line

    return escape_line(" ".join(str(p) for p in parts if p))


def _describe_attempt(attempt: dict[str, Any]) -> str:
    return _describe([attempt.get("branch"), attempt.get("executor"), attempt.get("created_at")])


def _describe_process(record: dict[str, Any]) -> str:
    return _describe([record.get("run_reason"), record.get("status"), record.get("created_at")])
