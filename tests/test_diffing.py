"""Tests for forgectl.diffing: git apply round trips, numstat, DiffState caching."""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forgectl import diffing
from forgectl.diffing import DiffState, FileDiff, diff_lines, file_diff, quote_path

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "HOME": "/nonexistent",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, check=check)


def entry(
    change: str,
    old_path: str | None,
    new_path: str | None,
    old: str | None,
    new: str | None,
    **extra: Any,
) -> dict[str, Any]:
    d: dict[str, Any] = {
        "change": change,
        "oldPath": old_path,
        "newPath": new_path,
        "oldContent": old,
        "newContent": new,
        "contentOmitted": False,
        "additions": None,
        "deletions": None,
    }
    d.update(extra)
    return d


def write(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8"))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    d = tmp_path / "repo"
    d.mkdir()
    git(d, "init", "-q")
    return d


def apply(repo: Path, patch: str) -> None:
    p = repo.parent / "p.diff"
    p.write_bytes(patch.encode("utf-8"))
    chk = git(repo, "apply", "--check", str(p), check=False)
    assert chk.returncode == 0, chk.stderr.decode() + "\n" + patch
    res = git(repo, "apply", str(p), check=False)
    assert res.returncode == 0, res.stderr.decode() + "\n" + patch


def numstat(tmp: Path, old: str, new: str) -> tuple[int, int]:
    a, b = tmp / "numstat_old", tmp / "numstat_new"
    write(a, old)
    write(b, new)
    out = git(tmp, "diff", "--no-index", "--numstat", str(a), str(b), check=False).stdout
    if not out.strip():
        return 0, 0
    ins, dels, _ = out.decode().split("\t", 2)
    return int(ins), int(dels)


# --------------------------------------------------------------- server samples


def test_sample_frames_full() -> None:
    fd = file_diff(
        {
            "change": "modified",
            "oldPath": "README.md",
            "newPath": "README.md",
            "oldContent": "hello\n",
            "newContent": "hello\nchanged by peer test\n",
            "contentOmitted": False,
            "additions": None,
            "deletions": None,
        }
    )
    assert fd == FileDiff(
        "README.md",
        "diff --git a/README.md b/README.md\n"
        "index ce01362..9869128 100644\n"
        "--- a/README.md\n"
        "+++ b/README.md\n"
        "@@ -1 +1,2 @@\n"
        " hello\n"
        "+changed by peer test\n",
        1,
        0,
    )
    wrapped = {
        "type": "DIFF",
        "content": entry("added", None, "new_file.txt", None, "a\nb\nc\n"),
    }
    fd = file_diff(wrapped)
    assert fd.text == (
        "diff --git a/new_file.txt b/new_file.txt\n"
        "new file mode 100644\n"
        "index 0000000..de98044\n"
        "--- /dev/null\n"
        "+++ b/new_file.txt\n"
        "@@ -0,0 +1,3 @@\n"
        "+a\n+b\n+c\n"
    )
    assert (fd.insertions, fd.deletions) == (3, 0)


def test_sample_frames_stats_only(repo: Path) -> None:
    st = DiffState()
    st.set(
        "README.md",
        entry(
            "modified",
            "README.md",
            "README.md",
            None,
            None,
            contentOmitted=True,
            additions=1,
            deletions=0,
        ),
    )
    st.set(
        "new_file.txt",
        entry(
            "added",
            None,
            "new_file.txt",
            None,
            None,
            contentOmitted=True,
            additions=3,
            deletions=1,
        ),
    )
    assert (st.files_changed, st.insertions, st.deletions) == (2, 4, 1)
    # Never called binary: they are text files the server did not send.
    assert st.text() == (
        "diff --git a/README.md b/README.md\n"
        "index 0000000..0000000\n"
        "# content omitted by server: 1 addition, 0 deletions\n"
        "diff --git a/new_file.txt b/new_file.txt\n"
        "index 0000000..0000000\n"
        "# content omitted by server: new file, 3 additions, 1 deletion\n"
    )
    assert all(fd.omitted and not fd.binary and fd.counted for fd in st.files())
    # Applying it must fail loudly rather than apply half a change (an empty new
    # file, a README without its line), also beside a file git could apply.
    st.set("z.txt", entry("modified", "z.txt", "z.txt", "a\n", "b\n"))
    write(repo / "README.md", "hello\n")
    write(repo / "z.txt", "a\n")
    p = repo.parent / "p.diff"
    p.write_text(st.text())
    check = git(repo, "apply", "--check", str(p), check=False)
    assert check.returncode != 0 and b"line 3" in check.stderr, check.stderr
    assert git(repo, "apply", str(p), check=False).returncode != 0
    assert not (repo / "new_file.txt").exists() and (repo / "z.txt").read_text() == "a\n"
    assert st.remove("new_file.txt") and st.remove("z.txt")
    assert (st.files_changed, st.insertions, st.deletions) == (1, 1, 0)


def test_omitted_without_counts_and_renames_say_what_they_are(repo: Path) -> None:
    big = file_diff(entry("modified", "big.txt", "big.txt", None, None, contentOmitted=True))
    assert not big.counted and (big.insertions, big.deletions) == (0, 0)
    assert big.text.endswith("# content omitted by server: line counts not sent\n")
    moved = file_diff(
        entry("renamed", "old.txt", "new.txt", None, None, contentOmitted=True, additions=2)
    )
    assert moved.old_path == "old.txt" and moved.path == "new.txt"
    assert "renamed from old.txt, 2 additions, 0 deletions" in moved.text
    write(repo / "old.txt", "x\n")
    p = repo.parent / "p.diff"
    p.write_text(moved.text)
    assert git(repo, "apply", str(p), check=False).returncode != 0
    assert (repo / "old.txt").exists() and not (repo / "new.txt").exists()


def test_contents_not_sent_without_the_omitted_flag_are_binary(repo: Path) -> None:
    # The server sends no text for a binary (or non-UTF-8) file, and does not say so.
    fd = file_diff(entry("added", None, "logo.png", None, None))
    assert fd.binary and fd.text == (
        "diff --git a/logo.png b/logo.png\n"
        "new file mode 100644\n"
        "Binary files /dev/null and b/logo.png differ\n"
    )
    p = repo.parent / "p.diff"
    p.write_text(fd.text)
    assert git(repo, "apply", "--numstat", str(p)).stdout == b"-\t-\tlogo.png\n"
    assert git(repo, "apply", str(p), check=False).returncode != 0


def test_content_omitted_flag_with_contents_uses_server_counts() -> None:
    fd = file_diff(
        entry(
            "modified",
            "big.txt",
            "big.txt",
            "a\n",
            "b\n",
            contentOmitted=True,
            additions=7,
            deletions=2,
        )
    )
    assert (fd.insertions, fd.deletions) == (7, 2)
    assert "# content omitted by server: 7 additions, 2 deletions" in fd.text


# --------------------------------------------------------------- round trips

ALPHABETS = [
    ["a", "b", "c", ""],
    ["x = 1", "}", "", "    return y", "def f():", "é ünïcode ✓", "tab\there"],
]


def random_text(r: random.Random) -> str:
    kind = r.randrange(6)
    if kind == 0:
        return ""
    alphabet = r.choice(ALPHABETS)
    n = r.randrange(1, 40)
    lines = [
        r.choice(alphabet) if r.random() < 0.6 else f"line {r.randrange(60)}" for _ in range(n)
    ]
    eol = "\r\n" if kind == 1 else "\n"
    text = eol.join(lines)
    if r.random() < 0.7:
        text += eol
    return text


def mutate(r: random.Random, text: str) -> str:
    lines = text.split("\n")
    for _ in range(r.randrange(0, 6)):
        op = r.randrange(4)
        pos = r.randrange(len(lines) + 1)
        if op == 0:
            lines.insert(pos, f"new {r.randrange(1000)}")
        elif op == 1 and pos < len(lines):
            del lines[pos]
        elif op == 2 and pos < len(lines):
            lines[pos] = lines[pos] + " changed"
        elif op == 3 and pos < len(lines):
            lines[pos] = lines[pos] + "\r"
    out = "\n".join(lines)
    if r.random() < 0.15:
        out = out.rstrip("\n")
    elif r.random() < 0.15:
        out += "\n"
    return out


def random_pairs(seed: int, count: int) -> Iterator[tuple[str, str]]:
    r = random.Random(seed)
    for _ in range(count):
        old = random_text(r)
        new = mutate(r, old) if r.random() < 0.8 else random_text(r)
        yield old, new


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_modified_round_trip_and_numstat(tmp_path: Path, seed: int) -> None:
    st = DiffState()
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q")
    expected: dict[str, str] = {}
    for n, (old, new) in enumerate(random_pairs(seed, 60)):
        name = f"dir {n % 3}/f~{n}.txt"
        write(repo / name, old)
        expected[name] = new
        fd = file_diff(entry("modified", name, name, old, new))
        assert (fd.insertions, fd.deletions) == numstat(tmp_path, old, new), (old, new)
        if old == new:
            assert fd.text.startswith("# ")
        st.set(name, entry("modified", name, name, old, new))
    apply(repo, st.text())
    for name, new in expected.items():
        assert (repo / name).read_bytes() == new.encode("utf-8"), name


def test_added_deleted_renamed_copied_round_trip(repo: Path, tmp_path: Path) -> None:
    r = random.Random(42)
    names = [
        "plain.txt",
        "with space.txt",
        "tilde~file",
        "sub dir/ü ñ ✓.md",
        'q"uote.txt',
        "back\\slash",
    ]
    st = DiffState()
    expected: dict[str, str | None] = {}
    for i, name in enumerate(names):
        old = random_text(r)
        new = mutate(r, old)
        kind = ["added", "deleted", "renamed", "copied", "modified", "renamed"][i]
        if kind == "added":
            st.set(name, entry("added", None, name, None, new))
            expected[name] = new
        elif kind == "deleted":
            write(repo / name, old)
            st.set(name, entry("deleted", name, None, old, None))
            expected[name] = None
        elif kind in ("renamed", "copied"):
            target = f"moved/{name}"
            write(repo / name, old)
            st.set(target, entry(kind, name, target, old, new))
            expected[name] = None if kind == "renamed" else old
            expected[target] = new
        else:
            write(repo / name, old)
            st.set(name, entry("modified", name, name, old, new))
            expected[name] = new
    # Empty files added and deleted, a pure rename, a file without final newline.
    st.set("empty new", entry("added", None, "empty new", None, ""))
    expected["empty new"] = ""
    write(repo / "empty old", "")
    st.set("empty old", entry("deleted", "empty old", None, "", None))
    expected["empty old"] = None
    write(repo / "same", "x\ny")
    st.set("same2", entry("renamed", "same", "same2", "x\ny", "x\ny"))
    expected["same"] = None
    expected["same2"] = "x\ny"
    apply(repo, st.text())
    for name, content in expected.items():
        if content is None:
            assert not (repo / name).exists(), name
        else:
            assert (repo / name).read_bytes() == content.encode("utf-8"), name


def test_matches_git_diff_exactly(repo: Path) -> None:
    files_old = {
        "a.txt": "".join(f"{i} line\n" for i in range(40)),
        "gone.txt": "1\n2\n",
        "é dir/x y.txt": "1\n2\n3",
    }
    files_new = {
        "a.txt": "".join(f"{i} line\n" for i in range(40) if i not in (5, 20)).replace(
            "30 line", "30 LINE"
        ),
        "new.txt": "1\n",
        "é dir/x y.txt": "1\n2\n3\n",
    }
    for name, content in files_old.items():
        write(repo / name, content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "old")
    for name in files_old:
        (repo / name).unlink()
    for name, content in files_new.items():
        write(repo / name, content)
    git(repo, "add", "-A")
    want = git(repo, "diff", "--cached", "--no-renames").stdout.decode()
    st = DiffState()
    for name in sorted(set(files_old) | set(files_new)):
        old, new = files_old.get(name), files_new.get(name)
        if old is None:
            st.set(name, entry("added", None, name, None, new))
        elif new is None:
            st.set(name, entry("deleted", name, None, old, None))
        else:
            st.set(name, entry("modified", name, name, old, new))
    assert st.text() == want


def test_quote_path_like_git() -> None:
    assert quote_path("a/with space~") == "a/with space~"
    assert quote_path("a/é") == '"a/\\303\\251"'
    assert quote_path('a/q"\\\t\x01') == '"a/q\\"\\\\\\t\\001"'


def test_permission_change_only(repo: Path) -> None:
    fd = file_diff(entry("permissionChange", "run.sh", "run.sh", "echo\n", "echo\n"))
    assert fd == FileDiff(
        "run.sh", "# run.sh: file mode changed (modes not reported by server)\n", 0, 0
    )
    st = DiffState()
    st.set("run.sh", entry("permissionChange", "run.sh", "run.sh", "echo\n", "echo\n"))
    st.set("z.txt", entry("modified", "z.txt", "z.txt", "a\n", "b\n"))
    write(repo / "run.sh", "echo\n")
    write(repo / "z.txt", "a\n")
    apply(repo, st.text())
    assert (repo / "z.txt").read_text() == "b\n"


def test_permission_change_with_content_change() -> None:
    fd = file_diff(entry("permissionChange", "run.sh", "run.sh", "echo\n", "echo hi\n"))
    assert (fd.insertions, fd.deletions) == (1, 1)
    assert "@@ -1 +1 @@\n-echo\n+echo hi\n" in fd.text


# --------------------------------------------------------------- the algorithm


def lcs_length(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in reversed(a):
        cur = [0] * (len(b) + 1)
        for j in range(len(b) - 1, -1, -1):
            cur[j] = prev[j + 1] + 1 if x == b[j] else max(prev[j], cur[j + 1])
        prev = cur
    return prev[0]


def check_blocks(a: list[str], b: list[str], blocks: list[tuple[int, int, int]]) -> None:
    ea = eb = 0
    for i, j, k in blocks:
        assert k > 0
        assert i >= ea
        assert j >= eb
        assert a[i : i + k] == b[j : j + k]
        ea, eb = i + k, j + k


def test_diff_lines_is_minimal() -> None:
    r = random.Random(7)
    for _ in range(2000):
        a = [r.choice("abcd") for _ in range(r.randrange(0, 16))]
        b = [r.choice("abcd") for _ in range(r.randrange(0, 16))]
        blocks = diff_lines(a, b)
        check_blocks(a, b, blocks)
        assert sum(k for _, _, k in blocks) == lcs_length(a, b), (a, b)


def test_fallback_past_cost_limit_still_correct(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Tiny limits force the patience split, the progressive walk and replacements.
    monkeypatch.setattr(diffing, "_MYERS_COST_LIMIT", 2)
    monkeypatch.setattr(diffing, "_PROGRESSIVE_COST", 3)
    r = random.Random(11)
    repo = tmp_path / "r"
    repo.mkdir()
    st = DiffState()
    expected = {}
    for n in range(40):
        old = "".join(
            f"{r.choice(['u', 'v', str(r.randrange(30))])}\n" for _ in range(r.randrange(0, 60))
        )
        new = mutate(r, mutate(r, old))
        a, b = diffing._split_lines(old), diffing._split_lines(new)
        check_blocks(a, b, diff_lines(a, b))
        name = f"f{n}"
        write(repo / name, old)
        st.set(name, entry("modified", name, name, old, new))
        expected[name] = new
    apply(repo, st.text())
    for name, new in expected.items():
        assert (repo / name).read_bytes() == new.encode()


def test_large_file_scattered_edits_numstat(tmp_path: Path) -> None:
    r = random.Random(3)
    old_lines = [f"line {i} {r.random()}\n" for i in range(20000)]
    new_lines = list(old_lines)
    for k in range(50):
        p = r.randrange(len(new_lines))
        [new_lines.__setitem__, new_lines.insert][k % 2](p, f"edit {k}\n")
    old, new = "".join(old_lines), "".join(new_lines)
    fd = file_diff(entry("modified", "big", "big", old, new))
    assert (fd.insertions, fd.deletions) == numstat(tmp_path, old, new)


def test_unicode_separators_are_not_line_breaks(repo: Path) -> None:
    old = "a\u2028b\x0cc\rd\n"
    new = "a\u2028b\x0cc\rD\n"
    fd = file_diff(entry("modified", "u", "u", old, new))
    assert (fd.insertions, fd.deletions) == (1, 1)
    write(repo / "u", old)
    apply(repo, fd.text)
    assert (repo / "u").read_bytes() == new.encode()


# --------------------------------------------------------------- DiffState


def test_diff_state_recomputes_only_changed_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real = diffing.file_diff

    def counting(change: Any) -> FileDiff:
        calls.append(str(change["newPath"]))
        return real(change)

    monkeypatch.setattr(diffing, "file_diff", counting)
    st = DiffState()
    for i in range(300):
        p = f"f{i:03}.txt"
        assert st.set(p, entry("modified", p, p, "a\n", f"a\n{i}\n"))
    assert (st.files_changed, st.insertions, st.deletions) == (300, 300, 0)
    calls.clear()
    text1 = st.text()
    assert st.text() is text1  # cached
    assert not st.set("f007.txt", entry("modified", "f007.txt", "f007.txt", "a\n", "a\n7\n"))
    assert calls == []
    assert st.text() is text1
    assert st.set("f007.txt", entry("modified", "f007.txt", "f007.txt", "a\n", "b\nc\n"))
    assert calls == ["f007.txt"]
    assert (st.insertions, st.deletions) == (301, 1)
    text2 = st.text()
    assert text2 != text1
    assert len(calls) == 1
    assert text2 == "".join(fd.text for fd in st.files())
    assert st.remove("f007.txt")
    assert not st.remove("f007.txt")
    assert (st.files_changed, st.insertions, st.deletions) == (299, 299, 0)
    assert "f007.txt" not in st
    assert st.get("f008.txt") is not None


def test_diff_state_sorted_like_git() -> None:
    st = DiffState()
    for p in ["b", "a/z", "a b", "a", "é", "Z"]:
        st.set(p, entry("added", None, p, None, "x\n"))
    assert st.paths() == sorted(["b", "a/z", "a b", "a", "é", "Z"])
    heads = [line for line in st.text().splitlines() if line.startswith("diff --git")]
    assert heads[0] == "diff --git a/Z b/Z"
    st.clear()
    assert (st.text(), st.files_changed, st.insertions) == ("", 0, 0)
