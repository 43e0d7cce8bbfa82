"""forgectl: follow Forge's real-time streams from the shell or from Python.

The package root stays light (``forgectl --version`` must not pay for asyncio or
websockets); ``ForgeClient`` and the event classes load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "DiffUpdate",
    "ExitCode",
    "ForgeClient",
    "ForgeError",
    "LogEntry",
    "ProcessEvent",
    "RawChunk",
    "__version__",
]

if TYPE_CHECKING:
    from .client import ForgeClient
    from .errors import ExitCode, ForgeError
    from .events import DiffUpdate, LogEntry, ProcessEvent, RawChunk

_LAZY = {
    "ForgeClient": "client",
    "ExitCode": "errors",
    "ForgeError": "errors",
    "DiffUpdate": "events",
    "LogEntry": "events",
    "ProcessEvent": "events",
    "RawChunk": "events",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'forgectl' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)
