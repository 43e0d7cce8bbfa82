"""A hostile server cannot write to the terminal.

Every text a server controls and forgectl shows (error pages, close reasons, JSON
keys, run reasons, REST messages, garbage status lines; log entries in pretty
output) reaches stderr or stdout escaped. Raw output on a terminal (a real
pseudo-terminal here) keeps colours, ``\\r`` and line erase, loses the rest;
into a file it stays byte for byte what the process wrote.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
from pathlib import Path

import pytest
from hostile import (
    EVIL,
    EVIL_SHOWN,
    HEALTH,
    Frames,
    HostileServer,
    Http,
    RawServer,
    clean_env,
    forgectl,
    inert,
    patches,
    rest,
)
from support import EXE

from forgectl.errors import ExitCode

pytestmark = pytest.mark.timeout(60)

PROC = "p1"
LOGS = f"/ws/execution-processes/{PROC}/logs/normalized"
RAW = f"/ws/execution-processes/{PROC}/logs/raw"
FORGE_RECORD = f"/api/execution-processes/{PROC}"
FORGE_NORMALIZED = f"/api/execution-processes/{PROC}/normalized-logs/ws"
FORGE_RAW = f"/api/execution-processes/{PROC}/raw-logs/ws"


def assert_shown_inert(stderr: str) -> None:
    """The hostile text reached stderr (escaped), and nothing in stderr can act."""
    assert inert(stderr) is None, (inert(stderr), stderr)
    assert EVIL_SHOWN in stderr, stderr
    # Its newline did not become a line of forgectl's own.
    assert not any(line.startswith("forgectl: note: all good") for line in stderr.splitlines())
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, ExitCode.CONNECT), (400, ExitCode.USAGE), (418, ExitCode.PROTOCOL)],
)
def test_an_http_error_body_is_escaped(status: int, code: ExitCode) -> None:
    with HostileServer({LOGS: Http(status, EVIL)}) as srv:
        run = forgectl("-s", srv.url, "--api", "documented", "logs", PROC, "--no-reconnect")
    assert run.code == code, run.stderr
    assert_shown_inert(run.stderr)


def test_a_close_reason_is_escaped() -> None:
    with HostileServer({LOGS: Frames(code=4000, reason=EVIL[:100])}) as srv:
        run = forgectl("-s", srv.url, "--api", "documented", "logs", PROC, "--no-reconnect")
    assert run.code == ExitCode.CONNECT, run.stderr
    assert "code 4000" in run.stderr
    assert inert(run.stderr) is None, run.stderr
    assert EVIL_SHOWN in run.stderr


def test_a_reconnect_note_with_a_close_reason_is_escaped() -> None:
    with HostileServer({LOGS: Frames(code=4000, reason=EVIL[:100])}) as srv:
        run = forgectl("-s", srv.url, "--api", "documented", "logs", PROC, "--retry-for", "1.5")
    assert run.code == ExitCode.CONNECT, run.stderr
    assert "reconnecting in" in run.stderr
    assert inert(run.stderr) is None, run.stderr
    assert EVIL_SHOWN in run.stderr


def test_json_keys_of_an_unexpected_message_are_escaped() -> None:
    hostile = "{" + _json_string(EVIL) + ": 1}"
    good = '{"level": "info", "message": "fine"}'
    with HostileServer({LOGS: Frames([hostile, good])}) as srv:
        run = forgectl("-s", srv.url, "--api", "documented", "logs", PROC, "-vv")
    assert run.code == 0, run.stderr
    assert b'"message":"fine"' in run.stdout  # nothing valid lost
    assert "unexpected log message" in run.stderr
    assert_shown_inert(run.stderr)


def test_json_keys_of_an_unexpected_patch_frame_are_escaped() -> None:
    frames = patches("ok\n")
    frames.frames.insert(0, "{" + _json_string(EVIL) + ": 1}")
    with HostileServer({"/api/health": HEALTH, FORGE_RAW: frames}) as srv:
        run = forgectl("-s", srv.url, "--api", "forge", "logs", PROC, "--raw")
    assert run.code == 0, run.stderr
    assert run.stdout == b"ok\n"
    assert "unexpected message" in run.stderr
    assert_shown_inert(run.stderr)


def forge_script_server(record: Http) -> HostileServer:
    """A real-server look-alike where the process has no normalized stream (404),
    so forgectl asks REST what it is and shows its raw output instead."""
    return HostileServer(
        {
            "/api/health": HEALTH,
            FORGE_RECORD: record,
            FORGE_RAW: patches("script output\n"),
        }
    )


def test_the_run_reason_in_the_no_normalized_note_is_escaped() -> None:
    with forge_script_server(rest({"id": PROC, "run_reason": EVIL})) as srv:
        run = forgectl("-s", srv.url, "--api", "forge", "logs", PROC)
    assert run.code == 0, run.stderr
    assert b"script output" in run.stdout
    assert "has no normalized log stream" in run.stderr
    assert_shown_inert(run.stderr)
    assert srv.paths().count(FORGE_NORMALIZED) == 1


def test_a_rest_failure_message_is_escaped_and_is_a_protocol_error() -> None:
    with forge_script_server(rest(None, success=False, message=EVIL)) as srv:
        run = forgectl("-s", srv.url, "--api", "forge", "logs", PROC)
    assert run.code == ExitCode.PROTOCOL, run.stderr  # not 1: not a bug of forgectl's
    assert "the server reported a failure" in run.stderr
    assert_shown_inert(run.stderr)


def test_a_garbage_status_line_is_escaped() -> None:
    answer = f"HTTP/1.1 200 {EVIL.replace(chr(10), ' ')}\r\n\r\n".encode()
    with RawServer(answer) as srv:
        run = forgectl("-s", srv.url, "--api", "documented", "logs", PROC, "--no-reconnect")
    assert run.code == ExitCode.CONNECT, run.stderr
    assert "bad handshake" in run.stderr
    assert inert(run.stderr) is None, run.stderr
    assert "\\x1b]0;PWNED-TITLE" in run.stderr


def test_pretty_output_escapes_what_the_server_logs() -> None:
    entry = '{"level": "error", "message": ' + _json_string(EVIL) + ', "source": "x"}'
    with HostileServer({LOGS: Frames([entry])}) as srv:
        run = forgectl("-s", srv.url, "--api", "documented", "logs", PROC, "--pretty")
    assert run.code == 0, run.stderr
    assert inert(run.out) is None, run.out
    assert EVIL_SHOWN in run.out


def _json_string(text: str) -> str:
    import json

    return json.dumps(text)


# -- raw output on a terminal ------------------------------------------------------------

#: What a build prints: colours, a progress bar redrawn with \r and erase-line,
#: and, split across chunks, a title change, a clipboard write and a screen clear.
CHUNKS = (
    "\x1b[32mok\x1b[0m start\n",
    "10%\r\x1b[2K50%\r\x1b[2K100%\n",
    "before \x1b]0;PWN",  # an OSC string cut in the middle ...
    "ED-TITLE\x07after\n",  # ... ends in the next chunk
    "\x1b]52;c;Y2xpcA==\x1b\\clip \x1b[",  # a CSI cut after its introducer
    "2Jcleared \x1b[?1049h alt-screen \x1bc reset \x9b6n\n",
    "\x1b[1;31mbold red\x1b[0m \x1b[5Gcol5 \x07bell\n",
)
KEPT = (
    b"\x1b[32mok\x1b[0m start\n"
    b"10%\r\x1b[2K50%\r\x1b[2K100%\n"
    b"before after\n"
    b"clip cleared  alt-screen  reset \n"
    b"\x1b[1;31mbold red\x1b[0m \x1b[5Gcol5 \\x07bell\n"
)
VERBATIM = "".join(CHUNKS).encode()


def raw_server() -> HostileServer:
    return HostileServer({"/api/health": HEALTH, FORGE_RAW: patches(*CHUNKS)})


def on_a_terminal(url: str, *args: str) -> tuple[int, bytes, str]:
    """Run ``forgectl logs --raw`` with stdout on a pseudo-terminal; what the
    terminal received, byte for byte."""
    master, slave = os.openpty()
    try:
        child = subprocess.Popen(
            [EXE, "-s", url, "--api", "forge", "logs", PROC, "--raw", *args],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
            env=clean_env(),
        )
        os.close(slave)
        slave = -1
        seen = bytearray()
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            assert ready, "no output from forgectl within 30 s"
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            seen += data
        _, err = child.communicate(timeout=30)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    # The terminal's line discipline turns \n into \r\n on output.
    return child.returncode, bytes(seen).replace(b"\r\n", b"\n"), err.decode()


def test_raw_on_a_terminal_keeps_colours_and_progress_and_drops_the_rest() -> None:
    assert pty  # a pseudo-terminal is what this test is about
    with raw_server() as srv:
        code, seen, err = on_a_terminal(srv.url)
    assert code == 0, err
    assert seen == KEPT
    assert "--verbatim passes them" in err  # said once, on stderr
    assert err.count("--verbatim") == 1


def test_raw_verbatim_on_a_terminal_passes_every_byte() -> None:
    with raw_server() as srv:
        code, seen, err = on_a_terminal(srv.url, "--verbatim")
    assert code == 0, err
    assert seen == VERBATIM.replace(b"\r\n", b"\n")


def test_raw_into_a_file_is_byte_exact(tmp_path: Path) -> None:
    target = tmp_path / "build.log"
    with raw_server() as srv, target.open("wb") as out:
        run = forgectl("-s", srv.url, "--api", "forge", "logs", PROC, "--raw", stdout=out)
    assert (run.code, run.stderr) == (0, "")
    assert target.read_bytes() == VERBATIM


def test_raw_into_a_pipe_is_byte_exact() -> None:
    with raw_server() as srv:
        run = forgectl("-s", srv.url, "--api", "forge", "logs", PROC, "--raw")
    assert (run.code, run.stderr) == (0, "")
    assert run.stdout == VERBATIM


def test_verbatim_needs_raw() -> None:
    run = forgectl("logs", PROC, "--verbatim")
    assert run.code == ExitCode.USAGE
    assert "--verbatim needs --raw" in run.stderr


# -- the filter itself, split at every byte ----------------------------------------------------


def filtered(data: bytes, cuts: list[int]) -> bytes:
    from forgectl.escape import TerminalFilter

    screen = TerminalFilter()
    out = b""
    for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
        out += screen.feed(data[start:end])
    return out + screen.finish()


def test_the_filter_gives_the_same_bytes_however_the_stream_is_cut() -> None:
    import random

    data = (
        VERBATIM
        + "é ✓ \x1b[38;2;1;2;3mrgb\x1b[0m \x1bP1$r\x1b\\ \x9d8;;x\x9c".encode()
        + b"\xff\xfe"
    )
    whole = filtered(data, [])
    assert whole.startswith(KEPT)
    for cut in range(1, len(data)):
        assert filtered(data, [cut]) == whole, cut
    rng = random.Random(15)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(data)), rng.randint(2, 12)))
        assert filtered(data, cuts) == whole, cuts


def test_the_filter_keeps_text_and_foreign_bytes_exactly() -> None:
    text = "plain ✓ text\twith tabs\r\nand lines\n".encode() + b"latin-1 \xe9t\xe9 \x80 done"
    # Only the lone 0x80 (a C1 control under a Latin-1 terminal) is shown, not sent.
    assert filtered(text, []) == text.replace(b"\x80", b"\\x80")
    assert filtered(b"", []) == b""


def test_an_unterminated_string_is_dropped_without_growing() -> None:
    from forgectl.escape import TerminalFilter

    screen = TerminalFilter()
    assert screen.feed(b"ok \x1b]52;c;") == b"ok "
    for _ in range(100):
        assert screen.feed(b"A" * 65536) == b""  # 6 MiB of clipboard payload, not kept
    assert screen.feed(b"\x07back") == b"back"
    assert screen.removed == 1
