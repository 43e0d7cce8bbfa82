"""Server dialects: each turns one server API into the documented event model."""

from __future__ import annotations

from .base import Decoder, Dialect, Plan, Route, StreamRequest
from .detect import AutoDialect, select_dialect

__all__ = [
    "AutoDialect",
    "Decoder",
    "Dialect",
    "Plan",
    "Route",
    "StreamRequest",
    "select_dialect",
]
