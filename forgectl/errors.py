"""One exception family, each member carrying the exit code a script sees.

Errors carry facts as fields (``url``, ``status``, ``hint``...), so a library
user can act on them and the command line can phrase its own advice: the core
never tells anyone to pass a flag. :class:`Hint` names what would help.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """forgectl's exit statuses, each with its meaning. Scripts may rely on every value.

    ``meaning`` is what the code says, for help text, man pages and the README;
    ``exit_status_only`` marks the codes only ``--exit-status`` gives (they stand
    for how a process ended, not for an error of forgectl's).
    """

    meaning: str
    exit_status_only: bool

    def __new__(cls, value: int, meaning: str, exit_status_only: bool = False) -> ExitCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        member.exit_status_only = exit_status_only
        return member

    OK = 0, "success"
    ERROR = 1, "unexpected error (a bug: please report it)"
    USAGE = 2, "usage error (a bad flag or bad input given by the user)"
    CONNECT = 3, "cannot connect (server down, DNS, TLS, retries spent)"
    AUTH = 4, "authentication required or rejected (HTTP 401/403)"
    NOT_FOUND = 5, "not found (an unknown process or attempt, HTTP 404)"
    PROTOCOL = 6, "protocol error (the server answered, but not as either known dialect)"
    STATUS_UNKNOWN = 7, "status unknown (the process ended, the server did not say how)", True
    OUTPUT = 8, "cannot write the output (disk full, I/O error, closed)"
    PROCESS_FAILED = 125, "process failed (without an exit code)", True
    PROCESS_STOPPED = 137, "process stopped (killed, no exit code)", True
    INTERRUPTED = 130, "interrupted (SIGINT, Ctrl-C: forgectl dies by the signal)"
    TERMINATED = 143, "terminated (SIGTERM: forgectl dies by the signal)"

    @property
    def label(self) -> str:
        """The meaning without its details: ``"cannot connect"``."""
        return self.meaning.split(" (")[0]

    @classmethod
    def summary(cls) -> str:
        """Every code and its meaning in one sentence (the root ``--help``)."""

        own = ", ".join(f"{int(m)} {m.label}" for m in cls if not m.exit_status_only)
        process = ", ".join(f"{int(m)} {m.label}" for m in cls if m.exit_status_only)
        return f"{own}; with --exit-status: the process's own exit code, or {process}"


class Hint(enum.Enum):
    """What would help with an error; the CLI turns each into its flags."""

    #: The certificate is not trusted: a CA bundle (``cacert``), or no verification.
    TRUST = "trust"
    #: The certificate is refused for what a CA bundle cannot cure (a name, a date,
    #: or the bundle given did not sign it): only no verification helps.
    INSECURE = "insecure"
    #: The server wants a token, or refused the one given.
    TOKEN = "token"
    #: The handshake did not complete in time: a longer open timeout may help.
    OPEN_TIMEOUT = "open-timeout"
    #: The server speaks another dialect than the one chosen.
    DIALECT = "dialect"
    #: The server does not answer like a Forge server at that URL: check the server.
    SERVER = "server"
    #: A message was over the size limit: a larger limit would accept it.
    MESSAGE_SIZE = "message-size"


class ForgeError(Exception):
    """Base of every error forgectl reports; ``str()`` is the one-line message.

    ``url``: the URL that failed, when there is one; ``status``: the HTTP status the
    server answered; ``answered``: what the server answered, in a few words (``HTTP
    404``, ``an HTML page (HTTP 200)``, ``HTTP/1.0 404 File not found``: a plain web
    server), when it answered something else than what was asked for; ``hint``:
    what would help (:class:`Hint`).
    """

    exit_code: ExitCode = ExitCode.ERROR
    #: True when trying again later may succeed (server down, 5xx, dropped link).
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status: int | None = None,
        hint: Hint | None = None,
        answered: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.status = status
        self.hint = hint
        self.answered = answered

    def __str__(self) -> str:
        return self.message

    def again(self, message: str) -> ForgeError:
        """The same error (class and fields) with another message."""
        error = type(self).__new__(type(self))
        ForgeError.__init__(
            error, message, url=self.url, status=self.status, hint=self.hint, answered=self.answered
        )
        error.__dict__.update({k: v for k, v in self.__dict__.items() if k != "message"})
        error.message = message
        return error


class UsageError(ForgeError):
    exit_code = ExitCode.USAGE


class InvalidValue(UsageError):
    """A value given for a parameter (``since``, ``level``, ``grep``...) cannot be used.

    ``param`` names the library parameter; the CLI names its flag instead.
    """

    def __init__(self, param: str, value: object, reason: str) -> None:
        super().__init__(f"invalid {param} {value!r}: {reason}")
        self.param = param
        self.value = value
        self.reason = reason


class AmbiguousId(UsageError):
    """An id prefix that several ids start with, as git says of a short hash.

    ``kind`` (``"process"``, ``"attempt"``...), ``given`` (the prefix) and
    ``candidates``: (id, what it is) pairs, every id that starts with it.
    """

    def __init__(self, kind: str, given: str, candidates: list[tuple[str, str]]) -> None:
        from .escape import escape_line

        named = [
            escape_line(f"{ident} ({about})" if about else ident) for ident, about in candidates[:6]
        ]
        more = f" and {len(candidates) - 6} more" if len(candidates) > 6 else ""
        plural = f"{kind}es" if kind.endswith("s") else f"{kind}s"
        super().__init__(
            f"{kind} id {given} is ambiguous: {len(candidates)} {plural} start with it: "
            + ", ".join(named)
            + more
        )
        self.kind = kind
        self.given = given
        self.candidates = candidates


class ConnectError(ForgeError):
    """The server could not be reached (refused, DNS, TLS, timeout)."""

    exit_code = ExitCode.CONNECT
    retryable = True


class ServerError(ConnectError):
    """The server answered the handshake with a 5xx: it may heal."""


class StreamLost(ConnectError):
    """An established stream dropped before its normal end."""


class FatalConnectError(ConnectError):
    """Cannot connect, and retrying cannot help (bad TLS certificate, bad host)."""

    retryable = False


class AuthError(ForgeError):
    exit_code = ExitCode.AUTH


class NotFoundError(ForgeError):
    exit_code = ExitCode.NOT_FOUND


class ProtocolError(ForgeError):
    exit_code = ExitCode.PROTOCOL


class MessageTooBig(ProtocolError):
    """The server sent a message over the size limit (retrying would get it again)."""

    def __init__(self, size: int | None, limit: int | None) -> None:
        self.size = size
        self.limit = limit
        what = f"a message of {_mib(size)}" if size is not None else "a message"
        over = f"the {_mib(limit)} limit" if limit is not None else "the size limit"
        super().__init__(f"the server sent {what}, over {over}", hint=Hint.MESSAGE_SIZE)


def _mib(size: int) -> str:
    mib = size / (1 << 20)
    return f"{mib:.0f} MiB ({size:,} bytes)" if mib >= 1 else f"{size:,} bytes"


class ConfigError(UsageError):
    """A config file or profile that cannot be used."""


class OutputError(ForgeError):
    """stdout cannot be written (a closed pipe is not an error: it ends quietly)."""

    exit_code = ExitCode.OUTPUT
