"""Start and drive the REAL Forge server binary (npm ``@automagik/forge`` 0.7.4).

Used by the integration tests and by the demo, so this module imports nothing from
pytest. Typical use (inside a private network namespace, see below; ``tests/`` on
``sys.path`` as ``tests/conftest.py`` arranges)::

    from forge_server import ForgeServer, make_scenario

    with ForgeServer() as server:
        sc = make_scenario(server)
        print(server.url, sc.attempt_id, sc.setup_process_id)

Safety: the real server sends product analytics to a public host unless its
``config.json`` says ``"analytics_enabled": false``. We always seed that file, check
it again after start-up, AND refuse to start the server unless the current process
runs in a network namespace that has nothing but loopback, e.g.::

    unshare -rn sh -c 'ip link set lo up; exec .venv/bin/python -m pytest ...'

Everything here talks only to 127.0.0.1.

Observed behaviour of 0.7.4 (details in ``tests/FORGE_NOTES.md``):

* start-up to a healthy ``GET /api/health``: 0.25-0.35 s.
* ``POST /api/task-attempts`` returns in ~40 ms with ``container_ref: null``; the
  setup-script process is already listed (``running``) right after it returns and
  ``GET /api/task-attempts/{id}`` then has the worktree path in ``container_ref``.
  The setup process's exit code is the script's own exit code.
* setup script exits 0: ``completed``/0, then the coding agent (``codingagent``)
  starts within ~5 ms and, offline, fails ~0.5 s later: ``failed``, exit code 1
  (only because we run npm offline, see ``ForgeServer._env``; otherwise npm retries
  DNS for ~70 s before failing). Setup script exits non-zero: ``failed`` with that
  exit code, and NO coding agent process is ever started for the attempt.
* a dev server started with ``start-dev-server`` is ``running`` within ~30 ms, until
  ``POST /api/execution-processes/{id}/stop``: then ``killed`` with ``exit_code`` null
  within ~30 ms. ``start-dev-server`` while one runs kills it (``killed``) and starts
  a new one.
* worktrees go to a hard-coded ``/var/tmp/automagik-forge/worktrees``, and at start-up
  the server deletes every directory there that its database does not know - other
  servers' worktrees included - unless ``DISABLE_WORKTREE_ORPHAN_CLEANUP`` is set. So
  each server runs in a mount namespace of its own where a directory of its temp dir
  is bound onto ``/var/tmp/automagik-forge`` (``ForgeServer.worktrees_dir`` is that
  directory as the tests see it): servers side by side share nothing, and none sees a
  developer's real Forge (the switch is set as well).
* when the server dies its scripts die on their next write (SIGPIPE); a silent one
  (``sleep 300``) is orphaned, so ``stop()`` also kills the server's whole session.
  After a restart a process that was ``running`` is ``failed`` with ``exit_code``
  null, and its logs (up to the crash) are still served from the database.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import httpx
from support import free_port

HERE = Path(__file__).resolve().parent
BINARY_SCRIPT = HERE / "forge_binary.sh"
FORGE_VERSION = "0.7.4"
#: Where the binary keeps worktrees (hard-coded): each server sees a private directory
#: there (see ``ForgeServer``), so nothing under it is shared.
FORGE_VAR_DIR = Path("/var/tmp/automagik-forge")
WORKTREES_DIR = FORGE_VAR_DIR / "worktrees"

ENV_BIN = "FORGECTL_FORGE_BIN"
ENV_CACHE = "FORGECTL_FORGE_CACHE"

#: config.json seeded before the first start (from samples/forge-0.7.4/config.seed.json).
#: "analytics_enabled" is forced to False whatever a caller passes.
SEED_CONFIG: dict[str, Any] = {
    "config_version": "v7",
    "theme": "SYSTEM",
    "executor_profile": {"executor": "CLAUDE_CODE"},
    "disclaimer_acknowledged": True,
    "onboarding_acknowledged": True,
    "github_login_acknowledged": False,
    "telemetry_acknowledged": True,
    "notifications": {
        "sound_enabled": True,
        "push_enabled": True,
        "sound_file": "GENIE_NOTIFY1",
    },
    "editor": {
        "editor_type": "VS_CODE",
        "custom_command": None,
        "remote_ssh_host": None,
        "remote_ssh_user": None,
    },
    "github": {
        "pat": None,
        "oauth_token": None,
        "username": None,
        "primary_email": None,
        "default_pr_base": "main",
    },
    "analytics_enabled": False,
    "contact_email_opt_in": None,
    "contact_username_opt_in": None,
    "workspace_dir": None,
    "last_app_version": "0.0.115",
    "show_release_notes": False,
    "language": "BROWSER",
    "git_branch_prefix": "af",
    "showcases": {"seen_features": []},
}

TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "killed"})

#: Called with each server about to start (before anything is created); an exception
#: refuses the start. tests/conftest.py checks the test's ``forge`` marker there and
#: keeps the servers a failure report shows the log tail of.
START_HOOKS: list[Callable[[ForgeServer], None]] = []


class ForgeHarnessError(RuntimeError):
    """The harness could not do what was asked (server would not start, timeout...)."""


class NotIsolatedError(ForgeHarnessError):
    """Refusing to start the real server outside a loopback-only network namespace."""


class ForgeAPIError(ForgeHarnessError):
    """A REST call returned an error status or ``success: false``."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:500]!r}")
        self.method = method
        self.path = path
        self.status = status
        self.body = body


