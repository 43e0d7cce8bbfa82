"""Shared test setup.

* Every test runs with its own config dirs, no FORGE_* variables and an in-memory
  keyring (``isolated_env``, ``memory_keyring``).
* The real Forge server: ``server`` (one per module, and per xdist worker), ``bed``
  and ``agent_server`` (the server with ``bed``'s scripted coding agents first on its
  PATH, ``tests/agents``), ``start_forge_server`` (fresh servers for one test). Each
  server runs in a mount namespace of its own (``tests/forge_server.py``), so servers
  side by side share nothing. A module of agent tests names ``agent_server`` its
  ``server`` (a fixture of its own that returns it).
* Markers: a test that starts the real binary, or uses a fixture that did, must be
  marked ``forge`` (so ``pytest -m "not forge"`` is the fast layer): one that is not
  fails, at once. ``realspeed`` marks the heavy real-speed ones.
* A failing test's report carries what forgectl said on stderr (``tests/support.py``
  notes it for every run made through its helpers and the test beds) and the log tail
  of every real server the test used.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # helpers are imported as top-level modules
    sys.path.insert(0, str(TESTS))
if str(TESTS.parent) not in sys.path:  # the build tools (tools/docgen) are tested too
    sys.path.append(str(TESTS.parent))

import forge_server  # noqa: E402  (after the sys.path set-up above)
import support  # noqa: E402
from agents import AgentBed  # noqa: E402
from forge_server import BINARY_SCRIPT, ForgeServer, find_binary, in_private_netns  # noqa: E402

#: tests/test_suite_conventions.py runs throw-away test files under this conftest.
pytest_plugins = ("pytester",)

ENV_PREFIXES = ("FORGE_", "FORGECTL_")
#: Where the test harness finds the real Forge binary: kept.
HARNESS_ENV = ("FORGECTL_FORGE_BIN", "FORGECTL_FORGE_CACHE")
#: Resolved at import time: ``isolated_env`` strips FORGECTL_* variables per test.
BINARY = find_binary()
#: How many lines of a server's log a failure report shows.
SERVER_LOG_LINES = 60


def pytest_configure(config: pytest.Config) -> None:
    # Started in the background of a shell (`cmd &`, nohup, some CI runners), the
    # suite inherits SIGINT ignored, and so would every forgectl it starts: the tests
    # that stop forgectl with Ctrl-C would hang. A handler of our own is reset to the
    # default in each child.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# -- every test: its own environment -------------------------------------------------------


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


# -- the real Forge server -----------------------------------------------------------------


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


def require_real_server() -> Path:
    """The binary; skips the test when the real server cannot run here (fails under
    CI=true, where it must)."""
    reason = missing_prerequisite()
    if reason is None:
        assert BINARY is not None
        return BINARY
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the real Forge server cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def forge_binary() -> Path:
    """The real Forge binary (the test is skipped where it cannot run)."""
    return require_real_server()


@pytest.fixture(scope="module")
def server(forge_binary: Path) -> Iterator[ForgeServer]:
    """A real Forge server shared by the tests of one module (a module of reference
    or hostile servers names its own ``server`` or ``srv``)."""
    with ForgeServer(forge_binary) as forge:
        yield forge


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> AgentBed:
    """Stand-ins for the coding agents' CLIs and the sessions they play."""
    return AgentBed(tmp_path_factory.mktemp("agents"))


@pytest.fixture(scope="module")
def agent_server(forge_binary: Path, bed: AgentBed) -> Iterator[ForgeServer]:
    """A real Forge server whose coding agents are ``bed``'s scripted ones."""
    with ForgeServer(forge_binary, path_prefix=[bed.bin_dir]) as forge:
        yield forge


@pytest.fixture
def start_forge_server(forge_binary: Path) -> Iterator[Callable[..., ForgeServer]]:
    """``start_forge_server(**ForgeServer kwargs)``: a fresh server for this test only
    (a fresh event stream, a restart), closed when the test ends."""
    servers: list[ForgeServer] = []

    def start(**kwargs: Any) -> ForgeServer:
        server = ForgeServer(forge_binary, **kwargs)
        servers.append(server)
        return server.start()

    yield start
    for server in reversed(servers):
        server.close()


# -- side by side (pytest-xdist, tests/run.sh) --------------------------------------------


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``-n N`` (``--dist load``): the tests of a module that uses the real
    server go to one worker together, so its module fixtures (the server, the
    scenarios on it) are made once; every other test goes wherever a worker is free.
    (``--dist loadgroup`` would say so with marks, but with pytest 9.2 it groups
    nothing: pytest-xdist issue 1386.)"""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class RealServerModulesTogether(LoadScopeScheduling):  # type: ignore[misc]
        """A module is one unit when its source marks tests ``forge`` (the scheduler
        sees node ids only); any other test is a unit of its own. Biggest units are
        handed out first (``--loadscope-reorder``, the default)."""

        def __init__(self, config: pytest.Config, log: Any) -> None:
            super().__init__(config, log)
            self._together: dict[str, bool] = {}

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            if module not in self._together:
                path = config.rootpath / module
                try:
                    source = path.read_text(encoding="utf-8")
                except OSError:
                    source = ""
                self._together[module] = "pytest.mark.forge" in source
            return module if self._together[module] else nodeid

    return RealServerModulesTogether(config, log)


# -- markers: the fast layer must not start the binary --------------------------------------

_current: list[pytest.Item] = []  # the test being run (setup, call, teardown)
_started: list[ForgeServer] = []  # servers started in this process, oldest first
_started_by_test: list[ForgeServer] = []


def _unmarked(item: pytest.Item) -> str:
    return (
        f"{item.nodeid} uses the real Forge server but is not marked `forge`: add "
        "`pytestmark = pytest.mark.forge` to the module (or mark the test), so that "
        '`pytest -m "not forge"` stays the fast layer'
    )


def _on_forge_start(server: ForgeServer) -> None:
    if _current and _current[-1].get_closest_marker("forge") is None:
        pytest.fail(_unmarked(_current[-1]), pytrace=False)
    _started.append(server)
    _started_by_test.append(server)


forge_server.START_HOOKS.append(_on_forge_start)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    _current.append(item)
    _started[:] = [s for s in _started if s.tmp is not None]  # forget the closed ones
    _started_by_test.clear()
    support.clear_transcript()
    try:
        return (yield)
    finally:
        _current.pop()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # A test whose fixtures need the binary fails before they run (inside the
    # namespace or not); one that starts a server itself fails in _on_forge_start.
    fixtures: list[str] = getattr(item, "fixturenames", [])
    if "forge_binary" in fixtures and item.get_closest_marker("forge") is None:
        pytest.fail(_unmarked(item), pytrace=False)


# -- failure reports: forgectl's stderr and the servers' logs --------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for title, text in support.transcript():
            report.sections.append((title, text))
        funcargs: dict[str, Any] = getattr(item, "funcargs", {})
        used = [s for s in _started if s.tmp is not None or s in _started_by_test]
        used += [v for v in funcargs.values() if isinstance(v, ForgeServer) and v not in used]
        for server in used:
            report.sections.append(
                (
                    f"Forge server log tail (port {server.port})",
                    server.log_tail(SERVER_LOG_LINES),
                )
            )
    return report
