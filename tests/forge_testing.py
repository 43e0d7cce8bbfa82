"""pytest glue for the tests that run the real Forge binary.

``forge_server.py`` stays free of pytest (the demo uses it); this module decides
whether those tests can run here, and skips them with the reason when not —
except under CI, where they must run, so it fails instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from forge_server import BINARY_SCRIPT, ForgeServer, find_binary, in_private_netns

# Resolved at import time: tests/conftest.py strips FORGECTL_* variables per test.
BINARY = find_binary()


def missing_prerequisite() -> str | None:
    """Why the real server cannot run here, or None when it can."""
    if not in_private_netns():
        return (
            "not in a private loopback-only network namespace; run under "
            "`unshare -rn sh -c 'ip link set lo up; exec pytest ...'`"
        )
    if BINARY is None:
        return f"Forge binary not found: set FORGECTL_FORGE_BIN or run {BINARY_SCRIPT}"
    return None


def require_real_server() -> None:
    reason = missing_prerequisite()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the real Forge server cannot run: {reason}")
    pytest.skip(reason)


def real_server() -> Iterator[ForgeServer]:
    """Body of a ``server`` fixture: a real Forge server for the tests that ask."""
    require_real_server()
    with ForgeServer(BINARY) as srv:
        yield srv
