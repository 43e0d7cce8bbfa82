"""Shared test setup: every test runs with its own config dirs and no FORGE_* env."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # helpers are imported as top-level modules
    sys.path.insert(0, str(TESTS))
if str(TESTS.parent) not in sys.path:  # the build tools (tools/docgen) are tested too
    sys.path.append(str(TESTS.parent))

ENV_PREFIXES = ("FORGE_", "FORGECTL_")
#: Where the test harness finds the real Forge binary: kept.
HARNESS_ENV = ("FORGECTL_FORGE_BIN", "FORGECTL_FORGE_CACHE")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Fresh XDG dirs, no FORGE_* variables, no colour surprises."""
    for name in list(os.environ):
        if name in HARNESS_ENV:
            continue
        if name.startswith(ENV_PREFIXES) or name in ("NO_COLOR", "FORCE_COLOR"):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    for sub in ("config", "data", "cache", "state"):
        (home / sub).mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    yield home
    # Tokens are remembered process-wide for redaction: one test's toy token
    # ("t") must not be hidden from the next test's messages.
    from forgectl import urls

    urls._KNOWN_SECRETS.clear()


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[object]:
    """An empty in-memory keyring for every test: no test touches the real one."""
    import keyring
    from keyring_backends import MemoryKeyring

    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
