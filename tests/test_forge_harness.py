"""Tests of the real-server harness (tests/forge_server.py, tests/forge_binary.sh).

Those marked ``forge`` start the real Forge binary, so they only run inside a
loopback-only network namespace, e.g.::

    unshare -rn sh -c 'ip link set lo up; exec .venv/bin/python -m pytest -q tests/test_forge_harness.py'

Elsewhere, or without the binary, they are skipped, except with ``CI=true`` where
a missing prerequisite is a failure (CI must really exercise the real server).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from forge_server import (
    BINARY_SCRIPT,
    EXPECTED_SETUP_STDERR,
    SCENARIO_FILES,
    TERMINAL_STATUSES,
    WORKTREES_DIR,
    ForgeServer,
    NotIsolatedError,
    default_cache_dir,
    expected_setup_stdout,
    make_scenario,
)
from websockets.sync.client import connect

CACHE_DIR = default_cache_dir()


def ws_frames(url: str, *, until_finished: bool = True, idle: float = 1.5) -> list[Any]:
    """Decoded frames until ``{"finished": true}`` (or ``idle`` seconds of silence)."""
    frames: list[Any] = []
    with connect(url, open_timeout=5) as ws:
        while True:
            try:
                msg = ws.recv(timeout=idle)
            except TimeoutError:
                return frames
            frames.append(json.loads(msg))
            if until_finished and frames[-1] == {"finished": True}:
                return frames


def patch_values(frames: list[Any]) -> dict[str, Any]:
    """Apply the ``add``/``replace``/``remove`` ops of top-level ``/entries/<key>`` paths."""
    entries: dict[str, Any] = {}
    for frame in frames:
        for op in frame.get("JsonPatch", []):
            key = op["path"].removeprefix("/entries/")
            if op["op"] == "remove":
                entries.pop(key, None)
            else:
                entries[key] = op["value"]
    return entries


# ------------------------------------------------------------------ no server needed


def test_refuses_to_start_outside_private_netns(monkeypatch: pytest.MonkeyPatch) -> None:
    import forge_server

    monkeypatch.setattr(forge_server, "in_private_netns", lambda: False)
    srv = ForgeServer(Path("/nonexistent/automagik-forge"))
    with pytest.raises(NotIsolatedError, match="private network namespace"):
        srv.start()
    assert srv.tmp is None  # nothing created, nothing started


def test_binary_script_is_idempotent_from_cache(request: pytest.FixtureRequest) -> None:
    cached = CACHE_DIR / "bin" / "automagik-forge"
    if not cached.is_file():
        request.getfixturevalue("forge_binary")  # skips, or fails under CI
        pytest.skip(f"no cached binary in {CACHE_DIR}")
    # Inside the namespace there is no network: a cached run must not need any.
    proc = subprocess.run(
        ["sh", str(BINARY_SCRIPT)],
        env={**os.environ, "FORGECTL_FORGE_CACHE": str(CACHE_DIR)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(cached.resolve())


# ------------------------------------------------------------------ real server


@pytest.mark.forge
def test_server_up_isolated_and_analytics_off(server: ForgeServer) -> None:
    assert server.url == f"http://127.0.0.1:{server.port}"
    r = httpx.get(f"{server.url}/api/health", trust_env=False)
    assert r.json() == {"success": True, "data": "OK", "error_data": None, "message": None}
    assert server.api("GET", "/api/info")["config"]["analytics_enabled"] is False
    cfg = json.loads((server.data_dir / "config.json").read_text())
    assert cfg["analytics_enabled"] is False
    assert server.log_path.is_file()


@pytest.mark.forge
def test_scenario_failing_setup(server: ForgeServer) -> None:
    sc = make_scenario(server, name="failing-setup", setup_exit=3, dev_run_seconds=0.6)

    setup = server.get_process(sc.setup_process_id)
    assert (setup["run_reason"], setup["status"], setup["exit_code"]) == (
        "setupscript",
        "failed",
        3,
    )
    assert sc.coding_agent_process_id is None
    reasons = sorted(p["run_reason"] for p in server.list_processes(sc.attempt_id))
    assert reasons == ["devserver", "setupscript"]  # no coding agent after a failed setup

    assert sc.dev_process_id is not None
    dev = server.get_process(sc.dev_process_id)
    assert (dev["status"], dev["exit_code"]) == ("killed", None)

    # Raw logs of the setup script: stdout and stderr as the script wrote them.
    raw = ws_frames(f"{server.ws_url}/api/execution-processes/{sc.setup_process_id}/raw-logs/ws")
    assert raw[-1] == {"finished": True}
    entries = [patch_values([f]) for f in raw[:-1]]
    values = [v for e in entries for v in e.values()]
    stdout = "".join(v["content"] for v in values if v["type"] == "STDOUT")
    stderr = "".join(v["content"] for v in values if v["type"] == "STDERR")
    assert stdout == sc.setup_stdout == expected_setup_stdout(3)
    assert stderr == sc.setup_stderr == EXPECTED_SETUP_STDERR

    # The dev server printed ticks before it was killed.
    dev_raw = ws_frames(f"{server.ws_url}/api/execution-processes/{sc.dev_process_id}/raw-logs/ws")
    dev_out = "".join(v["content"] for v in patch_values(dev_raw).values())
    assert dev_out.startswith("dev-server-up\ntick 0\n")

    # The files written into the worktree show up in the diff stream.
    assert sc.worktree.parent == server.worktrees_dir
    diff = patch_values(
        ws_frames(
            f"{server.ws_url}/api/task-attempts/{sc.attempt_id}/diff/ws", until_finished=False
        )
    )
    assert set(diff) == {"README.md", "new_file.txt", "sub~1dir~1nested.txt", "tilde~0name.txt"}
    changes = {v["content"]["newPath"]: v["content"]["change"] for v in diff.values()}
    assert changes == {p: ("modified" if p == "README.md" else "added") for p in SCENARIO_FILES}


@pytest.mark.forge
def test_scenario_successful_setup_runs_and_fails_agent(server: ForgeServer) -> None:
    sc = make_scenario(server, name="ok-setup", setup_exit=0, dev_server=False, write_files=False)
    assert (sc.setup_status, sc.setup_exit_code) == ("completed", 0)
    assert sc.coding_agent_process_id is not None
    agent = server.get_process(sc.coding_agent_process_id)
    assert (agent["run_reason"], agent["status"], agent["exit_code"]) == (
        "codingagent",
        "failed",
        1,
    )
    assert sc.dev_process_id is None
    # No changes in the worktree: the diff stream stays silent.
    assert ws_frames(f"{server.ws_url}/api/task-attempts/{sc.attempt_id}/diff/ws", idle=1.0) == []


@pytest.mark.forge
def test_restart_keeps_port_and_data_and_fails_running_process(server: ForgeServer) -> None:
    sc = make_scenario(
        server, name="restart", setup_exit=3, dev_run_seconds=0.3, stop_dev_server=False
    )
    assert sc.dev_process_id is not None
    assert server.get_process(sc.dev_process_id)["status"] == "running"
    port, pid = server.port, server.pid

    server.restart()

    assert server.port == port and server.pid != pid
    assert server.get_process(sc.setup_process_id)["exit_code"] == 3  # same database
    dev = server.get_process(sc.dev_process_id)
    assert dev["status"] in TERMINAL_STATUSES
    assert (dev["status"], dev["exit_code"]) == ("failed", None)  # observed on 0.7.4
    # Logs written before the restart are still served.
    dev_raw = ws_frames(f"{server.ws_url}/api/execution-processes/{sc.dev_process_id}/raw-logs/ws")
    assert dev_raw[-1] == {"finished": True}
    assert "dev-server-up" in "".join(v["content"] for v in patch_values(dev_raw).values())


@pytest.mark.forge
def test_worktrees_are_private_and_go_with_the_temp_dir(
    start_forge_server: Callable[..., ForgeServer],
) -> None:
    """The binary's hard-coded worktrees dir is a directory of the server's own: the
    host's (another server's, a developer's real Forge) is neither seen nor written."""
    foreign = WORKTREES_DIR / f"zzzz-not-ours-{os.getpid()}"
    foreign.mkdir(parents=True, exist_ok=True)
    try:
        srv = start_forge_server()
        tmp = srv.tmp
        sc = make_scenario(srv, name="cleanup", setup_exit=3, dev_server=False)
        ref = srv.get_attempt(sc.attempt_id)["container_ref"]
        assert Path(ref).parent == WORKTREES_DIR  # what the server says...
        assert sc.worktree == srv.host_path(ref) and sc.worktree.parent == srv.worktrees_dir
        assert (sc.worktree / "README.md").read_text() == SCENARIO_FILES["README.md"]
        assert not (WORKTREES_DIR / Path(ref).name).exists()  # ...is not the host's dir
        # What the server itself sees there (its mount namespace, through /proc):
        seen = os.listdir(f"/proc/{srv.pid}/root{WORKTREES_DIR}")
        assert seen == [sc.worktree.name]
        srv.close()
        assert tmp is not None and not tmp.exists()
        assert not sc.worktree.exists()
        assert foreign.is_dir()
        assert srv.pid is None
    finally:
        shutil.rmtree(foreign, ignore_errors=True)
