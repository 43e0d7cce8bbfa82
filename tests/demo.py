"""The demo behind ``bash tests/demo.sh``: forgectl against a real Forge server.

Runs inside a private network namespace (demo.sh arranges it); talks to 127.0.0.1 only.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agents import AgentBed, claude
from forge_server import ForgeServer

SETUP = (
    "echo 'installing dependencies...'; sleep 0.5; "
    'for i in 1 2 3 4 5; do echo "step $i/5: compiling module_$i"; sleep 0.4; done; '
    "echo 'warning: 1 deprecated API' >&2; echo 'setup done'"
)
#: The coding agent: a scripted Claude Code session (tests/agents), no model, no network.
SESSION = claude.Session(
    turns=[
        claude.Turn([claude.Text("I'll run the tests first.")]),
        claude.Turn(
            [
                claude.Tool(
                    "Bash",
                    {"command": "pytest -q", "description": "Run tests"},
                    "F.\nFAILED test_greet.py::test_name\n1 failed, 1 passed in 0.03s",
                    is_error=True,
                    runs_for=0.4,
                )
            ]
        ),
        claude.Turn(
            [
                claude.Text("The greeting misses the name. Fixing it."),
                claude.Tool(
                    "Edit",
                    {
                        "file_path": "greet.py",
                        "old_string": 'return "Hello!"\n',
                        "new_string": 'return f"Hello, {name}!"\n',
                    },
                    "ok",
                ),
            ]
        ),
        claude.Turn([claude.Tool("Bash", {"command": "pytest -q"}, "..\n2 passed in 0.02s")]),
        claude.Turn([claude.Text("All tests pass now.")]),
    ]
)
DEV = 'i=0; while true; do echo "dev server: request $i served"; i=$((i+1)); sleep 0.3; done'


def banner(text: str) -> None:
    print(f"\n\033[1m$ {text}\033[0m" if sys.stdout.isatty() else f"\n$ {text}", flush=True)


def forgectl(server: str, *args: str) -> int:
    command = ["forgectl", "-s", server, *args]
    banner(shlex.join(["forgectl", *args]))
    return subprocess.call(command)


def main() -> int:
    bed = AgentBed(Path(tempfile.mkdtemp(prefix="forgectl-demo-")))
    marker = bed.add(claude.script(SESSION), "demo")
    with ForgeServer(path_prefix=[bed.bin_dir]) as server:
        url = server.url
        print(f"Forge {url} (private network namespace, analytics off)", flush=True)
        repo = server.make_repo("demo")
        project = server.create_project("demo", repo, setup_script=SETUP, dev_script=DEV)
        task = server.create_task(project["id"], "Add a greeting", f"Scripted agent {marker}")
        attempt = server.create_attempt(task["id"])["id"]
        setup = server.wait_for_process(attempt, "setupscript", {"running", "completed", "failed"})

        banner(f"forgectl monitor --attempt {attempt} &")
        monitor = subprocess.Popen(  # a group of its own, as a shell's `&` job
            ["forgectl", "-s", url, "monitor", "--attempt", attempt, "--history"],
            process_group=0,
        )
        try:
            time.sleep(0.5)

            status = forgectl(url, "logs", setup["id"], "--follow", "--exit-status")
            print(f"(exit status {status}: the setup script's own)", flush=True)
            forgectl(url, "logs", setup["id"], "--raw")
            agent = server.wait_for_process(
                attempt, "codingagent", {"running", "completed", "failed"}
            )
            status = forgectl(url, "logs", agent["id"], "--follow", "--exit-status")
            print(f"(exit status {status}: the coding agent's own)", flush=True)

            worktree = server.attempt_worktree(attempt)
            (worktree / "README.md").write_text("hello\nHello from the demo!\n")
            (worktree / "greet.py").write_text('def greet(name):\n    return f"Hello, {name}!"\n')
            time.sleep(0.5)
            forgectl(url, "diff", attempt)
            forgectl(url, "diff", attempt, "--stat")
            banner(f"forgectl diff {attempt} --json | jq '{{filesChanged, insertions, deletions}}'")
            diff = subprocess.run(
                ["forgectl", "-s", url, "diff", attempt, "--json"], capture_output=True, check=False
            )
            subprocess.run(
                ["jq", "-c", "{filesChanged, insertions, deletions}"],
                input=diff.stdout,
                check=False,
            )

            server.start_dev_server(attempt)
            dev = server.wait_for_process(attempt, "devserver", {"running"})
            time.sleep(1.2)
            forgectl(url, "logs", dev["id"], "--raw", "--timestamps")
            server.stop_process(dev["id"])
            time.sleep(1.0)
            forgectl(url, "ps", "--attempt", attempt)
            forgectl(url, "logs", "--attempt", attempt[:8], "--raw", "--tail", "3")

        finally:  # Ctrl-C reaches the demo's group, not the monitor's
            if monitor.poll() is None:
                monitor.send_signal(signal.SIGINT)
        code = monitor.wait(timeout=5)
        how = f"died by signal {-code}" if code < 0 else f"exit {code}"
        print(f"(monitor stopped with Ctrl-C: {how}, as a shell sees 130)", flush=True)
    print("\nForge server stopped.", flush=True)
    return 0


if __name__ == "__main__":
    if sys.stdout.isatty():
        os.environ.setdefault("FORCE_COLOR", "1")
    sys.exit(main())
