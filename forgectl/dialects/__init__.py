"""Server dialects: each turns one server API into the documented event model.

- :mod:`.documented` — the spec's ``/ws/...`` routes (objects already in shape).
- :mod:`.forge` — the real server's JSON Patch streams under ``/api/...``.
- :mod:`.detect` — ``auto``: the documented route first, the real server on evidence.
- :mod:`.base` — what a dialect provides (:class:`~.base.Dialect`, decoders, plans).

This module is the registry: the one list of ``--api`` names, read by the
command line, the config file's validation and :func:`select_dialect`. It imports
no dialect until one is selected (``forgectl --help`` stays light).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Dialect

#: ``--api`` name → what it means (help text).
DIALECTS: dict[str, str] = {
    "auto": "detect: the documented route first, the real server's on evidence (default)",
    "documented": "the documented WebSocket API under /ws/...",
    "forge": "the real Forge server's JSON Patch streams under /api/...",
}
API_CHOICES: tuple[str, ...] = tuple(DIALECTS)


def select_dialect(api: str) -> Dialect:
    """A new dialect object for an ``--api`` name."""
    if api == "auto":
        from .detect import AutoDialect

        return AutoDialect()
    if api == "documented":
        from .documented import DocumentedDialect

        return DocumentedDialect()
    if api == "forge":
        from .forge import ForgeDialect

        return ForgeDialect()
    from ..errors import UsageError

    raise UsageError(f"unknown API {api!r}: choose {', '.join(API_CHOICES)}")


__all__ = ["API_CHOICES", "DIALECTS", "select_dialect"]
