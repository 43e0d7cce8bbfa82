"""The Python API: the same core the CLI uses, as async iterators.

    from forgectl import ForgeClient

    async with ForgeClient() as forge:
        async for log in forge.processes.stream_logs("proc_abc123", format="normalized"):
            print(f"[{log.level}] {log.message}")

Server, token and dialect are resolved as the CLI resolves them: arguments, then
``FORGE_URL`` / ``FORGE_TOKEN`` / ``FORGE_API``, then the profile, then defaults.
Reconnects, heartbeats and exactly-once output behave as in the CLI; errors are
:class:`~forgectl.errors.ForgeError` subclasses carrying the CLI's exit codes.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from typing import Literal, overload

from .constants import ENV_API, ENV_CACERT, ENV_PROFILE, ENV_SERVER, ENV_TOKEN
from .diagnostics import Diagnostics
from .dialects import select_dialect
from .dialects.base import Dialect, StreamRequest
from .events import DiffUpdate, LogEntry, ProcessEvent, RawChunk
from .settings import Settings, resolve
from .stream import Stream, StreamOptions

__all__ = ["Attempts", "ForgeClient", "Processes"]


class ForgeClient:
    """Entry point of the Python API; use as an async context manager."""

    def __init__(
        self,
        server: str | None = None,
        token: str | None = None,
        *,
        api: str | None = None,
        profile: str | None = None,
        cacert: str | None = None,
        insecure: bool = False,
        options: StreamOptions | None = None,
        diagnostics: Diagnostics | None = None,
    ) -> None:
        env_token = os.environ.get(ENV_TOKEN)
        self.diagnostics = diagnostics or Diagnostics()
        self.settings: Settings = resolve(
            server=server or os.environ.get(ENV_SERVER),
            token=token or env_token,
            token_from_env=token is None and bool(env_token),
            api=api or os.environ.get(ENV_API),
            cacert=cacert or os.environ.get(ENV_CACERT),
            insecure=insecure,
            profile=profile or os.environ.get(ENV_PROFILE),
            diag=self.diagnostics,
        )
        self.diagnostics.add_secret(self.settings.token)
        self.options = options or StreamOptions()
        self._dialect: Dialect = select_dialect(self.settings.api)
        self._open: set[Stream] = set()
        self.processes = Processes(self)
        self.attempts = Attempts(self)

    async def _events(self, request: StreamRequest) -> AsyncGenerator[object, None]:
        stream = Stream(
            self._dialect, request, self.settings.endpoint(), self.options, self.diagnostics
        )
        self._open.add(stream)
        try:
            async for event in stream:
                yield event
        finally:
            self._open.discard(stream)
            await stream.aclose()

    async def aclose(self) -> None:
        """Close every stream still open (a normal WebSocket close)."""
        for stream in list(self._open):
            await stream.aclose()

    async def __aenter__(self) -> ForgeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Processes:
    def __init__(self, client: ForgeClient) -> None:
        self._client = client

    @overload
    def stream_logs(
        self, process_id: str, format: Literal["normalized"] = ..., *, follow: bool = ...
    ) -> AsyncGenerator[LogEntry, None]: ...

    @overload
    def stream_logs(
        self, process_id: str, format: Literal["raw"], *, follow: bool = ...
    ) -> AsyncGenerator[str, None]: ...

    async def stream_logs(
        self, process_id: str, format: str = "normalized", *, follow: bool = True
    ) -> AsyncGenerator[LogEntry | str, None]:
        """Log entries of a process (``format="raw"``: its output as text chunks).

        With ``follow`` (the default) the iterator ends when the process ends;
        without it, once the backlog has been delivered.
        """
        if format not in ("normalized", "raw"):
            raise ValueError("format must be 'normalized' or 'raw'")
        raw = format == "raw"
        request = StreamRequest("raw" if raw else "logs", process_id, follow=follow)
        async for event in self._client._events(request):
            if isinstance(event, RawChunk):
                yield event.text
            elif isinstance(event, LogEntry):
                yield event.data.get("message", "") if raw else event

    async def monitor(
        self, attempt_id: str | None = None, *, history: bool = False
    ) -> AsyncGenerator[ProcessEvent, None]:
        """Process lifecycle events, until the iterator is closed (with ``attempt_id``:
        the events of that attempt's processes, as ``monitor --attempt`` prints)."""
        from .filters import ProcessFilter

        request = StreamRequest("monitor", attempt_id, follow=True, history=history)
        keep = ProcessFilter(attempt=attempt_id)
        async for event in self._client._events(request):
            if isinstance(event, ProcessEvent) and keep(event):
                yield event


class Attempts:
    def __init__(self, client: ForgeClient) -> None:
        self._client = client

    async def stream_diff(
        self, attempt_id: str, *, follow: bool = True, stats_only: bool = False
    ) -> AsyncGenerator[DiffUpdate, None]:
        """Diff updates of a task attempt (without ``follow``: the current diff only)."""
        request = StreamRequest("diff", attempt_id, follow=follow, stats_only=stats_only)
        async for event in self._client._events(request):
            if isinstance(event, DiffUpdate):
                yield event
