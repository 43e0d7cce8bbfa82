"""Local state never lies: keyrings, token files and config files.

- A keyring that fails (a typo in ``PYTHON_KEYRING_BACKEND``, a corrupt
  keyrings.alt file) is one warning; the command goes on without the token.
- ``login`` says a token is stored only once it can be read back the way
  commands read it (a read-only config directory, a keyring that forgets).
- A token file others can read is not used (as ssh treats a private key); a
  config file others can write is warned about.

Storage is real: keyrings.alt's file backend, and a config directory made
read-only by a read-only bind mount in a private mount namespace.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from hostile import Frames, HostileServer, Run, clean_env, forgectl

from forgectl.errors import ExitCode

pytestmark = pytest.mark.timeout(60)

TOKEN = "tok-STATE-8c4d2b-kept-safe"
PROC = "p1"
LOGS = f"/ws/execution-processes/{PROC}/logs/normalized"
MONITOR = "/ws/execution-processes"
FILE_BACKEND = "keyrings.alt.file.PlaintextKeyring"
EVENT = '{"type": "process_started", "processId": "p1"}'


def documented() -> HostileServer:
    return HostileServer(
        {
            LOGS: Frames(['{"level": "info", "message": "hello"}']),
            MONITOR: Frames([EVENT], code=1001),
        }
    )


def config_dir(home: Path) -> Path:
    return home / "config" / "forgectl"


def alt_env(backend: str = FILE_BACKEND, **extra: str) -> dict[str, str]:
    return clean_env(PYTHON_KEYRING_BACKEND=backend, **extra)


def login(url: str, *flags: str, env: dict[str, str], prefix: tuple[str, ...] = ()) -> Run:
    return forgectl(
        "login",
        "--with-token",
        "--no-verify",
        "-s",
        url,
        *flags,
        stdin=TOKEN + "\n",
        env=env,
        prefix=prefix,
    )


def stored_in_the_file_backend(url: str) -> str | None:
    from keyrings.alt.file import PlaintextKeyring  # type: ignore[import-untyped]

    value = PlaintextKeyring().get_password("forgectl", url)
    return value if isinstance(value, str) else None


def token_of(status: Run) -> str:
    """What ``auth status`` says of the token."""
    (line,) = [line for line in status.out.splitlines() if line.startswith("token:")]
    return line.removeprefix("token:").strip()


def server_url(srv: HostileServer) -> str:
    return f"http://127.0.0.1:{srv.port}"


# -- a keyring that fails ------------------------------------------------------------------


def break_keyring(how: str, isolated_env: Path) -> dict[str, str]:
    if how == "typo in the module":
        return alt_env("keyrings.alt.fiel.PlaintextKeyring")
    if how == "typo in the class":
        return alt_env("keyrings.alt.file.PlaintextKeyrnig")
    (isolated_env / "data" / "python_keyring" / "keyring_pass.cfg").write_bytes(
        b"\x00\xff not an ini file [[[\n"
    )
    return alt_env()


BREAKAGES = ["typo in the module", "typo in the class", "corrupt keyrings.alt file"]


@pytest.mark.parametrize("how", BREAKAGES)
def test_a_broken_keyring_is_one_warning_and_commands_go_on(how: str, isolated_env: Path) -> None:
    with documented() as srv:
        url = server_url(srv)
        stored = login(url, env=alt_env())
        assert stored.code == 0, stored.stderr
        assert stored_in_the_file_backend(url) == TOKEN
        env = break_keyring(how, isolated_env)
        status = forgectl("auth", "status", "-s", url, env=env)
        logs = forgectl("-s", url, "--api", "documented", "logs", PROC, env=env)
        monitor = forgectl("-s", url, "--api", "documented", "monitor", "--no-reconnect", env=env)
    for run in (status, logs, monitor):
        assert "Traceback" not in run.stderr, run.stderr
        warning = next(line for line in run.stderr.splitlines() if "keyring" in line)
        assert warning.startswith(f"forgectl: warning: cannot read the token for {url}")
        assert "no usable keyring" in warning
        assert "FORGE_TOKEN" in warning  # what to do
        if how.startswith("typo"):
            assert "fix or unset PYTHON_KEYRING_BACKEND" in warning
    assert status.code == 0 and token_of(status) == "not set"
    assert logs.code == 0 and b'"message":"hello"' in logs.stdout
    assert monitor.code == ExitCode.CONNECT and b'"process_started"' in monitor.stdout
    assert srv.seen and all("token" not in seen.query for seen in srv.seen)


def test_login_with_a_mistyped_backend_is_one_line_exit_2() -> None:
    run = login("http://127.0.0.1:9", env=alt_env("keyrings.alt.file.PlaintextKeyrnig"))
    assert run.code == ExitCode.USAGE, run.stderr
    (line,) = run.stderr.splitlines()
    assert "PYTHON_KEYRING_BACKEND='keyrings.alt.file.PlaintextKeyrnig' cannot be loaded" in line
    assert "--insecure-storage" in line


# -- login tells the truth -------------------------------------------------------------------


def read_only(directory: Path) -> tuple[str, ...]:
    """A command prefix that runs it with ``directory`` mounted read-only (a private
    mount namespace: as root here, file modes alone would not stop a write)."""
    unshare = shutil.which("unshare")
    assert unshare, "unshare(1) is needed (util-linux), as for the whole suite"
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    probe = subprocess.run(
        [unshare, "-rm", "sh", "-c", script, str(directory), "sh", "-c", f"! touch {directory}/x"],
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0, f"cannot make {directory} read-only: {probe.stderr}"
    return (unshare, "-rm", "sh", "-c", script, str(directory))


def test_login_into_a_read_only_config_dir_stores_nothing_and_says_why(
    isolated_env: Path,
) -> None:
    directory = config_dir(isolated_env)
    directory.mkdir(parents=True)
    url = "http://127.0.0.1:9"
    run = login(url, env=alt_env(), prefix=read_only(directory))
    assert run.code == ExitCode.USAGE, run.stderr
    (line,) = run.stderr.splitlines()
    assert "stored in the OS keyring" not in line
    assert f"cannot record the keyring entry in {directory}/keyring.json" in line
    assert "read-only file system" in line and "FORGECTL_CONFIG_DIR" in line
    assert stored_in_the_file_backend(url) is None  # not left behind
    status = forgectl("auth", "status", "-s", url, env=alt_env())
    assert token_of(status) == "not set"


def test_insecure_storage_into_a_read_only_config_dir_is_one_line(isolated_env: Path) -> None:
    directory = config_dir(isolated_env)
    directory.mkdir(parents=True)
    run = login(
        "http://127.0.0.1:9", "--insecure-storage", env=alt_env(), prefix=read_only(directory)
    )
    assert run.code == ExitCode.USAGE, run.stderr
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"forgectl: error: cannot write the token file {directory}/tokens.json")
    assert "unexpected" not in line


def test_login_reads_the_token_back_before_saying_it_is_stored() -> None:
    run = login("http://127.0.0.1:9", env=alt_env("keyring_backends.ForgetfulKeyring"))
    assert run.code == ExitCode.USAGE, run.stderr
    assert "stored in the OS keyring" not in run.stderr
    assert "reading it back gave nothing" in run.stderr


def test_login_into_the_file_backend_works_and_is_used() -> None:
    with documented() as srv:
        url = server_url(srv)
        stored = login(url, env=alt_env())
        logs = forgectl("-s", url, "--api", "documented", "logs", PROC, env=alt_env())
    assert stored.code == 0 and "stored in the OS keyring" in stored.stderr
    assert logs.code == 0, logs.stderr
    assert srv.seen[-1].query["token"] == TOKEN


# -- files others can read or write ----------------------------------------------------------


def test_a_token_file_others_can_read_is_not_used(isolated_env: Path) -> None:
    with documented() as srv:
        url = server_url(srv)
        stored = login(url, "--insecure-storage", env=clean_env())
        assert stored.code == 0, stored.stderr
        path = config_dir(isolated_env) / "tokens.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        first = forgectl("-s", url, "--api", "documented", "logs", PROC, env=clean_env())
        assert srv.seen[-1].query.get("token") == TOKEN  # private: used
        path.chmod(0o644)
        logs = forgectl("-s", url, "--api", "documented", "logs", PROC, env=clean_env())
        status = forgectl("auth", "status", "-s", url, env=clean_env())
    assert first.code == 0 and first.stderr == ""
    assert "token" not in srv.seen[-1].query  # readable by others: not sent
    assert logs.code == 0
    for run in (logs, status):
        (line,) = run.stderr.splitlines()
        assert line == (
            f"forgectl: warning: not using the tokens in {path}: other users can access it "
            f"(mode 0644); run `chmod 600 {path}` if it is yours (and consider its tokens "
            "seen), or remove it"
        )
    assert token_of(status) == "not set"


def test_a_profile_token_file_others_can_read_is_used_with_a_warning(
    isolated_env: Path,
) -> None:
    secret = isolated_env / "secret"
    secret.write_text(TOKEN + "\n")
    secret.chmod(0o644)
    directory = config_dir(isolated_env)
    directory.mkdir(parents=True)
    (directory / "config.toml").write_text(f'[profiles.default]\ntoken_file = "{secret}"\n')
    (directory / "config.toml").chmod(0o600)
    directory.chmod(0o700)
    status = forgectl("auth", "status", env=clean_env())
    assert status.code == 0
    assert token_of(status) == "set, from the profile's token_file"
    (line,) = status.stderr.splitlines()
    assert line.startswith(f"forgectl: warning: token_file {secret} is not private")


def test_a_config_file_others_can_write_is_warned_about(isolated_env: Path) -> None:
    directory = config_dir(isolated_env)
    directory.mkdir(parents=True)
    config = directory / "config.toml"
    config.write_text('[profiles.default]\nserver = "http://127.0.0.1:9"\n')
    os.chmod(config, 0o666)
    os.chmod(directory, 0o777)
    status = forgectl("auth", "status", env=clean_env())
    assert status.code == 0
    assert status.stderr.splitlines() == [
        f"forgectl: warning: {config} is writable by other users (mode 0666): they could "
        f"point forgectl at a server of theirs, token included; run `chmod go-w {config}`",
        f"forgectl: warning: {directory} is writable by other users (mode 0777): they could "
        f"replace config.toml; run `chmod go-w {directory}`",
    ]
    os.chmod(config, 0o644)
    os.chmod(directory, 0o755)
    assert forgectl("auth", "status", env=clean_env()).stderr == ""
