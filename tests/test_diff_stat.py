"""git's --stat table from forgectl's per-file diffs, compared with real git; reading a
unified diff back into files; an update's cost is the files that changed.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from forgectl.diagnostics import Diagnostics
from forgectl.dialects.forge.diffs import ForgeDiffDecoder
from forgectl.diffing import DiffState, FileDiff, file_diff, parse_diff, stat_rows, stat_summary
from forgectl.events import DiffUpdate
from forgectl.output.difftext import DiffTextRenderer
from forgectl.output.pretty import PrettyRenderer

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")

GIT_ENV = {
    **{k: v for k, v in os.environ.items() if k != "COLUMNS"},
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=GIT_ENV, check=True
    ).stdout


def entry(change: str, old_path: str | None, new_path: str | None, old: Any, new: Any) -> Any:
    return {
        "change": change,
        "oldPath": old_path,
        "newPath": new_path,
        "oldContent": old,
        "newContent": new,
        "contentOmitted": False,
        "additions": None,
        "deletions": None,
    }


def table(state: DiffState, width: int) -> str:
    rows = stat_rows(state.files(), width)
    summary = stat_summary(state.files_changed, state.insertions, state.deletions)
    return "".join(row.text + "\n" for row in rows) + summary + "\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())


@pytest.mark.parametrize("seed", range(6))
def test_stat_table_is_gits_at_every_width(tmp_path: Path, seed: int) -> None:
    r = random.Random(seed)
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    base: dict[str, str] = {}
    dirs = ["src", "lib", "a_rather_long_directory_name", "x"]
    for i in range(r.randrange(1, 9)):
        parts = [r.choice(dirs) for _ in range(r.randrange(4))]
        name = "/".join([*parts, f"f{i}" + r.choice([".py", "_with_a_name_long_enough_to_cut.md"])])
        base[name] = "".join(f"line {j}\n" for j in range(r.randrange(300)))
    for name, text in base.items():
        write(repo / name, text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    state = DiffState()
    for name, text in base.items():
        lines = text.splitlines(keepends=True)
        for _ in range(r.randrange(0, 250)):
            lines.insert(r.randrange(len(lines) + 1), f"new {r.random()}\n")
        lines = [ln for ln in lines if r.random() < 0.8]
        new = "".join(lines)
        if new != text:
            write(repo / name, new)
            state.set(name, entry("modified", name, name, text, new))
    write(repo / "added.txt", "x\n" * r.randrange(60))
    state.set(
        "added.txt", entry("added", None, "added.txt", None, (repo / "added.txt").read_text())
    )
    git(repo, "add", "-A")
    for width in (10, 30, 60, 80, 100, 140, 250):
        assert table(state, width) == git(repo, "diff", "--cached", f"--stat={width}"), width


def test_stat_names_renames_quotes_and_binaries_as_git_does(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    texts = {
        "src/old/a.txt": "".join(f"{i}\n" for i in range(50)),
        "lib/b.txt": "".join(f"{i}\n" for i in range(40)),
        "c.txt": "".join(f"{i}\n" for i in range(30)),
        "sp ace.txt": "x\n",
    }
    for name, text in texts.items():
        write(repo / name, text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    state = DiffState()
    for old, new in (
        ("src/old/a.txt", "src/new/a.txt"),
        ("lib/b.txt", "lib/bb.txt"),
        ("c.txt", "lib/c.txt"),
        ("sp ace.txt", "é.txt"),
    ):
        (repo / new).parent.mkdir(parents=True, exist_ok=True)
        git(repo, "mv", old, new)
        state.set(new, entry("renamed", old, new, texts[old], texts[old]))
    edited = texts["src/old/a.txt"] + "50\n"
    write(repo / "src/new/a.txt", edited)
    state.set(
        "src/new/a.txt",
        entry("renamed", "src/old/a.txt", "src/new/a.txt", texts["src/old/a.txt"], edited),
    )
    git(repo, "add", "-A")
    assert table(state, 80) == git(repo, "diff", "--cached", "-M", "--stat")
    # A binary file: "Bin" in the count column (the server sends no sizes to add).
    logo = file_diff(entry("added", None, "logo.png", "", None))
    assert logo.binary
    rows = [row.text for row in stat_rows([logo, state.get("lib/c.txt") or logo], 80)]
    assert rows == [" logo.png           | Bin", " c.txt => lib/c.txt |   0"]


def test_parse_diff_reads_gits_own_output_back(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo / "a.txt", "a\nb\nc\n")
    write(repo / "sp ace.txt", "1\n2\n")
    write(repo / "gone.txt", "bye\n")
    write(repo / "bin.dat", "\0\1\2")
    write(repo / "moved.txt", "".join(f"{i}\n" for i in range(20)))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    write(repo / "a.txt", "a\n--- not a header\nc\n+++ nor this\n")
    write(repo / "sp ace.txt", "1\n2\n3")
    (repo / "gone.txt").unlink()
    write(repo / "bin.dat", "\0\3")
    write(repo / "é\tname.txt", "quoted\n")
    (repo / "sub").mkdir()
    git(repo, "mv", "moved.txt", "sub/moved.txt")
    git(repo, "add", "-A")
    text = git(repo, "diff", "--cached", "-M")
    numstat = git(repo, "diff", "--cached", "-M", "--numstat", "-z").split("\0")
    want: dict[str, tuple[str, str]] = {}
    i = 0
    while i < len(numstat) - 1:
        added, deleted, path = numstat[i].split("\t", 2)
        if not path:  # a rename: the two names follow
            path = numstat[i + 2]
            i += 2
        want[path] = (added, deleted)
        i += 1
    files = parse_diff(text)
    got = {
        fd.path: ("-", "-") if fd.binary else (str(fd.insertions), str(fd.deletions))
        for fd in files
    }
    assert got == want
    assert "".join(fd.text for fd in files) == text
    moved = next(fd for fd in files if fd.path == "sub/moved.txt")
    assert moved.old_path == "moved.txt"


def frame(*ops: tuple[str, str, str | None]) -> bytes:
    """A diff stream frame: (op, path, new content) per file, as the real server sends."""
    patch = []
    for op, path, text in ops:
        item: dict[str, Any] = {"op": op, "path": "/entries/" + path.replace("/", "~1")}
        if op != "remove":
            item["value"] = {"type": "DIFF", "content": entry("added", None, path, None, text)}
        patch.append(item)
    return json.dumps({"JsonPatch": patch}).encode()


def updates(decoder: ForgeDiffDecoder, *frames: bytes) -> list[DiffUpdate]:
    for data in frames:
        assert list(decoder.feed(data)) == []
    return [e for e in decoder.quiet() if isinstance(e, DiffUpdate)]


def decoder() -> ForgeDiffDecoder:
    made = ForgeDiffDecoder(Diagnostics(lambda level, line: None), "att", follow=True)
    made.connected()
    return made


def test_a_later_update_carries_only_what_changed_and_joins_no_text() -> None:
    stream = decoder()
    names = [f"f{n:05}.txt" for n in range(3000)]
    (first,) = updates(stream, frame(*(("add", name, f"{name}\n") for name in names)))
    assert first.changes is not None and len(first.changes) == 3000
    (later,) = updates(
        stream, frame(("add", names[7], "seven\n")), frame(("remove", names[8], None))
    )
    assert [fd.path for fd in later.changes or ()] == [names[7]]
    assert later.removed == (names[8],)
    assert later.files_changed == 2999 and len(later.files) == 2999
    for renderer in (
        DiffTextRenderer(io.BytesIO(), form="stat", width=80),
        PrettyRenderer(io.BytesIO(), color="never", stat_only=True),
        PrettyRenderer(io.BytesIO(), color="never"),
    ):
        out = renderer.out
        renderer.render(first)
        renderer.flush()
        before = out.tell()
        renderer.render(later)
        renderer.flush()
        printed = out.getvalue()[before:].decode()  # type: ignore[attr-defined]
        assert names[7] in printed and names[8] in printed
        assert names[9] not in printed  # the files that did not change are not printed again
    assert later._owed  # nobody asked for the whole diff text: it was never joined
    assert later.diff.count("diff --git") == 2999 and not later._owed


def test_a_change_undone_within_a_burst_prints_no_update() -> None:
    stream = decoder()
    updates(stream, frame(("add", "a.txt", "a\n"), ("add", "b.txt", "b\n")))
    assert updates(stream, frame(("add", "a.txt", "other\n")), frame(("add", "a.txt", "a\n"))) == []
    (update,) = updates(stream, frame(("add", "a.txt", "other\n")))
    assert [fd.path for fd in update.changes or ()] == ["a.txt"]


def test_documented_updates_are_compared_file_by_file() -> None:
    one = file_diff(entry("added", None, "a.txt", None, "a\n"))
    two = file_diff(entry("added", None, "b.txt", None, "b\n"))
    two_b = file_diff(entry("added", None, "b.txt", None, "b\nb\n"))

    def update(*files: FileDiff) -> DiffUpdate:
        return DiffUpdate(
            {
                "type": "diff_update",
                "diff": "".join(f.text for f in files),
                "filesChanged": len(files),
                "insertions": sum(f.insertions for f in files),
                "deletions": 0,
            }
        )

    out = io.BytesIO()
    renderer = DiffTextRenderer(out, form="stat", width=80)
    renderer.render(update(one, two))
    renderer.render(update(two_b))
    assert out.getvalue().decode().splitlines() == [
        " a.txt | 1 +",
        " b.txt | 1 +",
        " 2 files changed, 2 insertions(+)",
        " b.txt | 2 ++",
        " a.txt | no longer changed",
        " 1 file changed, 2 insertions(+)",
    ]
