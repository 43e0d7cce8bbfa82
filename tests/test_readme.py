"""The README's examples, run as a user would, against the documented reference server.

Every ``forgectl`` command line of the README's shell examples runs through a real
shell (so the ``| jq`` pipelines run too, where jq is installed), with the README's
placeholder ids replaced by the reference server's. Commands that follow a live
stream forever are stopped with Ctrl-C after a moment: forgectl dies by SIGINT (the
shell reports 130 for a pipeline; a lone command is exec'd, so the signal shows).
The Python API example runs too.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from reference_server import (
    ATTEMPT_ID,
    PROC_FINISHED,
    SPEC_PROCESS_STARTED,
    ThreadedReferenceServer,
    default_scenario,
)

README = Path(__file__).resolve().parent.parent / "README.md"
FORGECTL = Path(sys.executable).with_name("forgectl")
IDS = {"3f2a…": PROC_FINISHED, "8c1e…": ATTEMPT_ID}
#: The scenario's diffs are attempt_abc123's; its process events (which monitor,
#: ps and logs --attempt read), another attempt's.
MONITOR_IDS = {**IDS, "8c1e…": str(SPEC_PROCESS_STARTED["taskAttemptId"])}
#: Examples that need what this module's reference server cannot give, and the test
#: that runs them (test_examples_run_elsewhere checks that it exists and names them).
ELSEWHERE = {
    "# hidden prompt": "test_login_cli.py::test_login_prompts_on_the_terminal_without_echo",
    "# real server": "test_agent_sessions.py::readme_recipes",
}
SERVER = "https://forge.example.com"
#: Examples that follow a live stream until interrupted.
FOREVER = ("forgectl monitor", "--follow --json", "-f --tail")


def _shell_examples() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.S)
    lines = []
    for block in blocks:
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            if any(marker in line for marker in ELSEWHERE):
                continue
            if command.startswith(("forgectl ", "echo ")) and "forgectl" in command:
                lines.append(command)
    return lines


EXAMPLES = _shell_examples()


#: The spec's example diff is an excerpt (a hunk cut short); the README pipes the
#: diff into ``git apply``, so this module's attempt sends a whole patch.
WHOLE_PATCH = (
    "diff --git a/src/auth.ts b/src/auth.ts\nnew file mode 100644\nindex 0000000..def4567\n"
    "--- /dev/null\n+++ b/src/auth.ts\n@@ -0,0 +1,2 @@\n"
    "+import jwt from 'jsonwebtoken';\n+export const verify = jwt.verify;\n"
)


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedReferenceServer]:
    scenario = default_scenario()
    for update in scenario.attempts[ATTEMPT_ID].diffs:
        update.update(diff=WHOLE_PATCH, filesChanged=1, insertions=2, deletions=0)
    with ThreadedReferenceServer(scenario=scenario) as srv:
        yield srv


def test_examples_run_elsewhere() -> None:
    """The examples left out here are run, by name, by the test ELSEWHERE names."""
    text = README.read_text()
    for marker, where in ELSEWHERE.items():
        assert f"  {marker}" in text, marker
        module, name = where.split("::")
        source = (README.parent / "tests" / module).read_text()
        assert re.search(rf"^def {name}\(", source, re.M), where
    assert "README" in (README.parent / "tests" / "test_agent_sessions.py").read_text()


def test_the_readme_has_examples_for_every_command() -> None:
    for command in ("ps", "logs", "monitor", "diff", "login", "logout", "auth status"):
        assert any(f"forgectl {command}" in line for line in EXAMPLES), command


@pytest.mark.parametrize("example", EXAMPLES)
def test_readme_example(
    example: str, server: ThreadedReferenceServer, tmp_path: Path, isolated_env: Path
) -> None:
    if "| jq" in example and shutil.which("jq") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("jq is not installed (tests/run.sh installs it)")
        pytest.skip("jq is not installed")
    command = example
    events = "monitor" in example or "--attempt" in example
    for placeholder, real in (MONITOR_IDS if events else IDS).items():
        command = command.replace(placeholder, real)
    command = command.replace(SERVER, server.url)
    env = {
        **os.environ,
        "FORGE_URL": server.url,
        "FORGE_CI_TOKEN": "readme-example-token",
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
        "PATH": f"{FORGECTL.parent}{os.pathsep}{os.environ['PATH']}",
    }
    proc = subprocess.Popen(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    forever = any(mark in example for mark in FOREVER) and "--until-idle" not in example
    try:
        out, err = proc.communicate(timeout=2.5 if forever else 30)
    except subprocess.TimeoutExpired:
        assert forever, f"{example!r} did not end by itself"
        _interrupt_forgectl(proc.pid)  # as Ctrl-C would, but jq must live to flush
        out, err = proc.communicate(timeout=5)
        assert proc.returncode in (130, -signal.SIGINT), err.decode()
    else:
        expected = {0}
        if "--exit-status" in example:
            expected = {0, 7}  # the reference server may not report every exit status
        assert proc.returncode in expected, (example, proc.returncode, err.decode())
    assert b"Traceback" not in err and b"error:" not in err, err.decode()
    if "git apply --stat" in example:
        assert re.search(r"src/auth.ts \| +2 \+\+", out.decode()), out.decode()
    selective = ("--since", "--grep", "--level", "--status", "--run-reason", "login", "logout", ">")
    if not any(word in example for word in selective):
        assert out.strip(), f"{example!r} printed nothing"


def _interrupt_forgectl(session: int) -> None:
    """SIGINT to the forgectl processes of a shell session (not to jq beside them)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != session:
                continue
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ProcessLookupError):
            continue
        if b"forgectl" in cmdline and not cmdline.startswith(b"bash"):
            os.kill(int(entry.name), signal.SIGINT)


def test_readme_python_example(server: ThreadedReferenceServer, tmp_path: Path) -> None:
    block = re.search(r"```python\n(import asyncio.*?)```", README.read_text(), re.S)
    assert block is not None
    script = tmp_path / "example.py"
    script.write_text(block.group(1).replace('"proc_abc123"', f'"{PROC_FINISHED}"'))
    env = {**os.environ, "FORGE_URL": server.url}
    proc = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"[info]" in proc.stdout and b"completed" in proc.stdout
