"""Real keyring backends for the tests (not mocks): in memory, one that hangs, one
whose errors quote the password, one that forgets what it was given.

All have ``priority = -1`` so keyring never picks them as a default; tests install
them with ``keyring.set_keyring`` (the autouse fixture in conftest.py) or, in a
subprocess, with ``PYTHON_KEYRING_BACKEND=keyring_backends.HangingKeyring`` and this
directory on ``PYTHONPATH``.
"""

from __future__ import annotations

import threading

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    priority = -1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.entries[(service, username)]
        except KeyError:
            raise PasswordDeleteError("no such password") from None


class HangingKeyring(KeyringBackend):
    """A locked backend waiting for an unlock dialog nobody answers."""

    priority = -1
    release = threading.Event()

    def _hang(self) -> None:
        self.release.wait(60)

    def get_password(self, service: str, username: str) -> str | None:
        self._hang()
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        self._hang()

    def delete_password(self, service: str, username: str) -> None:
        self._hang()


class LeakyKeyring(KeyringBackend):
    """A backend whose errors quote the password it was given (some do)."""

    priority = -1

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise ValueError(f"cannot store {password!r} for {username}: collection locked")

    def delete_password(self, service: str, username: str) -> None:
        raise PasswordDeleteError("no such password")


class Locked(BaseException):
    """Not an Exception: what a backend built on another framework's signals may raise."""


class LeakierKeyring(KeyringBackend):
    """Quotes the password too, in an exception that is not an ``Exception``: it
    must not escape as a traceback (which would show the password)."""

    priority = -1

    def get_password(self, service: str, username: str) -> str | None:
        raise Locked(f"cannot read {username}: collection locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise Locked(f"cannot store {password!r} for {username}: collection locked")

    def delete_password(self, service: str, username: str) -> None:
        raise Locked("collection locked")


class ForgetfulKeyring(KeyringBackend):
    """Accepts every password and keeps none (a keyring whose collection is not
    persisted): what ``login`` stored must be read back before it says so."""

    priority = -1

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        pass

    def delete_password(self, service: str, username: str) -> None:
        raise PasswordDeleteError("no such password")
