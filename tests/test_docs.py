"""Generated docs stay in step with the CLI; help text and completion work."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click
import pytest
import support
from click.testing import CliRunner
from support import free_port

from forgectl.cli.complete import DEADLINE, complete_attempt_id, complete_process_id
from forgectl.cli.main import cli
from forgectl.errors import ExitCode
from tools import docgen

REPO = Path(__file__).resolve().parent.parent
REGENERATE = "run python -m tools.docgen"


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return docgen.generate(cli)


def test_committed_files_are_current(generated: dict[str, str], tmp_path: Path) -> None:
    assert set(generated) >= {
        "completions/forgectl.bash",
        "completions/_forgectl",
        "completions/forgectl.fish",
        "man/forgectl.1",
        "man/forgectl-logs.1",
        "man/forgectl-monitor.1",
        "man/forgectl-diff.1",
    }
    docgen.write(tmp_path, generated)
    stale = [
        rel
        for rel in sorted(generated)
        if not (REPO / rel).is_file()
        or (REPO / rel).read_text(encoding="utf-8") != (tmp_path / rel).read_text(encoding="utf-8")
    ]
    stray = [rel for rel in docgen.stale(REPO, generated) if rel not in generated]
    assert not stale and not stray, f"stale {stale}, stray {stray}: {REGENERATE}"


@pytest.mark.parametrize("seed", ["0", "1", "4242"])
def test_the_tool_checks_the_tree_whatever_the_hash_seed(seed: str) -> None:
    """``python -m tools.docgen --check`` from the source tree, as a developer runs it:
    the same files under every hash seed (set and dict order must not leak in)."""
    result = subprocess.run(
        [sys.executable, "-m", "tools.docgen", "--check"],
        cwd=REPO,
        env={**os.environ, "PYTHONHASHSEED": seed},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, ""), result.stderr


def test_docgen_is_not_part_of_the_package() -> None:
    import tomllib

    assert not (REPO / "forgectl" / "docgen.py").exists()
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["forgectl"]
    assert "forgectl.docgen" not in (REPO / "tests" / "test_architecture.py").read_text()


def test_check_mode_lists_stale_files(tmp_path: Path, generated: dict[str, str]) -> None:
    docgen.write(tmp_path, generated)
    assert docgen.main(["--check", "--root", str(tmp_path)]) == 0
    (tmp_path / "man/forgectl-logs.1").write_text("old\n")
    (tmp_path / "man/forgectl-gone.1").write_text("old\n")
    assert docgen.stale(tmp_path, generated) == ["man/forgectl-logs.1", "man/forgectl-gone.1"]
    assert docgen.main(["--check", "--root", str(tmp_path)]) == 1


def test_every_command_has_a_man_page(generated: dict[str, str]) -> None:
    for page in docgen.iter_pages(cli):
        text = generated[f"man/{page.name}.1"]
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "OUTPUT", "EXIT STATUS"):
            assert f".SH {section}\n" in text, (page.name, section)
        for section in ("ENVIRONMENT", "FILES", "EXAMPLES", "SEE ALSO"):
            assert f".SH {section}\n" in text, (page.name, section)
        for member in ExitCode:
            assert f"\\fB{int(member)}\\fR" in text, (page.name, member)


def test_man_pages_document_every_option(generated: dict[str, str]) -> None:
    for page in docgen.iter_pages(cli):
        text = generated[f"man/{page.name}.1"]
        for param in docgen.documented_options(page):
            for name in (*param.opts, *param.secondary_opts):
                assert docgen.bold(name) in text, (page.name, name)
            for env in docgen.option_envvars(param):
                assert docgen.escape(env) in text, (page.name, env)
    root = generated["man/forgectl.1"]
    for env in ("FORGE_URL", "FORGE_TOKEN", "FORGE_API", "FORGE_PROFILE", "FORGE_CACERT"):
        assert f"\\fB{docgen.escape(env)}\\fR" in root
    for env in ("FORGECTL_DEBUG", "FORGECTL_CONFIG_DIR", "NO_COLOR", "FORCE_COLOR"):
        assert f"\\fB{docgen.escape(env)}\\fR" in root
    assert "HTTPS_PROXY" in root and "config.toml" in root and "jq" in root


def test_roff_escaping() -> None:
    assert docgen.escape("--json") == r"\-\-json"
    assert docgen.escape(".starts with a dot") == r"\&.starts with a dot"
    assert docgen.escape("'quote\nnext") == "\\&'quote\nnext"
    assert docgen.escape(r"a\b") == r"a\eb"
    assert docgen.escape("caf\u00e9 \u2014 x") == r"caf\[u00E9] \(em x"


def _groff_required() -> None:
    if shutil.which("groff") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("groff is required in CI to check the man pages")
        pytest.skip("groff is not installed")


def test_man_pages_render_without_warnings(generated: dict[str, str], tmp_path: Path) -> None:
    _groff_required()
    for rel, text in generated.items():
        if not rel.startswith("man/"):
            continue
        path = tmp_path / Path(rel).name
        path.write_text(text, encoding="utf-8")
        result = subprocess.run(
            ["groff", "-man", "-ww", "-z", str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0 and not result.stderr, (rel, result.stderr)


# -- --help ------------------------------------------------------------------------


def test_every_command_has_a_summary_and_examples() -> None:
    runner = CliRunner()
    missing = []
    for page in docgen.iter_pages(cli):
        result = runner.invoke(cli, [*page.path, "--help"])
        assert result.exit_code == 0, (page.invocation, result.output)
        summary = page.command.get_short_help_str(limit=300)
        assert summary and "\n" not in summary, page.invocation
        assert summary in " ".join(result.output.split()), page.invocation
        if "Examples" not in (page.command.epilog or "") or "Examples" not in result.output:
            missing.append(page.invocation)
    assert not missing, f"no Examples in the --help epilog of: {', '.join(missing)}"


def test_every_envvar_is_shown_in_help() -> None:
    for page in docgen.iter_pages(cli):
        for param in page.command.get_params(page.ctx):
            if isinstance(param, click.Option) and param.envvar:
                shown = param.show_envvar or "[env var:" in (param.help or "")
                assert shown, f"{page.invocation} {param.opts[0]}: env var not shown"


def test_root_help_lists_the_exit_codes() -> None:
    result = support.invoke(None, "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Exit status:" in text
    for member in ExitCode:
        assert f"{int(member)} " in text, member


WIDTHS = (
    "import shutil, sys\n"
    "from forgectl.cli.main import terminal_columns\n"
    "sys.stderr.write(f'{terminal_columns()} {shutil.get_terminal_size().columns}')\n"
)


@pytest.mark.parametrize("columns", [None, "60", "200", "0", "wide"])
def test_help_width_is_shutils_without_importing_it(columns: str | None) -> None:
    """The root help sizes itself as click would, on a terminal and under $COLUMNS."""
    import fcntl
    import struct
    import termios

    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = columns
    leader, follower = os.openpty()
    try:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 133, 0, 0))
        result = subprocess.run(
            [sys.executable, "-c", WIDTHS], stdout=follower, stderr=subprocess.PIPE, env=env
        )
    finally:
        os.close(follower)
        os.close(leader)
    ours, shutils = result.stderr.decode().split()
    assert ours == shutils
    assert ours == (columns if columns in ("60", "200") else "133")

    check_imports = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('shutil' in sys.modules, file=sys.stderr))\n"
        "from forgectl.cli.main import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check_imports, "--help"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0 and "Usage: " in done.stdout
    assert done.stderr.strip() == "False"


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["logs", "--help"]])
def test_help_and_version_import_no_json_nor_network(argv: list[str]) -> None:
    """What prints no JSON and opens no connection pays for neither."""
    heavy = ("orjson", "json", "asyncio", "websockets", "ssl")
    code = (
        "import atexit, sys\n"
        f"names = {heavy!r}\n"
        "atexit.register(lambda: print(*[n for n in names if n in sys.modules], file=sys.stderr))\n"
        "from forgectl.cli.main import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout
    assert done.stderr == "\n"


# -- shell completion ----------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORGE_", "_FORGECTL"))}
    env.update(extra)
    return env


def _forgectl() -> list[str]:
    """The installed console script (what the shell runs), else ``python -m forgectl``."""
    script = Path(sys.executable).parent / "forgectl"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "forgectl"]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("forgectl l", {"logs", "login", "logout"}),
        ("forgectl p", {"ps"}),
        ("forgectl logs --fol", {"--follow"}),
        ("forgectl logs --at", {"--attempt"}),
        ("forgectl ps --at", {"--attempt"}),
        ("forgectl ps --status ", {"running", "completed", "failed", "killed"}),
        ("forgectl ps --run-reason c", {"codingagent", "cleanupscript"}),
    ],
)
def test_bash_completes_commands_options_and_choices(words: str, expected: set[str]) -> None:
    """What the committed scripts ask forgectl for (they are click's shims)."""
    cword = str(len(words.split()) - (0 if words.endswith(" ") else 1))
    result = subprocess.run(
        _forgectl(),
        env=_env(_FORGECTL_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=cword),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    got = {line.removeprefix("plain,") for line in result.stdout.splitlines()}
    assert got == expected, words


def _context(*args: str) -> click.Context:
    """The context click builds while completing ``forgectl ARGS... <incomplete>``
    (the same helper click's ShellComplete uses)."""
    from click.shell_completion import _resolve_context

    return _resolve_context(cli, {}, "forgectl", list(args))


PARAM = click.Argument(["x"])


@pytest.mark.parametrize("complete", [complete_process_id, complete_attempt_id])
def test_id_completion_is_empty_and_quick_without_a_server(
    complete: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORGE_URL", f"http://127.0.0.1:{free_port()}")
    start = time.monotonic()
    assert complete(_context("logs"), PARAM, "") == []
    assert time.monotonic() - start < DEADLINE + 0.5


def test_id_completion_gives_up_on_a_silent_server(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as listener:  # accepts connections (backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        monkeypatch.setenv("FORGE_URL", f"http://127.0.0.1:{listener.getsockname()[1]}")
        start = time.monotonic()
        assert complete_process_id(_context("logs"), PARAM, "") == []
        assert time.monotonic() - start < DEADLINE + 0.5


def test_id_completion_is_empty_for_a_bad_url(capsys: pytest.CaptureFixture[str]) -> None:
    ctx = _context("--server", "::not a url::", "logs")
    assert complete_process_id(ctx, PARAM, "") == []
    assert capsys.readouterr() == ("", "")


ATTEMPTS = [
    {"id": "1b779220-aaaa", "branch": "forge/1b77-x", "created_at": "2026-11-26T08:06:58Z"},
    {"id": "2c880331-bbbb", "branch": "forge/2c88-y", "created_at": "2026-11-26T09:00:00Z"},
]
PROCESSES = {
    "1b779220-aaaa": [
        {"id": "a1dd-setup", "run_reason": "setupscript", "status": "completed"},
        {"id": "69e3-agent", "run_reason": "codingagent", "status": "failed"},
    ],
    "2c880331-bbbb": [{"id": "a2ee-dev", "run_reason": "devserver", "status": "running"}],
}


@pytest.fixture
def rest_server() -> Iterator[str]:
    """A loopback stand-in for the real server's REST listings (same envelope)."""
    import json
    from urllib.parse import parse_qs, urlsplit

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/api/task-attempts":
                data: Any = ATTEMPTS
            elif url.path == "/api/execution-processes":
                attempt = parse_qs(url.query).get("task_attempt_id", [""])[0]
                data = PROCESSES.get(attempt, [])
            else:
                self.send_error(404)
                return
            body = json.dumps({"success": True, "data": data, "message": None}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_id_completion_lists_the_servers_ids(rest_server: str) -> None:
    ctx = _context("--server", rest_server, "diff")
    attempts = complete_attempt_id(ctx, PARAM, "")
    assert [item.value for item in attempts] == ["2c880331-bbbb", "1b779220-aaaa"]
    assert [i.value for i in complete_attempt_id(ctx, PARAM, "1b")] == ["1b779220-aaaa"]
    processes = complete_process_id(_context("logs", "--server", rest_server), PARAM, "")
    assert {item.value for item in processes} == {"a1dd-setup", "69e3-agent", "a2ee-dev"}
    assert [i.value for i in complete_process_id(ctx, PARAM, "69")] == ["69e3-agent"]


def test_id_completion_skips_the_documented_api(rest_server: str) -> None:
    ctx = _context("--server", rest_server, "--api", "documented", "diff")
    assert complete_attempt_id(ctx, PARAM, "") == []
