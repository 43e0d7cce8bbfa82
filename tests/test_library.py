"""The library the CLI stands on, against the documented reference server.

Each library call is compared with what the CLI prints for the same request
(the CLI is wiring over these calls, so they must agree) and with the server's
own state. The real binary's side is in tests/test_library_forge.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
import support
from keyring_backends import MemoryKeyring
from reference_server import (
    ATTEMPT_ID,
    PROC_FINISHED,
    PROC_LIVE,
    PROC_RAW,
    ReferenceServer,
    ThreadedReferenceServer,
    default_scenario,
)

from forgectl import ForgeClient
from forgectl.constants import MAX_MESSAGE_SIZE
from forgectl.credentials import keyring_set
from forgectl.errors import (
    ConfigError,
    ExitCode,
    FatalConnectError,
    Hint,
    InvalidValue,
    NotFoundError,
    UsageError,
)
from forgectl.events import LogEntry, ProcessEvent, RawChunk
from forgectl.stream import StreamOptions
from forgectl.transport import Channel, Endpoint, Route, Transport
from forgectl.urls import parse_server

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def srv() -> Iterator[ThreadedReferenceServer]:
    with ThreadedReferenceServer(scenario=default_scenario()) as server:
        yield server


def cli_json(url: str, *args: str) -> list[dict[str, object]]:
    result = support.invoke(url, *args, "--json")
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


# -- stream_logs: the filters of `logs` -------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "flags"),
    [
        ({"level": "warn"}, ["--level", "warn"]),
        ({"level": "warning"}, ["--level", "warning"]),
        ({"level": ["error", "success"]}, ["--level", "error,success"]),
        ({"grep": "test|Dep"}, ["--grep", "test|Dep"]),
        ({"source": "exec*"}, ["--source", "exec*"]),
        ({"since": "2024-01-15T10:31:00Z"}, ["--since", "2024-01-15T10:31:00Z"]),
        ({"tail": 2}, ["--tail", "2"]),
        ({"tail": 0}, ["--tail", "0"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
async def test_stream_logs_filters_as_the_cli_does(
    srv: ThreadedReferenceServer, kwargs: dict[str, object], flags: list[str]
) -> None:
    async with ForgeClient(server=srv.url) as forge:
        got = [
            log.to_dict()
            async for log in forge.processes.stream_logs(PROC_FINISHED, follow=False, **kwargs)  # type: ignore[call-overload]
        ]
    printed = await asyncio.to_thread(cli_json, srv.url, "logs", PROC_FINISHED, *flags)
    assert got == printed
    everything = srv.processes[PROC_FINISHED].logs
    assert all(entry in everything for entry in got)
    if "source" not in kwargs:  # every entry of the scenario is the executor's
        assert len(got) < len(everything)
    assert got or kwargs == {"tail": 0}


async def test_stream_logs_filters_mean_what_they_say(srv: ThreadedReferenceServer) -> None:
    async with ForgeClient(server=srv.url) as forge:
        warn = [e async for e in forge.processes.stream_logs(PROC_FINISHED, level="warn")]
        last = [e async for e in forge.processes.stream_logs(PROC_FINISHED, tail=1)]
    assert [e.level for e in warn] == ["warn", "error"]
    assert [e.message for e in last] == [srv.processes[PROC_FINISHED].logs[-1]["message"]]


async def test_raw_chunks_keep_bytes_and_grep_whole_lines(srv: ThreadedReferenceServer) -> None:
    async with ForgeClient(server=srv.url) as forge:
        chunks = [c async for c in forge.processes.stream_logs(PROC_RAW, "raw", grep="✓")]
    assert all(isinstance(c, RawChunk) for c in chunks)
    proc = srv.processes[PROC_RAW]
    lines = [line for line in [*proc.raw, *proc.live_raw] if "✓" in line]
    assert b"".join(c.raw for c in chunks) == "".join(f"{line}\n" for line in lines).encode()


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"since": "soon"}, "since"),
        ({"level": "loud"}, "level"),
        ({"grep": "("}, "grep"),
        ({"tail": -1}, "tail"),
    ],
)
def test_bad_filter_values_name_the_parameter(kwargs: dict[str, object], param: str) -> None:
    forge = ForgeClient(server="http://127.0.0.1:9")
    with pytest.raises(InvalidValue) as info:
        forge.processes.stream_logs(PROC_FINISHED, **kwargs)  # type: ignore[call-overload]
    assert info.value.param == param and info.value.exit_code == ExitCode.USAGE
    assert "--" not in str(info.value)  # facts for a Python caller, not flags


def test_raw_output_has_no_levels() -> None:
    forge = ForgeClient(server="http://127.0.0.1:9")
    with pytest.raises(UsageError, match="normalized"):
        forge.processes.stream_logs(PROC_RAW, "raw", level="warn")  # type: ignore[call-overload]


# -- monitor and wait -------------------------------------------------------------------


async def test_monitor_types_filter(srv: ThreadedReferenceServer) -> None:
    forge = ForgeClient(server=srv.url)
    async with forge, forge.processes.monitor(types=["process_completed"]) as events:
        first = await anext(events)
    assert first.to_dict() == next(e for e in srv.events if e["type"] == "process_completed")
    assert first.duration == 900000 and first.stats == {
        "filesChanged": 8,
        "linesAdded": 245,
        "linesRemoved": 12,
    }


async def test_monitor_until_idle_ends_by_itself(srv: ThreadedReferenceServer) -> None:
    """The scenario's process starts, then ends: once the history is in and nothing
    runs, the iteration ends (status 0), as `monitor --until-idle` exits 0."""
    async with ForgeClient(server=srv.url, options=StreamOptions(settle=0.2)) as forge:
        events = forge.processes.monitor(until_idle=True)
        got = [e async for e in events]
    assert events.status == 0
    assert [e.to_dict() for e in got] == srv.events[: len(got)]
    assert got[0].type == "process_started"
    assert any(e.is_terminal for e in got)
    args = ["monitor", "--until-idle", "--settle", "0.2"]
    result = await asyncio.to_thread(support.invoke, srv, *args)
    assert result.exit_code == 0, result.stderr


async def test_wait_returns_what_exit_status_exits_with(srv: ThreadedReferenceServer) -> None:
    async with ForgeClient(server=srv.url) as forge:
        code = await asyncio.wait_for(forge.processes.wait(PROC_FINISHED), 10)
    first_end = next(e for e in srv.events if e["type"] in ("process_completed", "process_failed"))
    assert code == first_end["exitCode"] == 0
    result = await asyncio.to_thread(
        support.invoke, srv, "monitor", "--process", PROC_FINISHED, "--exit-status"
    )
    assert result.exit_code == code, result.stderr
    srv.wait_all_done()
    assert all((rec.closed_by, rec.close_code) == ("client", 1000) for rec in srv.accepted)


async def test_wait_gives_a_failure_its_status(srv: ThreadedReferenceServer) -> None:
    srv.events[:] = [
        {"type": "process_started", "processId": "p9", "taskAttemptId": "a", "executor": "X"},
        {"type": "process_failed", "processId": "p9", "exitCode": 256, "error": {"code": "E"}},
    ]
    async with ForgeClient(server=srv.url) as forge:
        code = await asyncio.wait_for(forge.processes.wait("p9"), 10)
    assert code == int(ExitCode.PROCESS_FAILED)  # 256 wraps to 0, and a failure is never 0


# -- the async context manager and the client's life ---------------------------------


async def test_async_with_closes_the_socket_when_the_block_ends() -> None:
    scenario = default_scenario(live_interval=5)
    async with ReferenceServer(scenario=scenario) as srv, ForgeClient(server=srv.url) as forge:
        async with forge.processes.stream_logs(PROC_LIVE) as logs:
            first = await anext(logs)
            (rec,) = srv.accepted
            assert not rec.done  # live: the process has not ended
        # The block ended: a normal close, while the client is still open.
        await srv.wait_all_done()
        assert (rec.closed_by, rec.close_code) == ("client", 1000)
        assert isinstance(first, LogEntry)
        again = [e async for e in forge.processes.stream_logs(PROC_FINISHED)]
    assert len(again) == len(srv.processes[PROC_FINISHED].logs)


def test_the_constructor_does_no_io(isolated_env: Path) -> None:
    """A broken config file is found on first use, not by the constructor."""
    config = isolated_env / "config" / "forgectl" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[profiles\n")
    forge = ForgeClient()
    assert forge.settings is None
    with pytest.raises(ConfigError, match="invalid TOML"):
        asyncio.run(forge.resolve())


class SlowKeyring(MemoryKeyring):
    """A real keyring backend that answers only once released (an unlock dialog)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.threads: list[int] = []

    def get_password(self, service: str, username: str) -> str | None:
        self.threads.append(threading.get_ident())
        self.release.wait(10)
        return super().get_password(service, username)


