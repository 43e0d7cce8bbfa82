"""How often ``forgectl monitor`` (the real server's event stream) reports a dev
server started a moment after it connected, against a raw SSE reader beside it.

    unshare -rn sh -c 'ip link set lo up && exec .venv/bin/python tests/measure_monitor_starts.py --rounds 12'

Each round: a raw reader of /api/events and ``forgectl monitor --json`` connect; a
dev server starts as soon as forgectl's connection is up, runs 0.3 s and is stopped.
A round counts when forgectl printed the process's start and end; the raw reader
says whether the server sent anything about it at all.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from forge_bed import established
from forge_server import TERMINAL_STATUSES, ForgeServer
from support import EXE


def read_events(port: int, lines: list[str], stop: threading.Event) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", "/api/events")
    response = conn.getresponse()
    while not stop.is_set():
        line = response.fp.readline()
        if not line:
            break
        lines.append(line.decode(errors="replace"))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    reported = 0
    with ForgeServer() as server:
        repo = server.make_repo("starts")
        project = server.create_project(
            "starts", repo, setup_script="exit 3", dev_script="sleep 30"
        )
        task = server.create_task(project["id"], "starts")
        attempt = server.create_attempt(task["id"])["id"]
        server.wait_for_process(attempt, "setupscript", TERMINAL_STATUSES, 20)
        for n in range(args.rounds):
            raw: list[str] = []
            stop = threading.Event()
            threading.Thread(target=read_events, args=(server.port, raw, stop), daemon=True).start()
            monitor = subprocess.Popen(
                [EXE, "-s", server.url, "monitor", "--json"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            deadline = time.monotonic() + 20
            while not established(monitor.pid, server.port) and time.monotonic() < deadline:
                time.sleep(0.01)
            before = {p["id"] for p in server.list_processes(attempt)}
            server.start_dev_server(attempt)
            dev = server.wait_for_process(attempt, "devserver", {"running"}, exclude_ids=before)
            time.sleep(0.3)
            server.stop_process(dev["id"])
            time.sleep(2.0)
            monitor.send_signal(signal.SIGINT)
            out, _ = monitor.communicate(timeout=10)
            stop.set()
            events = [json.loads(line) for line in out.splitlines() if line.strip()]
            mine = [e["type"] for e in events if e.get("processId") == dev["id"]]
            sent = sum(dev["id"] in line for line in raw)
            reported += mine[:1] == ["process_started"] and len(mine) == 2
            print(
                f"round {n}: forgectl printed {mine}; the server sent {sent} ops of it", flush=True
            )
    print(f"forgectl reported {reported}/{args.rounds} dev servers started after it connected")
    return 0 if reported == args.rounds else 1


if __name__ == "__main__":
    sys.exit(main())
