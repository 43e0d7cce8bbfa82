"""The suite's own rules (tests/conftest.py), run on throw-away test files.

A test that uses the real Forge server without the ``forge`` marker fails (so
``pytest -m "not forge"`` stays the fast layer), and a failing test's report shows
what forgectl said on stderr and the log tail of the real servers it used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from forge_server import ENV_BIN

TESTS = Path(__file__).resolve().parent

#: The pytester directory's conftest: this suite's conftest, as a plugin.
CONFTEST = f"""
import importlib.util
import sys

spec = importlib.util.spec_from_file_location("suite_conftest", {str(TESTS / "conftest.py")!r})
assert spec is not None and spec.loader is not None
module = importlib.util.module_from_spec(spec)
sys.modules["suite_conftest"] = module
spec.loader.exec_module(module)
pytest_plugins = ["suite_conftest"]
"""

RULES = """
from pathlib import Path

import forge_server
import pytest
import support
from forge_server import ForgeServer


def test_unmarked_with_the_server_fixture(server):
    raise AssertionError("the server fixture ran for an unmarked test")


def test_unmarked_starting_a_server(monkeypatch):
    # Would not get far (no such binary), and must not get there at all.
    monkeypatch.setattr(forge_server, "in_private_netns", lambda: True)
    ForgeServer(Path("/nonexistent/automagik-forge")).start()


@pytest.mark.forge
def test_marked(forge_binary):
    assert forge_binary.name


def test_failing_after_forgectl_spoke():
    done = support.run("http://127.0.0.1:9", "logs", "nope")
    assert done.returncode == 0
"""


INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
markers =
    forge: runs the real Forge binary
"""


def run_rules(
    pytester: pytest.Pytester,
    source: str,
    monkeypatch: pytest.MonkeyPatch,
    binary: Path | None = None,
) -> Any:
    monkeypatch.delenv("CI", raising=False)  # where the binary cannot run: skip, not fail
    if binary is not None:
        monkeypatch.setenv(ENV_BIN, str(binary))
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_rules=source)
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning", timeout=120
    )


def test_unmarked_real_server_tests_fail_and_reports_carry_stderr(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_rules(pytester, RULES, monkeypatch)
    out = result.stdout.str()
    marker_error = "is not marked `forge`"
    for name in ("test_unmarked_with_the_server_fixture", "test_unmarked_starting_a_server"):
        line = f"test_rules.py::{name} uses the real Forge server but {marker_error}"
        assert line in out, out
    assert "the server fixture ran" not in out
    assert "test_rules.py::test_marked " + marker_error not in out
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors") == 1, outcomes  # the fixture case, at set-up
    assert outcomes.get("failed") == 2, outcomes  # the direct start, the failing run
    assert outcomes.get("passed", 0) + outcomes.get("skipped", 0) == 1, outcomes
    # The failing test's report: the command and what forgectl said, unasked.
    assert "forgectl --server http://127.0.0.1:9 logs nope (exit 3): stderr" in out
    assert "cannot connect to ws://127.0.0.1:9/" in out


@pytest.mark.forge
def test_a_failing_real_server_test_shows_the_server_log(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, forge_binary: Path
) -> None:
    source = """
import pytest
import support


@pytest.mark.forge
def test_fails(start_forge_server):
    srv = start_forge_server()
    support.run(srv, "logs", "00000000-0000-0000-0000-000000000000")
    assert srv.port == 0
"""
    result = run_rules(pytester, source, monkeypatch, forge_binary)
    out = result.stdout.str()
    assert result.parseoutcomes().get("failed") == 1, out
    assert "Forge server log tail (port " in out
    assert "=== forge_server.py: starting" in out  # the log's own first line
    assert "logs 00000000-0000-0000-0000-000000000000 (exit " in out
