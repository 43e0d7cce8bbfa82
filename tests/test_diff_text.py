"""``forgectl diff`` for pipes, against the REAL Forge server and real git.

A project whose repository holds files of every shape a count can trip on (no
newline at the end, empty lines, a file to delete); the attempt's worktree is
changed, and what forgectl prints is compared with what git itself says about
the same worktree: ``--patch`` applied by ``git apply`` to the base commit gives
the worktree's files byte for byte, ``--stat`` is ``git diff --stat``'s text,
the counts are ``git diff --numstat``'s. git reads the worktree through an index
file of its own (``GIT_INDEX_FILE``), so the server's view is never touched.

    unshare -rn sh -c 'ip link set lo up && exec .venv/bin/python -m pytest -q tests/test_diff_text.py'
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import pytest
from forge_server import ForgeServer
from ptyrun import PtyRun
from support import EXE

from forgectl import ForgeClient
from forgectl.diffing import parse_diff

pytestmark = [pytest.mark.forge, pytest.mark.timeout(120)]


#: The base commit's files (path → content).
BASE = {
    "README.md": "hello\n",
    "noeol.txt": "one\ntwo",  # no newline at the end
    "gone.txt": "bye\nbye\n",
    "src/app.py": "".join(f"line {i}\n" for i in range(1, 121)),
    "docs/long/path/to/a/file/with/a/name/that/git/has/to/shorten/in/a/stat.md": "x\n",
}
#: The attempt's changes (None: deleted).
CHANGES: dict[str, str | None] = {
    "README.md": "hello\nchanged\n",
    "noeol.txt": "one\ntwo\nthree\n",  # git: the old last line changes too
    "gone.txt": None,
    "src/app.py": "".join(
        f"line {i}\n" if i % 10 else f"changed {i}\n" for i in range(1, 141) if i % 7
    ),
    "docs/long/path/to/a/file/with/a/name/that/git/has/to/shorten/in/a/stat.md": "x\ny\n",
    "blank.txt": "a\n\nb\n",  # the server's count forgets its empty line
    "new.txt": "a\nb\nc\n",
    "with space.txt": "spaced\n",
    "é.txt": "quoted by git\n",
    "empty.txt": "",
}

GIT_ENV = {
    "GIT_AUTHOR_NAME": "forgectl tests",
    "GIT_AUTHOR_EMAIL": "tests@forgectl.invalid",
    "GIT_COMMITTER_NAME": "forgectl tests",
    "GIT_COMMITTER_EMAIL": "tests@forgectl.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    base = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env={**base, **GIT_ENV, **(env or {})},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def write_tree(root: Path, files: dict[str, str | None]) -> None:
    for rel, content in files.items():
        target = root / rel
        if content is None:
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode())


class Attempt:
    """An attempt of a project whose base commit holds ``BASE``."""

    def __init__(self, server: ForgeServer, name: str) -> None:
        self.server = server
        self.repo = server.make_repo(name)
        write_tree(self.repo, {k: v for k, v in BASE.items() if k != "README.md"})
        git(self.repo, "add", "-A")
        git(self.repo, "commit", "-q", "-m", "base")
        self.base = git(self.repo, "rev-parse", "HEAD").strip()
        project = server.create_project(name, self.repo, setup_script="true")
        task = server.create_task(project["id"], f"{name} task")
        self.id: str = server.create_attempt(task["id"])["id"]
        self.worktree = server.attempt_worktree(self.id)
        self.index = self.repo.parent / f"{name}.index"

    def git_diff(self, *args: str, columns: int | None = None) -> str:
        """What git says of the worktree against the base (untracked files too), in a
        pipe as wide as ``columns`` (git reads COLUMNS as forgectl does; else 80)."""
        env = {"GIT_INDEX_FILE": str(self.index)}
        git(self.worktree, "read-tree", self.base, env=env)
        git(self.worktree, "add", "-A", env=env)
        if columns:
            env["COLUMNS"] = str(columns)
        return git(self.worktree, "diff", "--cached", "--no-renames", *args, self.base, env=env)


def forgectl(
    server: ForgeServer, *args: str, columns: int | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [EXE, "-s", server.url, *args], capture_output=True, env=env, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def attempt(server: ForgeServer) -> Attempt:
    made = Attempt(server, "shapes")
    write_tree(made.worktree, CHANGES)
    wait_for_files(server, made, len(CHANGES))
    return made


def wait_for_files(server: ForgeServer, attempt: Attempt, count: int) -> dict[str, Any]:
    """The attempt's diff once the server lists ``count`` files (it watches the
    worktree: a write shows a moment later)."""
    deadline = time.monotonic() + 20
    while True:
        proc = forgectl(server, "diff", attempt.id, "--json")
        assert proc.returncode == 0, proc.stderr.decode()
        update: dict[str, Any] = json.loads(proc.stdout)
        if update["filesChanged"] == count or time.monotonic() > deadline:
            assert update["filesChanged"] == count, update
            return update
        time.sleep(0.2)


def test_patch_into_a_pipe_is_what_git_applies(
    server: ForgeServer, attempt: Attempt, tmp_path: Path
) -> None:
    proc = forgectl(server, "diff", attempt.id, "--patch")
    assert proc.returncode == 0, proc.stderr.decode()
    patch = proc.stdout
    json_diff = json.loads(forgectl(server, "diff", attempt.id, "--json").stdout)["diff"]
    assert patch == json_diff.encode()  # the same text, byte for byte
    clone = tmp_path / "base"
    git(tmp_path, "clone", "-q", str(attempt.repo), str(clone))
    git(clone, "checkout", "-q", attempt.base)
    applied = subprocess.run(
        ["git", "-C", str(clone), "apply", "--check", "-"], input=patch, capture_output=True
    )
    assert applied.returncode == 0, applied.stderr.decode()
    subprocess.run(["git", "-C", str(clone), "apply", "-"], input=patch, check=True)
    for rel, content in {**BASE, **CHANGES}.items():
        mine, theirs = clone / rel, attempt.worktree / rel
        assert mine.exists() == theirs.exists() == (content is not None), rel
        if content is not None:
            assert mine.read_bytes() == theirs.read_bytes() == content.encode(), rel


@pytest.mark.parametrize("columns", [None, 50, 160])
def test_stat_into_a_pipe_is_git_diff_stat(
    server: ForgeServer, attempt: Attempt, columns: int | None
) -> None:
    proc = forgectl(server, "diff", attempt.id, "--stat", columns=columns)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode() == attempt.git_diff("--stat", columns=columns)
    assert b"\x1b" not in proc.stdout and proc.stderr == b""


def test_counts_are_gits_numstat(server: ForgeServer, attempt: Attempt) -> None:
    update = json.loads(forgectl(server, "diff", attempt.id, "--stat", "--json").stdout)
    numstat = {}
    for line in attempt.git_diff("--numstat", "-z").split("\0"):
        if line:
            added, deleted, path = line.split("\t", 2)
            numstat[path] = (int(added), int(deleted))
    mine = {fd.path: (fd.insertions, fd.deletions) for fd in parse_diff(update["diff"])}
    assert mine == numstat
    assert update["insertions"] == sum(a for a, _ in numstat.values())
    assert update["deletions"] == sum(d for _, d in numstat.values())
    assert update["filesChanged"] == len(numstat)
    assert "Binary files" not in update["diff"]


def test_name_only_into_a_pipe(server: ForgeServer, attempt: Attempt) -> None:
    proc = forgectl(server, "diff", attempt.id, "--name-only")
    assert proc.stdout.decode() == attempt.git_diff("--name-only")


def test_stat_on_a_terminal_fits_the_window_and_has_colour(
    server: ForgeServer, attempt: Attempt
) -> None:
    plain = PtyRun(
        [EXE, "-s", server.url, "diff", attempt.id, "--stat", "--color", "never"], columns=72
    )
    assert plain.wait(30) == 0, plain.stderr
    assert plain.text == attempt.git_diff("--stat", columns=72)
    coloured = PtyRun([EXE, "-s", server.url, "diff", attempt.id, "--stat"], columns=72)
    assert coloured.wait(30) == 0, coloured.stderr
    assert "\x1b[32m+" in coloured.text and "\x1b[31m-" in coloured.text


def test_server_counts_are_off_by_one_for_added_files_and_forgectl_says_gits(
    server: ForgeServer, attempt: Attempt
) -> None:
    """With ``stats_only`` the server counts lines itself (forge-core's
    ``compute_line_change_counts``): it adds a newline to a text without one,
    so an added file's missing old text becomes one empty line, deleted, or
    matched against an empty line of the new file and then not counted as
    added (``blank.txt``: 2 where git says 3)."""
    import websockets.sync.client

    url = f"{server.ws_url}/api/task-attempts/{attempt.id}/diff/ws?stats_only=true"
    said: dict[str, dict[str, Any]] = {}
    with websockets.sync.client.connect(url) as ws:
        while len(said) < len(CHANGES):
            frame = json.loads(ws.recv(timeout=10))
            for op in frame.get("JsonPatch", []):
                name = op["path"].removeprefix("/entries/").replace("~1", "/").replace("~0", "~")
                said[name] = op["value"]["content"]
    assert (said["blank.txt"]["additions"], said["blank.txt"]["deletions"]) == (2, 0)
    assert (said["new.txt"]["additions"], said["new.txt"]["deletions"]) == (3, 1)
    assert (said["gone.txt"]["additions"], said["gone.txt"]["deletions"]) == (1, 2)
    # The added newline also hides noeol.txt's changed last line: beyond repair.
    assert (said["noeol.txt"]["additions"], said["noeol.txt"]["deletions"]) == (1, 0)

    async def counts() -> dict[str, tuple[int, int]]:
        async with ForgeClient(server=server.url) as forge:
            diff = forge.attempts.stream_diff(attempt.id, follow=False, stats_only=True)
            (update,) = [u async for u in diff]
            assert "Binary files" not in update.diff
            return {fd.path: (fd.insertions, fd.deletions) for fd in update.files}

    numstat = {}
    for line in attempt.git_diff("--numstat", "-z").split("\0"):
        if line:
            added, deleted, path = line.split("\t", 2)
            numstat[path] = (int(added), int(deleted))
    mine = asyncio.run(counts())
    for name in ("blank.txt", "new.txt", "gone.txt", "empty.txt", "with space.txt"):
        assert mine[name] == numstat[name], name
    assert numstat["noeol.txt"] == (2, 1) and mine["noeol.txt"] == (1, 0)


def test_a_file_too_big_to_send_is_not_called_binary(server: ForgeServer) -> None:
    made = Attempt(server, "big")
    # 2.5 MB: over the 2 MiB the server sends of one file.
    write_tree(made.worktree, {"big.log": ("y" * 99 + "\n") * 25_000, "small.txt": "small\n"})
    update = wait_for_files(server, made, 2)
    assert "Binary files" not in update["diff"]
    assert "diff --git a/big.log b/big.log\nindex 0000000..0000000\n" in update["diff"]
    assert "# content omitted by server: new file, line counts not sent\n" in update["diff"]
    proc = forgectl(server, "diff", made.id, "--stat")
    assert proc.stdout.decode().splitlines() == [
        " big.log   | ?",
        " small.txt | 1 +",
        " 2 files changed, 1 insertion(+)",
    ]
    assert "1 file without contents or counts" in proc.stderr.decode()


class Follower:
    """``forgectl diff --follow --stat`` into a pipe, read line by line."""

    def __init__(self, server: ForgeServer, attempt: Attempt) -> None:
        env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
        self.proc = subprocess.Popen(
            [EXE, "-s", server.url, "diff", attempt.id, "--follow", "--stat"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: Queue[str] = Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def block(self, timeout: float = 15) -> list[str]:
        """Lines up to a summary line (`` N files changed...``)."""
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while not out or " changed" not in out[-1] or "|" in out[-1]:
            try:
                out.append(self.lines.get(timeout=max(0.1, deadline - time.monotonic())))
            except Empty:
                self.proc.kill()
                raise AssertionError(f"no stat block; got {out}") from None
        return out


def test_follow_stat_prints_what_changed_each_time(server: ForgeServer) -> None:
    made = Attempt(server, "follow")
    write_tree(made.worktree, {"a.txt": "a\n", "b.txt": "b\n"})
    wait_for_files(server, made, 2)
    follower = Follower(server, made)
    try:
        assert follower.block() == [
            " a.txt | 1 +\n",
            " b.txt | 1 +\n",
            " 2 files changed, 2 insertions(+)\n",
        ]
        write_tree(made.worktree, {"b.txt": "b\nb2\nb3\n"})
        assert follower.block() == [" b.txt | 3 +++\n", " 2 files changed, 4 insertions(+)\n"]
        write_tree(made.worktree, {"a.txt": None})
        assert follower.block() == [
            " a.txt | no longer changed\n",
            " 1 file changed, 3 insertions(+)\n",
        ]
    finally:
        follower.proc.kill()
        follower.proc.wait(10)


def test_patch_refuses_what_it_cannot_do(server: ForgeServer, attempt: Attempt) -> None:
    for args, says in (
        (["--patch", "--json"], "--json prints diff_update objects"),
        (["--patch", "--follow"], "use --json"),
        (["--patch", "--stat"], "choose one"),
    ):
        proc = forgectl(server, "diff", attempt.id, *args)
        assert proc.returncode == 2 and says in proc.stderr.decode(), proc.stderr
        assert proc.stdout == b""
