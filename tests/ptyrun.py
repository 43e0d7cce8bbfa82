"""A command whose stdout is a pseudo-terminal: what a person at a terminal would see.

``PtyRun(argv)`` starts ``argv`` with its stdout on a new pty (``isatty()`` is true, so
forgectl picks pretty output by itself; the window is ``columns`` wide) and stderr on
a pipe; a thread collects both until the command exits. ``text`` is the screen's
bytes as text, ``\\r\\n`` turned back into ``\\n`` (the pty's line discipline adds the
``\\r``).
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Mapping, Sequence


class PtyRun:
    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        columns: int = 120,
        rows: int = 50,
    ) -> None:
        self.argv = list(argv)
        leader, follower = os.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        environ = dict(os.environ if env is None else env)
        environ.update({"COLUMNS": str(columns), "LINES": str(rows), "TERM": "xterm-256color"})
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=subprocess.PIPE,
            env=environ,
        )
        os.close(follower)
        self._leader = leader
        self._out = bytearray()
        self._err = bytearray()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._pump_pty, daemon=True),
            threading.Thread(target=self._pump_err, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _pump_pty(self) -> None:
        while True:
            try:
                data = os.read(self._leader, 65536)
            except OSError:  # EIO: the last holder of the follower side closed it
                break
            if not data:
                break
            with self._lock:
                self._out += data
        os.close(self._leader)

    def _pump_err(self) -> None:
        stderr = self.proc.stderr
        assert stderr is not None
        fd = stderr.fileno()
        while chunk := os.read(fd, 65536):
            with self._lock:
                self._err += chunk

    @property
    def text(self) -> str:
        with self._lock:
            return self._out.decode("utf-8", "replace").replace("\r\n", "\n")

    @property
    def stderr(self) -> str:
        with self._lock:
            return self._err.decode("utf-8", "replace")

    def wait_for(self, pred: Callable[[str], bool], timeout: float, what: str) -> str:
        """Until ``pred(self.text)``; the text then."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text
            if pred(text):
                return text
            ended = self.proc.poll() is not None
            if ended:
                for thread in self._threads:
                    thread.join(10)
                if pred(self.text):
                    return self.text
            if ended or time.monotonic() > deadline:
                why = f"exit {self.proc.returncode}" if ended else f"{timeout} s"
                raise AssertionError(
                    f"{what}: not on the screen ({why}); screen:\n{self.text}\n"
                    f"stderr:\n{self.stderr}"
                )
            time.sleep(0.02)

    def wait(self, timeout: float) -> int | None:
        """The exit status (every byte read by then), or None if still running."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for thread in self._threads:
            thread.join(10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait(10)
