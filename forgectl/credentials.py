"""Where tokens are kept: the OS keyring, or a plain-text file for headless machines.

Tokens are stored per server, keyed by its normalized URL (:attr:`Server.url`), in
the keyring under the service ``forgectl``. Every keyring call runs in a daemon
thread and is abandoned after a few seconds (``FORGECTL_KEYRING_TIMEOUT``): a locked
or hanging backend must not wedge a CI step, so a timeout counts as "no keyring".

keyring is imported lazily, and only for servers that have a token in it: a small
index (``keyring.json`` in the config dir) records which servers do, so a command
for any other server never pays keyring's import time.

Whatever goes wrong in a keyring backend (none installed, a typo in
``PYTHON_KEYRING_BACKEND``, a corrupt keyrings.alt file, a locked or hanging
one) is :class:`KeyringUnavailable`: one line saying what to do. The plain-text
file is used only while no other user can read it, as ssh treats a private key.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .constants import ENV_KEYRING_TIMEOUT, KEYRING_SERVICE
from .errors import ConfigError, UsageError
from .urls import redact, remember_secret

if TYPE_CHECKING:
    from types import ModuleType

T = TypeVar("T")

DEFAULT_KEYRING_TIMEOUT = 3.0
#: Index of the servers whose token is in the keyring (no secrets in it).
INDEX_FILE = "keyring.json"
#: The plain-text fallback written by ``forgectl login --insecure-storage`` (mode 0600).
TOKENS_FILE = "tokens.json"

WAYS_OUT = (
    "set FORGE_TOKEN, or run `forgectl login --insecure-storage` "
    "to keep the token in a plain-text file"
)


class KeyringUnavailable(UsageError):
    """No usable keyring: none installed, locked, failing, or not answering."""

    def __init__(self, reason: str, fix: str | None = None) -> None:
        ways = f"{fix}, or {WAYS_OUT}" if fix else WAYS_OUT
        super().__init__(f"no usable keyring ({reason}); {ways}")
        self.reason = reason


def keyring_timeout() -> float:
    raw = os.environ.get(ENV_KEYRING_TIMEOUT)
    if raw:
        with contextlib.suppress(ValueError):
            value = float(raw)
            if value > 0:
                return value
    return DEFAULT_KEYRING_TIMEOUT


def _with_keyring(call: Callable[[ModuleType], T]) -> T:
    """Run ``call(keyring)`` in a daemon thread; raise KeyringUnavailable if it cannot.

    Any exception from keyring or its backend becomes KeyringUnavailable: a backend
    is someone else's code, and what it raises (ValueError, configparser errors,
    ImportError for a mistyped backend name) says nothing a traceback would help
    with; nor does a BaseException that is not an Exception, which would otherwise
    escape as a traceback quoting the password. Its text is redacted: a backend may
    quote the password it was given."""
    outcome: list[Any] = []

    def target() -> None:
        stage = "load"
        try:
            import keyring
            from keyring.backends import fail, null

            backend = keyring.get_keyring()
            if isinstance(backend, (fail.Keyring, null.Keyring)):
                raise KeyringUnavailable(f"keyring backend is {type(backend).__module__}")
            stage = f"the keyring backend {type(backend).__module__}.{type(backend).__name__}"
            outcome.append((True, call(keyring)))
        except KeyringUnavailable as exc:
            outcome.append((False, exc))
        except (KeyboardInterrupt, SystemExit) as exc:
            outcome.append((False, exc))
        except BaseException as exc:  # not only Exception: what a backend raises is not ours
            outcome.append((False, _backend_failure(stage, exc)))

    timeout = keyring_timeout()
    thread = threading.Thread(target=target, name="forgectl-keyring", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise KeyringUnavailable(f"it did not answer within {timeout:g} s")
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


def _backend_failure(stage: str, exc: BaseException) -> KeyringUnavailable:
    """Why the keyring failed, in one line (redacted, control characters escaped)."""
    from keyring.errors import KeyringError

    from .escape import escape_line

    text = _first_line(exc)
    if isinstance(exc, KeyringError) and text:
        what = text
    else:
        what = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    fix = None
    if stage == "load":
        named = os.environ.get("PYTHON_KEYRING_BACKEND")
        if named:
            what = f"PYTHON_KEYRING_BACKEND={named!r} cannot be loaded: {what}"
            fix = "fix or unset PYTHON_KEYRING_BACKEND"
        else:
            what = f"the keyring backend cannot be loaded: {what}"
    elif not isinstance(exc, KeyringError):
        what = f"{stage} failed: {what}"
    return KeyringUnavailable(escape_line(redact(what)), fix)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


# -- the keyring ----------------------------------------------------------------------


def keyring_available() -> None:
    """Raise KeyringUnavailable unless a real keyring backend is configured."""
    _with_keyring(lambda kr: None)


def keyring_get(server_url: str) -> str | None:
    token = _with_keyring(lambda kr: kr.get_password(KEYRING_SERVICE, server_url))
    return token if isinstance(token, str) else None


def keyring_set(server_url: str, token: str) -> None:
    """Store the token; ConfigError when the index cannot record it (commands would
    never look it up: nothing is left in the keyring then)."""
    remember_secret(token)
    _with_keyring(lambda kr: kr.set_password(KEYRING_SERVICE, server_url, token))
    try:
        _index_update(server_url, present=True)
    except OSError as exc:
        with contextlib.suppress(KeyringUnavailable):
            _with_keyring(lambda kr: kr.delete_password(KEYRING_SERVICE, server_url))
        path = _dir() / INDEX_FILE
        raise ConfigError(
            f"cannot record the keyring entry in {path} ({_reason(exc)}), so commands "
            f"would never look it up; nothing was stored: make {path.parent} writable, "
            "or point FORGECTL_CONFIG_DIR at a writable directory"
        ) from None


def keyring_delete(server_url: str) -> bool:
    """Remove the entry; False when there was none."""

    def delete(kr: ModuleType) -> bool:
        from keyring.errors import PasswordDeleteError

        if kr.get_password(KEYRING_SERVICE, server_url) is None:
            return False
        try:
            kr.delete_password(KEYRING_SERVICE, server_url)
        except PasswordDeleteError:
            return False
        return True

    removed = _with_keyring(delete)
    # A stale index entry costs a keyring look-up that finds nothing: harmless.
    with contextlib.suppress(OSError):
        _index_update(server_url, present=False)
    return removed


# -- the index of keyring entries -------------------------------------------------------


def _dir() -> Path:
    from .config import config_dir

    return config_dir()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically, readable by the owner only (mode 0600, directory 0700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, sort_keys=True)
            out.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def keyring_indexed(server_url: str) -> bool:
    """Did ``forgectl login`` put a token for this server in the keyring?"""
    servers = _read_json(_dir() / INDEX_FILE).get("servers", [])
    return isinstance(servers, list) and server_url in servers


def _index_update(server_url: str, *, present: bool) -> None:
    path = _dir() / INDEX_FILE
    servers = _read_json(path).get("servers", [])
    if not isinstance(servers, list):
        servers = []
    if present == (server_url in servers):
        return
    servers = sorted({*servers, server_url}) if present else [s for s in servers if s != server_url]
    _write_json(path, {"servers": servers})


# -- the plain-text file ----------------------------------------------------------------


def tokens_file() -> Path:
    return _dir() / TOKENS_FILE


class UnsafeTokenFile(ConfigError):
    """The plain-text token file could be read (or was written) by someone else."""


def exposure(stat: os.stat_result, *, owned: bool = True) -> str | None:
    """Why a file holding a token is not private, as ssh judges a private key:
    others may access it, or (``owned``) it belongs to someone else. None if private."""
    import stat as st

    mode = st.S_IMODE(stat.st_mode)
    mine = not hasattr(os, "getuid") or stat.st_uid == os.getuid()
    if owned and not mine:
        return f"it belongs to another user (uid {stat.st_uid})"
    if mine and mode & 0o077:
        return f"other users can access it (mode {mode:04o})"
    return None


def file_get(server_url: str) -> str | None:
    """The token saved by ``login --insecure-storage``; UnsafeTokenFile (exit 2)
    when the file is not private: a token others could read is not used."""
    path = tokens_file()
    try:
        with path.open("r", encoding="utf-8") as file:
            why = exposure(os.fstat(file.fileno()))
            text = file.read()
    except (OSError, UnicodeDecodeError):
        return None
    if why is not None:
        raise UnsafeTokenFile(
            f"not using the tokens in {path}: {why}; run `chmod 600 {path}` if it is "
            "yours (and consider its tokens seen), or remove it"
        )
    try:
        tokens = json.loads(text)
    except ValueError:
        return None
    token = tokens.get(server_url) if isinstance(tokens, dict) else None
    return token if isinstance(token, str) and token else None


def file_set(server_url: str, token: str) -> Path:
    """Save the token in the plain-text file (mode 0600); ConfigError (exit 2) when
    the file cannot be written."""
    path = tokens_file()
    tokens = _read_json(path)
    tokens[server_url] = token
    try:
        _write_json(path, tokens)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the token file {path} ({_reason(exc)}); make {path.parent} "
            "writable, or point FORGECTL_CONFIG_DIR at a writable directory"
        ) from None
    return path


def file_delete(server_url: str) -> bool:
    path = tokens_file()
    tokens = _read_json(path)
    if server_url not in tokens:
        return False
    del tokens[server_url]
    try:
        if tokens:
            _write_json(path, tokens)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot remove the token from {path} ({_reason(exc)}); make {path.parent} "
            "writable, or delete the file"
        ) from None
    return True


# -- reading a token ------------------------------------------------------------------


def read_token_file(path: str, warn: Callable[[str], None] | None = None) -> str:
    """A token kept in a file of its own (a profile's ``token_file``).

    Used even when others can read it (mounted secrets are often 0444), with a
    warning through ``warn``: the file is the user's choice, not forgectl's."""
    try:
        with open(path, encoding="utf-8") as file:
            # A secret mounted by root is not ours to judge; one of ours others can read is.
            why = exposure(os.fstat(file.fileno()), owned=False)
            token = file.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise UsageError(f"cannot read token_file {path}: {reason}") from None
    if not token:
        raise UsageError(f"token_file {path} is empty")
    if why is not None and warn is not None:
        warn(f"token_file {path} is not private: {why}; consider `chmod 600 {path}`")
    return token


def stored_token(
    server_url: str, warn: Callable[[str], None] | None = None
) -> tuple[str | None, str | None]:
    """(token, source) from the keyring, then the plain-text file; (None, None) if neither.

    A keyring that cannot be used, and a plain-text file others can read, are
    reported through ``warn`` and skipped (as ssh skips a private key others can
    read): the command goes on without that token.
    """
    if keyring_indexed(server_url):
        try:
            token = keyring_get(server_url)
        except KeyringUnavailable as exc:
            if warn is not None:
                warn(f"cannot read the token for {server_url} from the keyring: {exc}")
        else:
            if token:
                return token.strip(), "keyring"
    try:
        token = file_get(server_url)
    except UnsafeTokenFile as exc:
        if warn is not None:
            warn(str(exc))
        return None, None
    if token:
        return token.strip(), "file"
    return None, None


def check_stored(server_url: str, token: str) -> None:
    """Read the token back the way commands will; ConfigError (exit 2) unless that
    gives ``token``, so that ``login`` never says it stored what nobody will find."""
    found, _ = stored_token(server_url)
    if found == token.strip():
        return
    what = "a different token" if found else "nothing"
    raise ConfigError(
        f"the token for {server_url} was written, but reading it back gave {what}, so "
        f"commands would not use it; {WAYS_OUT}"
    )