async def test_the_keyring_is_asked_off_the_event_loop(srv: ThreadedReferenceServer) -> None:
    import keyring

    backend = SlowKeyring()
    keyring.set_keyring(backend)
    keyring_set(parse_server(srv.url).url, "tok-from-keyring")  # stored and indexed
    forge = ForgeClient(server=srv.url)
    resolving = asyncio.ensure_future(forge.resolve())
    ticks = 0
    while not backend.threads:  # the loop keeps running while the keyring is asked
        ticks += 1
        await asyncio.sleep(0.001)
    assert ticks > 0 and backend.threads[0] != threading.get_ident()
    assert not resolving.done()
    backend.release.set()
    settings = await resolving
    assert (settings.token, settings.token_source) == ("tok-from-keyring", "keyring")
    async with forge:
        logs = [e async for e in forge.processes.stream_logs(PROC_FINISHED)]
    assert logs and srv.accepted[-1].token == "tok-from-keyring"


# -- an injected transport carries every connection -----------------------------------


class Recording(Transport):
    """The default network stack, recording what passes through it."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[str] = []
        self.gets: list[str] = []

    async def open(
        self,
        endpoint: Endpoint,
        route: Route,
        *,
        what: str,
        max_size: int = MAX_MESSAGE_SIZE,
        trace: Callable[[str], None] | None = None,
    ) -> Channel:
        self.opened.append(route.path)
        return await super().open(endpoint, route, what=what, max_size=max_size, trace=trace)

    async def get(
        self,
        endpoint: Endpoint,
        path: str,
        query: dict[str, str] | None = None,
        *,
        what: str = "resource",
        timeout: float | None = None,
    ) -> tuple[int, str, bytes]:
        self.gets.append(path)
        return await super().get(endpoint, path, query, what=what, timeout=timeout)


async def test_an_injected_transport_opens_the_streams(srv: ThreadedReferenceServer) -> None:
    transport = Recording()
    async with ForgeClient(server=srv.url, transport=transport) as forge:
        logs = [e async for e in forge.processes.stream_logs(PROC_FINISHED)]
        diffs = [d async for d in forge.attempts.stream_diff(ATTEMPT_ID, follow=False)]
    assert logs and diffs
    assert transport.opened == [
        f"/ws/execution-processes/{PROC_FINISHED}/logs/normalized",
        f"/ws/task-attempts/{ATTEMPT_ID}/diff",
    ]


# -- errors carry facts; the CLI phrases the advice ------------------------------------


async def test_not_found_carries_url_and_status(srv: ThreadedReferenceServer) -> None:
    async with ForgeClient(server=srv.url, api="documented") as forge:
        with pytest.raises(NotFoundError) as info:
            async for _ in forge.processes.stream_logs("proc_nope"):
                pass
    assert info.value.status == 404
    assert info.value.url is not None and "/ws/execution-processes/proc_nope/" in info.value.url


@pytest.fixture(scope="module")
def untrusted_tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A loopback TLS server with a self-signed certificate nobody trusts."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a certificate (tests/bootstrap.sh installs it)")
    where = tmp_path_factory.mktemp("tls")
    key, cert = where / "key.pem", where / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                context.wrap_socket(conn, server_side=True).close()
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        stop.set()
        thread.join(2)
        listener.close()


async def test_an_untrusted_certificate_is_a_fact_and_a_hint(untrusted_tls_server: str) -> None:
    async with ForgeClient(server=untrusted_tls_server, api="documented") as forge:
        with pytest.raises(FatalConnectError) as info:
            async for _ in forge.processes.stream_logs(PROC_FINISHED):
                pass
    error = info.value
    assert error.hint is Hint.TRUST and error.exit_code == ExitCode.CONNECT
    assert "certificate" in str(error) and "--cacert" not in str(error)
    exe = Path(sys.executable).with_name("forgectl")
    done = await asyncio.to_thread(
        subprocess.run,
        [str(exe), "-s", untrusted_tls_server, "--api", "documented", "logs", PROC_FINISHED],
        capture_output=True,
        text=True,
        timeout=30,
        env=os.environ.copy(),
    )
    assert done.returncode == ExitCode.CONNECT
    line = done.stderr.strip()
    assert line.startswith("forgectl: error: cannot connect to wss://127.0.0.1:")
    assert "certificate not trusted" in line and line.endswith("use --cacert FILE or --insecure")


def test_exit_codes_carry_their_meaning() -> None:
    assert ExitCode.CONNECT.meaning.startswith("cannot connect")
    assert ExitCode.CONNECT.label == "cannot connect"
    assert [m for m in ExitCode if m.exit_status_only] == [
        ExitCode.STATUS_UNKNOWN,
        ExitCode.PROCESS_FAILED,
        ExitCode.PROCESS_STOPPED,
    ]
    summary = ExitCode.summary()
    for member in ExitCode:
        assert f"{int(member)} {member.label}" in summary
    help_text = " ".join(support.invoke(None, "--help").output.split())
    assert summary in help_text


def test_events_have_typed_fields_only() -> None:
    entry = LogEntry({"level": "warn", "message": "m", "extra": 1})
    with pytest.raises(AttributeError):
        entry.mesage  # type: ignore[attr-defined]  # noqa: B018
    assert entry.get("extra") == 1
    event = ProcessEvent({"type": "process_stopped", "processId": "p", "reason": "killed"})
    assert (event.reason, event.stopped_at, event.exit_code) == ("killed", None, None)
    assert orjson.loads(orjson.dumps(event.to_dict())) == event.to_dict()


async def test_outcome_says_how_a_process_ended(srv: ThreadedReferenceServer) -> None:
    srv.events[:] = [
        {"type": "process_started", "processId": "p7", "startedAt": "2026-12-01T10:00:00Z"},
        {"type": "process_failed", "processId": "p7", "exitCode": 2,
         "failedAt": "2026-12-01T10:01:05.5Z", "error": {"code": "E"}},
        {"type": "process_stopped", "processId": "p8", "reason": "killed", "duration": 1500},
    ]  # fmt: skip
    async with ForgeClient(server=srv.url) as forge:
        failed = await asyncio.wait_for(forge.processes.outcome("p7"), 10)
        stopped = await asyncio.wait_for(forge.processes.outcome("p8"), 10)
    assert failed.exit_status == 2
    assert failed.seconds == 65.5  # no duration sent: from its start and end times
    assert failed.describe() == "failed, exit code 2, after 1 min 05 s"
    assert stopped.describe() == "stopped (killed), after 1.5 s"
    assert stopped.exit_status == int(ExitCode.PROCESS_STOPPED)
