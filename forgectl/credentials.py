"""Where tokens are kept: the OS keyring, or a plain-text file for headless machines.

Tokens are stored per server, keyed by its normalized URL (:attr:`Server.url`), in
the keyring under the service ``forgectl``. Every keyring call runs in a daemon
thread and is abandoned after a few seconds (``FORGECTL_KEYRING_TIMEOUT``): a locked
or hanging backend must not wedge a CI step, so a timeout counts as "no keyring".

keyring is imported lazily, and only for servers that have a token in it: a small
index (``keyring.json`` in the config dir) records which servers do, so a command
for any other server never pays keyring's import time.
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
from .errors import UsageError

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

    def __init__(self, reason: str) -> None:
        super().__init__(f"no usable keyring ({reason}); {WAYS_OUT}")
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
    """Run ``call(keyring)`` in a daemon thread; raise KeyringUnavailable if it cannot."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            import keyring
            from keyring.backends import fail, null

            backend = keyring.get_keyring()
            if isinstance(backend, (fail.Keyring, null.Keyring)):
                raise KeyringUnavailable(f"keyring backend is {type(backend).__module__}")
            outcome.append((True, call(keyring)))
        except BaseException as exc:
            outcome.append((False, exc))

    timeout = keyring_timeout()
    thread = threading.Thread(target=target, name="forgectl-keyring", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise KeyringUnavailable(f"it did not answer within {timeout:g} s")
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    if isinstance(value, KeyringUnavailable):
        raise value
    from keyring.errors import KeyringError

    if isinstance(value, KeyringError):
        raise KeyringUnavailable(_first_line(value) or type(value).__name__) from None
    raise value


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
    _with_keyring(lambda kr: kr.set_password(KEYRING_SERVICE, server_url, token))
    _index_update(server_url, present=True)


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
    # Only an optimization, but without it the entry is not looked up.
    with contextlib.suppress(OSError):
        _write_json(path, {"servers": servers})


# -- the plain-text file ----------------------------------------------------------------


def tokens_file() -> Path:
    return _dir() / TOKENS_FILE


def file_get(server_url: str) -> str | None:
    token = _read_json(tokens_file()).get(server_url)
    return token if isinstance(token, str) and token else None


def file_set(server_url: str, token: str) -> Path:
    path = tokens_file()
    tokens = _read_json(path)
    tokens[server_url] = token
    _write_json(path, tokens)
    return path


def file_delete(server_url: str) -> bool:
    path = tokens_file()
    tokens = _read_json(path)
    if server_url not in tokens:
        return False
    del tokens[server_url]
    if tokens:
        _write_json(path, tokens)
    else:
        path.unlink(missing_ok=True)
    return True


# -- reading a token ------------------------------------------------------------------


def read_token_file(path: str) -> str:
    """A token kept in a file of its own (a profile's ``token_file``)."""
    try:
        token = Path(path).read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise UsageError(f"cannot read token_file {path}: {reason}") from None
    if not token:
        raise UsageError(f"token_file {path} is empty")
    return token


def stored_token(
    server_url: str, warn: Callable[[str], None] | None = None
) -> tuple[str | None, str | None]:
    """(token, source) from the keyring, then the plain-text file; (None, None) if neither.

    A keyring that cannot be used is reported through ``warn`` and skipped.
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
    token = file_get(server_url)
    if token:
        return token.strip(), "file"
    return None, None
