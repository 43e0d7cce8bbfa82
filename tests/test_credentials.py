"""Token storage: keyring (with a timeout), the plain-text file, and resolution order."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail
from keyring_backends import HangingKeyring, MemoryKeyring

from forgectl import credentials
from forgectl.constants import KEYRING_SERVICE
from forgectl.credentials import KeyringUnavailable
from forgectl.diagnostics import Diagnostics
from forgectl.errors import ExitCode, UsageError
from forgectl.settings import check_cacert, plaintext_warning, resolve
from forgectl.urls import parse_server

URL = "http://127.0.0.1:8887"
TOKEN = "tok-SECRET-9f3b2c"


class Lines:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, level: str, line: str) -> None:
        self.lines.append((level, line))

    @property
    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)


@pytest.fixture
def hanging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FORGECTL_KEYRING_TIMEOUT", "0.2")
    HangingKeyring.release.clear()
    keyring.set_keyring(HangingKeyring())  # type: ignore[no-untyped-call]
    yield
    HangingKeyring.release.set()


def test_keyring_round_trip_keeps_the_index(memory_keyring: MemoryKeyring) -> None:
    assert not credentials.keyring_indexed(URL)
    credentials.keyring_set(URL, TOKEN)
    assert memory_keyring.entries == {(KEYRING_SERVICE, URL): TOKEN}
    assert credentials.keyring_indexed(URL)
    assert credentials.keyring_get(URL) == TOKEN
    assert TOKEN not in (credentials._dir() / credentials.INDEX_FILE).read_text()
    assert credentials.keyring_delete(URL) is True
    assert credentials.keyring_delete(URL) is False
    assert not credentials.keyring_indexed(URL)


def test_unindexed_server_is_not_looked_up(memory_keyring: MemoryKeyring) -> None:
    memory_keyring.entries[(KEYRING_SERVICE, URL)] = TOKEN  # not put there by login
    assert credentials.stored_token(URL) == (None, None)


def test_fail_backend_is_no_keyring() -> None:
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]
    with pytest.raises(KeyringUnavailable) as info:
        credentials.keyring_set(URL, TOKEN)
    message = str(info.value)
    assert "\n" not in message
    assert "FORGE_TOKEN" in message
    assert "forgectl login --insecure-storage" in message
    assert info.value.exit_code == ExitCode.USAGE
    assert not credentials.keyring_indexed(URL)


def test_hanging_keyring_times_out(hanging: None) -> None:
    started = time.monotonic()
    with pytest.raises(KeyringUnavailable, match=r"did not answer within 0\.2 s"):
        credentials.keyring_get(URL)
    assert time.monotonic() - started < 2


def test_hanging_keyring_falls_back_to_the_file_with_a_warning(
    hanging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials._index_update(URL, present=True)
    credentials.file_set(URL, TOKEN)
    warnings: list[str] = []
    assert credentials.stored_token(URL, warnings.append) == (TOKEN, "file")
    assert len(warnings) == 1
    assert "did not answer" in warnings[0]


def test_insecure_file_is_0600_even_over_a_loose_one() -> None:
    path = credentials.tokens_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    os.chmod(path, 0o644)
    assert credentials.file_set(URL, TOKEN) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert credentials.file_get(URL) == TOKEN
    assert credentials.file_delete(URL) is True
    assert credentials.file_delete(URL) is False
    assert not path.exists()


def test_precedence_flag_env_keyring_file_none(monkeypatch: pytest.MonkeyPatch) -> None:
    server = "http://127.0.0.1:8887"
    assert resolve(server=server).token_source is None
    credentials.file_set(URL, "from-file")
    assert (resolve(server=server).token, resolve(server=server).token_source) == (
        "from-file",
        "file",
    )
    credentials.keyring_set(URL, "from-keyring")
    assert resolve(server=server).token == "from-keyring"
    assert resolve(server=server).token_source == "keyring"
    env = resolve(server=server, token="from-env", token_from_env=True)
    assert (env.token, env.token_source) == ("from-env", "FORGE_TOKEN")
    flag = resolve(server=server, token="from-flag")
    assert (flag.token, flag.token_source) == ("from-flag", "flag")


def test_tokens_are_per_server() -> None:
    credentials.keyring_set(URL, TOKEN)
    assert resolve(server="127.0.0.1:8887").token == TOKEN  # same server, normalized
    assert resolve(server="ws://127.0.0.1:8887/ws").token == TOKEN
    assert resolve(server="http://127.0.0.1:8888").token is None


def test_resolved_token_is_registered_and_redacted() -> None:
    credentials.keyring_set(URL, TOKEN)
    emitted = Lines()
    diag = Diagnostics(emitted, verbose=2)
    resolve(server=URL, diag=diag)
    assert TOKEN in diag.secrets
    diag.warning(f"something went wrong with {TOKEN} at ws://h/ws?token={TOKEN}")
    assert "keyring" in emitted.text  # traced where the token came from
    assert TOKEN not in emitted.text


@pytest.mark.parametrize(
    ("url", "token", "warned"),
    [
        ("http://forge.example.com", TOKEN, True),
        ("ws://10.0.0.5:8887", TOKEN, True),
        ("https://forge.example.com", TOKEN, False),
        ("http://localhost:8887", TOKEN, False),
        ("http://127.0.0.2:8887", TOKEN, False),
        ("http://[::1]:8887", TOKEN, False),
        ("http://forge.example.com", None, False),
    ],
)
def test_plaintext_warning_decision(url: str, token: str | None, warned: bool) -> None:
    assert (plaintext_warning(parse_server(url), token) is not None) is warned


def test_plaintext_warning_is_emitted_once_by_resolve() -> None:
    emitted = Lines()
    resolve(server="http://forge.example.com", token=TOKEN, diag=Diagnostics(emitted))
    warnings = [line for level, line in emitted.lines if level == "warning"]
    assert len(warnings) == 1
    assert "unencrypted" in warnings[0]
    assert TOKEN not in emitted.text


def test_insecure_tls_warns() -> None:
    emitted = Lines()
    resolve(server="https://forge.example.com", insecure=True, diag=Diagnostics(emitted))
    assert any("verification is disabled" in line for _, line in emitted.lines)


def test_cacert_missing_or_garbage_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot use CA file"):
        check_cacert(str(tmp_path / "absent.pem"))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(UsageError, match="not a PEM CA bundle"):
        resolve(server="https://forge.example.com", cacert=str(garbage))


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_keyring_is_not_imported_without_a_stored_token() -> None:
    code = (
        "import sys\n"
        "import forgectl.cli.main\n"
        "assert 'keyring' not in sys.modules, 'cli import'\n"
        "assert 'asyncio' not in sys.modules, 'cli import: asyncio'\n"
        "from forgectl.settings import resolve\n"
        "s = resolve(server='http://127.0.0.1:1')\n"
        "assert s.token is None\n"
        "assert 'keyring' not in sys.modules, 'resolve'\n"
        "print('ok')\n"
    )
    result = _python(code, dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