# --------------------------------------------------------------------------- binary


def default_cache_dir() -> Path:
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "forgectl-forge"


def find_binary() -> Path | None:
    """Return the Forge binary: ``$FORGECTL_FORGE_BIN``, else the cached copy, else None.

    Never touches the network.
    """
    env = os.environ.get(ENV_BIN)
    if env:
        p = Path(env).expanduser().resolve()
        return p if p.is_file() and os.access(p, os.X_OK) else None
    cached = default_cache_dir() / "bin" / "automagik-forge"
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached.resolve()
    return None


def fetch_binary() -> Path:
    """Return the binary, fetching it with ``forge_binary.sh`` when not cached.

    ``$FORGECTL_FORGE_BIN`` wins when set. A fetch needs network access (``npm pack``),
    so call this outside the private namespace (or rely on the cache).
    """
    if os.environ.get(ENV_BIN):
        found = find_binary()
        if found is None:
            raise ForgeHarnessError(f"${ENV_BIN}={os.environ[ENV_BIN]!r} is not an executable file")
        return found
    proc = subprocess.run(
        ["sh", str(BINARY_SCRIPT)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ForgeHarnessError(f"{BINARY_SCRIPT.name} failed ({proc.returncode}):\n{proc.stderr}")
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise ForgeHarnessError(f"{BINARY_SCRIPT.name} printed no path:\n{proc.stderr}")
    path = Path(lines[-1])
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ForgeHarnessError(f"{BINARY_SCRIPT.name} printed {path}, which is not executable")
    return path


# --------------------------------------------------------------------------- isolation


def _interfaces() -> list[str]:
    """Network interfaces of the CURRENT network namespace.

    ``/sys/class/net`` is useless here: after ``unshare -n`` sysfs still shows the
    host's interfaces. ``/proc/self/net/dev`` and netlink follow the caller's netns.
    """
    try:
        with open("/proc/self/net/dev", encoding="ascii") as fh:
            lines = fh.read().splitlines()[2:]
        return [line.split(":", 1)[0].strip() for line in lines if ":" in line]
    except OSError:
        return [name for _idx, name in socket.if_nameindex()]


def _netns_id(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def in_private_netns() -> bool:
    """True when this process is in its own network namespace with only loopback.

    Two checks, both required:

    * the namespace differs from PID 1's (under ``unshare -r`` PID 1's namespace link
      cannot even be read, which also means we are not in it);
    * the namespace has no interface other than ``lo``, so nothing can leave the
      machine whatever the server tries.

    The second check is the one that matters for safety; the first keeps a bare
    container that merely lacks an uplink from being mistaken for the intended setup.
    """
    mine = _netns_id("self")
    if mine is None:
        return False
    if _netns_id("1") == mine:
        return False
    names = _interfaces()
    return bool(names) and all(n == "lo" for n in names)


def require_private_netns() -> None:
    if not in_private_netns():
        raise NotIsolatedError(
            "refusing to start the real Forge server outside a private network namespace "
            f"(interfaces here: {_interfaces()}); run under "
            "`unshare -rn sh -c 'ip link set lo up; exec ...'`"
        )


def _free_port() -> int:
    try:
        return free_port()
    except OSError as exc:
        raise ForgeHarnessError(
            f"cannot bind 127.0.0.1 ({exc}); is loopback up? (`ip link set lo up`)"
        ) from exc


# --------------------------------------------------------------------------- git fixture

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "forgectl tests",
    "GIT_AUTHOR_EMAIL": "tests@forgectl.invalid",
    "GIT_COMMITTER_NAME": "forgectl tests",
    "GIT_COMMITTER_EMAIL": "tests@forgectl.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, **_GIT_ENV}
    proc = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise ForgeHarnessError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def make_git_repo(path: Path) -> Path:
    """``git init`` at ``path`` (created if needed): README.md ``hello\\n``, one commit on main."""
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("hello\n", encoding="utf-8")
    _git(path, "add", "README.md")
    _git(path, "commit", "-q", "-m", "initial commit")
    return path


# --------------------------------------------------------------------------- process tree


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces and parentheses.
        rest = stat.rsplit(")", 1)[-1].split()
        if len(rest) >= 2:
            kids.setdefault(int(rest[1]), []).append(int(entry))
    return kids


def _descendants(pid: int) -> list[int]:
    kids = _children_map()
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _session_members(sid: int) -> list[int]:
    """Processes whose session id is ``sid``.

    The server runs as a session leader (``start_new_session``); the scripts it spawns
    get their own process groups but stay in its session, even once orphaned.
    """
    out: list[int] = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        # after "(comm)": state ppid pgrp session ...
        if len(fields) >= 4 and int(fields[3]) == sid:
            out.append(int(entry))
    return out


def _kill_quietly(pids: Collection[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


# --------------------------------------------------------------------------- server


class ForgeServer:
    """One real Forge server on 127.0.0.1 with a private temp HOME / XDG data dir.

    ``start()`` (or ``with``) seeds ``$XDG_DATA_HOME/automagik-forge/config.json``
    (analytics always off), picks a free port, starts the binary and waits for
    ``GET /api/health``. The binary runs in a mount namespace of its own
    (``unshare --mount``) in which ``/var/tmp/automagik-forge`` is a directory of the
    temp dir: its worktrees are private, and :meth:`host_path` turns a path the server
    reports into the one the tests read. ``restart()`` keeps the port, the data
    directory and the worktrees, so a client following a stream can reconnect to
    "the same" server. ``close()`` (or the end of ``with``) stops it and deletes the
    temp dir, worktrees included.
    """

    def __init__(
        self,
        binary: Path | None = None,
        *,
        startup_timeout: float = 20.0,
        extra_env: Mapping[str, str] | None = None,
        path_prefix: Sequence[Path | str] = (),
        keep_tmp: bool = False,
    ) -> None:
        self.binary: Path | None = binary
        self.startup_timeout = startup_timeout
        self.extra_env: dict[str, str] = dict(extra_env or {})
        #: Directories put first on the server's PATH, so its children (coding agents
        #: are found on PATH) run programs of the test's choosing: tests/agents.
        self.path_prefix: list[str] = [str(p) for p in path_prefix]
        self.keep_tmp = keep_tmp
        self.tmp: Path | None = None
        self.port: int = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_fh: BinaryIO | None = None
        self._client: httpx.Client | None = None
        self._repo_counter = 0
        self._final_log: str | None = None  # the log, kept when the temp dir goes

    # -- properties ---------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self._require_tmp() / "forge.log"

    @property
    def data_dir(self) -> Path:
        """``$XDG_DATA_HOME/automagik-forge`` (db.sqlite, config.json)."""
        return self._require_tmp() / "data" / "automagik-forge"

    @property
    def var_dir(self) -> Path:
        """What the server sees as ``/var/tmp/automagik-forge``, as the tests see it."""
        return self._require_tmp() / "var-automagik-forge"

    @property
    def worktrees_dir(self) -> Path:
        """The server's worktrees (its ``/var/tmp/automagik-forge/worktrees``)."""
        return self.var_dir / "worktrees"

    def host_path(self, server_path: str | Path) -> Path:
        """A path the server reports (``container_ref``...) as the tests can open it."""
        path = Path(server_path)
        if path.is_relative_to(FORGE_VAR_DIR):
            return self.var_dir / path.relative_to(FORGE_VAR_DIR)
        return path

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _require_tmp(self) -> Path:
        if self.tmp is None:
            raise ForgeHarnessError("server not started")
        return self.tmp

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            raise ForgeHarnessError("server not started")
        return self._client

    # -- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> ForgeServer:
        """Start (unless started already); the end of the block closes the server."""
        if self.tmp is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> ForgeServer:
        """Create the temp dir, seed the config, start the binary, wait for health."""
        if self.tmp is not None:
            raise ForgeHarnessError("already started; use restart()")
        require_private_netns()
        for hook in START_HOOKS:
            hook(self)
        if self.binary is None:
            self.binary = find_binary()
        if self.binary is None:
            raise ForgeHarnessError(
                f"Forge binary not found: set ${ENV_BIN} or run {BINARY_SCRIPT} (needs network)"
            )
        self.tmp = Path(tempfile.mkdtemp(prefix="forgectl-forge-"))
        for sub in ("home", "config", "data", "cache", "state", "repos", self.var_dir.name):
            (self.tmp / sub).mkdir()
        self.data_dir.mkdir(parents=True)
        self._write_config()
        (self.tmp / "home" / ".gitconfig").write_text(
            "[user]\n\tname = forgectl tests\n\temail = tests@forgectl.invalid\n"
            "[init]\n\tdefaultBranch = main\n",
            encoding="utf-8",
        )
        try:
            self.port = _free_port()
            self._client = httpx.Client(base_url=self.url, timeout=10.0, trust_env=False)
            self._spawn()
            self._check_analytics_off()
        except BaseException:
            self.close()
            raise
        return self

    def _write_config(self) -> None:
        cfg = dict(SEED_CONFIG)
        cfg["analytics_enabled"] = False
        (self.data_dir / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")

    def _env(self) -> dict[str, str]:
        tmp = self._require_tmp()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.lower().endswith("_proxy")
            and not k.startswith(("XDG_", "FORGECTL_", "FORGE_"))
        }
        # The CLAUDE_CODE executor runs `npx -y @anthropic-ai/claude-code`. Offline,
        # npm retries DNS failures with back-off and the agent fails only after ~70 s;
        # in offline mode it fails at once (ENOTCACHED: the temp HOME has no npm cache).
        env.update(
            {
                "npm_config_offline": "true",
                "npm_config_fetch_retries": "0",
                "npm_config_update_notifier": "false",
                "npm_config_audit": "false",
                "npm_config_fund": "false",
            }
        )
        env.update(self.extra_env)
        if self.path_prefix:
            env["PATH"] = os.pathsep.join([*self.path_prefix, env.get("PATH", os.defpath)])
        env.update(
            {
                "HOME": str(tmp / "home"),
                "XDG_CONFIG_HOME": str(tmp / "config"),
                "XDG_DATA_HOME": str(tmp / "data"),
                "XDG_CACHE_HOME": str(tmp / "cache"),
                "XDG_STATE_HOME": str(tmp / "state"),
                "HOST": "127.0.0.1",
                "BACKEND_PORT": str(self.port),
                "PORT": str(self.port),
                "DISABLE_BROWSER_OPEN": "1",
                # At start-up the server deletes every directory under
                # /var/tmp/automagik-forge/worktrees that its own database does not
                # know. That directory is private to this server (see _argv), and the
                # switch keeps it from deleting anything should it ever not be.
                "DISABLE_WORKTREE_ORPHAN_CLEANUP": "1",
                "NO_COLOR": "1",
            }
        )
        return env

    def _spawn(self) -> None:
        assert self.binary is not None
        tmp = self._require_tmp()
        log_fh = self.log_path.open("ab")
        self._log_fh = log_fh
        log_fh.write(f"=== forge_server.py: starting {self.binary} on port {self.port}\n".encode())
        log_fh.flush()
        self._proc = subprocess.Popen(
            self._argv(),
            cwd=str(tmp / "home"),
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_healthy()

    def _argv(self) -> list[str]:
        """The binary in a mount namespace of its own, ``var_dir`` bound onto its
        hard-coded ``/var/tmp/automagik-forge``: worktrees are neither shared with other
        servers nor left behind. ``unshare`` and ``sh`` exec, so the pid is the
        server's. Needs the right to mount, which ``unshare -r`` (the private network
        namespace the server must run in) gives."""
        assert self.binary is not None
        FORGE_VAR_DIR.mkdir(parents=True, exist_ok=True)  # the mount point
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            'mount --bind "$1" "$2" && shift 2 && exec "$@"',
            "sh",
            str(self.var_dir),
            str(FORGE_VAR_DIR),
            str(self.binary),
        ]

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last_err = "no attempt yet"
        while time.monotonic() < deadline:
            assert self._proc is not None
            rc = self._proc.poll()
            if rc is not None:
                raise ForgeHarnessError(
                    f"Forge server exited with code {rc} during start-up; log tail:\n{self.log_tail()}"
                )
            try:
                r = self.client.get("/api/health", timeout=2.0)
                if r.status_code == 200 and r.json().get("success") is True:
                    return
                last_err = f"HTTP {r.status_code}"
            except (httpx.HTTPError, ValueError) as exc:
                last_err = repr(exc)
            time.sleep(0.05)
        raise ForgeHarnessError(
            f"Forge server not healthy after {self.startup_timeout}s ({last_err}); "
            f"log tail:\n{self.log_tail()}"
        )

    def _check_analytics_off(self) -> None:
        cfg = self.api("GET", "/api/info")["config"]
        if cfg.get("analytics_enabled") is not False:
            raise ForgeHarnessError(
                f"server reports analytics_enabled={cfg.get('analytics_enabled')!r}"
            )

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log (also once closed)."""
        if self.tmp is None and self._final_log is not None:
            text = self._final_log
        else:
            try:
                text = self.log_path.read_text(encoding="utf-8", errors="replace")
            except (OSError, ForgeHarnessError):
                return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _terminate(self, timeout: float = 5.0) -> None:
        proc = self._proc
        if proc is not None:
            descendants = _descendants(proc.pid) if proc.poll() is None else []
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=timeout)
            # Scripts the server spawned (dev servers...) run in their own process
            # groups and can outlive it (a silent script gets no SIGPIPE): kill what is
            # left of its tree and of its session.
            _kill_quietly(set(descendants) | set(_session_members(proc.pid)), signal.SIGKILL)
            self._proc = None
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    def stop(self) -> None:
        """Stop the server process; the data dir and port are kept for ``restart()``."""
        self._terminate()

    def restart(self, *, down_for: float = 0.0) -> None:
        """Stop, optionally stay down ``down_for`` seconds, start again on the SAME port."""
        self.stop()
        if down_for > 0:
            time.sleep(down_for)
        deadline = time.monotonic() + 5.0
        while True:  # the port may briefly stay busy
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._spawn()
        self._check_analytics_off()

    def close(self) -> None:
        """Stop the server and remove the temp dir (its worktrees with it)."""
        if self.tmp is None:
            return
        self._terminate()
        if self._client is not None:
            self._client.close()
            self._client = None
        self._final_log = self.log_tail(200)
        if not self.keep_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp = None

    # -- REST -------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, path, **kwargs)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the REST API and unwrap the ``{success, data, ...}`` envelope."""
        r = self.client.request(method, path, **kwargs)
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code >= 400 or not isinstance(body, dict) or body.get("success") is not True:
            raise ForgeAPIError(method, path, r.status_code, r.text)
        return body.get("data")

    def make_repo(self, name: str = "repo") -> Path:
        """A fresh git repo fixture inside this server's temp dir (see ``make_git_repo``)."""
        self._repo_counter += 1
        return make_git_repo(self._require_tmp() / "repos" / f"{name}-{self._repo_counter}")

    def create_project(
        self,
        name: str,
        repo_path: Path | str,
        setup_script: str | None = None,
        dev_script: str | None = None,
        cleanup_script: str | None = None,
    ) -> dict[str, Any]:
        data: dict[str, Any] = self.api(
            "POST",
            "/api/projects",
            json={
                "name": name,
                "git_repo_path": str(repo_path),
                "use_existing_repo": True,
                "setup_script": setup_script,
                "dev_script": dev_script,
                "cleanup_script": cleanup_script,
                "copy_files": None,
            },
        )
        return data

    def create_task(
        self, project_id: str, title: str, description: str | None = None
    ) -> dict[str, Any]:
        data: dict[str, Any] = self.api(
            "POST",
            "/api/tasks",
            json={"project_id": project_id, "title": title, "description": description},
        )
        return data

    def create_attempt(
        self, task_id: str, executor: str = "CLAUDE_CODE", base_branch: str = "main"
    ) -> dict[str, Any]:
        data: dict[str, Any] = self.api(
            "POST",
            "/api/task-attempts",
            json={
                "task_id": task_id,
                "executor_profile_id": {"executor": executor},
                "base_branch": base_branch,
            },
        )
        return data

    def get_attempt(self, attempt_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.api("GET", f"/api/task-attempts/{attempt_id}")
        return data

    def attempt_worktree(self, attempt_id: str, timeout: float = 10.0) -> Path:
        """The attempt's worktree (``container_ref`` of ``GET /api/task-attempts/{id}``),
        as the tests see it (:meth:`host_path`).

        ``container_ref`` is null in the POST response and set once the worktree exists.
        """
        deadline = time.monotonic() + timeout
        while True:
            ref = self.get_attempt(attempt_id).get("container_ref")
            if isinstance(ref, str) and ref and self.host_path(ref).is_dir():
                return self.host_path(ref)
            if time.monotonic() > deadline:
                raise ForgeHarnessError(
                    f"attempt {attempt_id} has no worktree (container_ref={ref!r})"
                )
            time.sleep(0.05)

    def list_processes(self, attempt_id: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.api(
            "GET", "/api/execution-processes", params={"task_attempt_id": attempt_id}
        )
        return data

    def get_process(self, process_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.api("GET", f"/api/execution-processes/{process_id}")
        return data

    def start_dev_server(self, attempt_id: str) -> None:
        self.api("POST", f"/api/task-attempts/{attempt_id}/start-dev-server")

    def stop_process(self, process_id: str) -> None:
        self.api("POST", f"/api/execution-processes/{process_id}/stop")

    def stop_attempt(self, attempt_id: str) -> None:
        self.api("POST", f"/api/task-attempts/{attempt_id}/stop")

    def wait_for_process(
        self,
        attempt_id: str,
        run_reason: str,
        status_in: Collection[str] = TERMINAL_STATUSES,
        timeout: float = 15.0,
        *,
        exclude_ids: Collection[str] = (),
        interval: float = 0.05,
    ) -> dict[str, Any]:
        """Poll until a process of ``attempt_id`` with ``run_reason`` has a status in
        ``status_in``; return its record (the newest one if several match).

        ``exclude_ids`` skips older processes (e.g. a second dev server run).
        """
        return _poll(
            lambda: _pick(self.list_processes(attempt_id), run_reason, status_in, exclude_ids),
            timeout,
            interval,
            lambda: (
                f"no {run_reason} process with status in {sorted(status_in)} for attempt "
                f"{attempt_id} after {timeout}s; processes: "
                + json.dumps(
                    [
                        {k: p.get(k) for k in ("id", "run_reason", "status", "exit_code")}
                        for p in self.list_processes(attempt_id)
                    ]
                )
            ),
        )


def _pick(
    procs: list[dict[str, Any]],
    run_reason: str,
    status_in: Collection[str],
    exclude_ids: Collection[str],
) -> dict[str, Any] | None:
    match = [
        p
        for p in procs
        if p.get("run_reason") == run_reason
        and p.get("status") in status_in
        and p.get("id") not in exclude_ids
    ]
    if not match:
        return None
    return max(match, key=lambda p: str(p.get("created_at", "")))


def _poll(
    fn: Callable[[], dict[str, Any] | None],
    timeout: float,
    interval: float,
    describe: Callable[[], str],
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got is not None:
            return got
        if time.monotonic() > deadline:
            raise ForgeHarnessError(describe())
        time.sleep(interval)


# --------------------------------------------------------------------------- scenario


def setup_script_text(lines: int = 3, sleep: float = 0.2, exit_code: int = 3) -> str:
    """A bash setup script: ``setup-start``, ``line 1..N`` (sleeping between them),
    ``to-stderr`` on stderr, ``setup-done``, then ``exit <exit_code>``."""
    return (
        f"echo setup-start; for i in $(seq 1 {lines}); do echo line $i; sleep {sleep}; done; "
        f"echo to-stderr >&2; echo setup-done; exit {exit_code}"
    )


def expected_setup_stdout(lines: int = 3) -> str:
    return "setup-start\n" + "".join(f"line {i}\n" for i in range(1, lines + 1)) + "setup-done\n"


EXPECTED_SETUP_STDERR = "to-stderr\n"

DEV_SCRIPT = "echo dev-server-up; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"

#: Files ``make_scenario`` writes into the worktree (path relative to the worktree ->
#: content). README.md is modified, the others are new (untracked) files.
SCENARIO_FILES: dict[str, str] = {
    "README.md": "hello\nchanged by forgectl tests\n",
    "new_file.txt": "a\nb\nc\n",
    "sub/dir/nested.txt": "nested\n",
    "tilde~name.txt": "tilde\n",
}


@dataclass
class Scenario:
    """Ids and paths of what ``make_scenario`` built."""

    project_id: str
    task_id: str
    attempt_id: str
    repo_path: Path
    worktree: Path
    setup_process_id: str
    setup_status: str
    setup_exit_code: int | None
    coding_agent_process_id: str | None
    dev_process_id: str | None
    setup_stdout: str
    setup_stderr: str
    files: dict[str, str] = field(default_factory=dict)
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)


def make_scenario(
    server: ForgeServer,
    *,
    name: str = "forgectl-scenario",
    setup_lines: int = 3,
    setup_sleep: float = 0.2,
    setup_exit: int = 3,
    dev_server: bool = True,
    dev_run_seconds: float = 1.0,
    stop_dev_server: bool = True,
    write_files: bool = True,
    timeout: float = 20.0,
) -> Scenario:
    """Build the standard scenario the client tests need, against the real server.

    1. git repo + project (``setup_script`` from ``setup_script_text``, ``DEV_SCRIPT``),
       a task and a CLAUDE_CODE attempt; waits for the setup process to finish.
       Observed: the setup process exists as soon as the attempt POST returns; it ends
       ``failed`` with exit code ``setup_exit`` (``completed``/0 when ``setup_exit=0``).
       With ``setup_exit != 0`` no coding agent is started (``coding_agent_process_id``
       is None); with ``setup_exit == 0`` the coding agent starts right after and fails
       offline within about a second (``failed``, exit 1) - we wait for that.
    2. with ``dev_server``: ``start-dev-server``, wait until ``running``, let it print
       for ``dev_run_seconds`` (a ``tick N`` line every 0.2 s), then (``stop_dev_server``)
       stop it and wait for ``killed`` (exit_code null).
    3. with ``write_files``: writes ``SCENARIO_FILES`` into the worktree so the diff
       stream has entries (modified README.md, two added files, one in ``sub/dir/``,
       one named with a ``~``).
    """
    repo = server.make_repo(name)
    project = server.create_project(
        name,
        repo,
        setup_script=setup_script_text(setup_lines, setup_sleep, setup_exit),
        dev_script=DEV_SCRIPT,
    )
    task = server.create_task(project["id"], f"{name} task", "made by tests/forge_server.py")
    attempt = server.create_attempt(task["id"])
    attempt_id: str = attempt["id"]

    setup = server.wait_for_process(attempt_id, "setupscript", TERMINAL_STATUSES, timeout)
    processes: dict[str, dict[str, Any]] = {setup["id"]: setup}
    agent_id: str | None = None
    if setup["status"] == "completed":
        agent = server.wait_for_process(attempt_id, "codingagent", TERMINAL_STATUSES, timeout)
        agent_id = agent["id"]
        processes[agent_id] = agent
    worktree = server.attempt_worktree(attempt_id)

    dev_id: str | None = None
    if dev_server:
        server.start_dev_server(attempt_id)
        dev = server.wait_for_process(attempt_id, "devserver", {"running"}, timeout)
        dev_id = dev["id"]
        time.sleep(dev_run_seconds)
        if stop_dev_server:
            server.stop_process(dev_id)
            dev = server.wait_for_process(
                attempt_id, "devserver", {"killed", "failed", "completed"}, timeout
            )
        processes[dev_id] = dev

    files: dict[str, str] = {}
    if write_files:
        for rel, content in SCENARIO_FILES.items():
            target = worktree / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
            files[rel] = content

    return Scenario(
        project_id=project["id"],
        task_id=task["id"],
        attempt_id=attempt_id,
        repo_path=repo,
        worktree=worktree,
        setup_process_id=setup["id"],
        setup_status=setup["status"],
        setup_exit_code=setup["exit_code"],
        coding_agent_process_id=agent_id,
        dev_process_id=dev_id,
        setup_stdout=expected_setup_stdout(setup_lines),
        setup_stderr=EXPECTED_SETUP_STDERR,
        files=files,
        processes=processes,
    )


@contextlib.contextmanager
def running_server(**kwargs: Any) -> Iterator[ForgeServer]:
    """``with running_server() as s:`` - same as ``with ForgeServer(**kwargs) as s:``."""
    with ForgeServer(**kwargs) as server:
        yield server
