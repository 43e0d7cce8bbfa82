"""One exception family, each member carrying the exit code a script sees."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """forgectl's exit statuses. Scripts may rely on every value here."""

    OK = 0
    ERROR = 1  # unexpected error (a bug: please report it)
    USAGE = 2  # bad command line or bad input given by the user
    CONNECT = 3  # cannot connect: server down, DNS, TLS, retries spent
    AUTH = 4  # authentication required or rejected (HTTP 401/403)
    NOT_FOUND = 5  # unknown process or attempt (HTTP 404)
    PROTOCOL = 6  # the server answered, but not as either known dialect
    STATUS_UNKNOWN = 7  # --exit-status: the process ended, the server did not say how
    OUTPUT = 8  # stdout cannot be written (disk full, I/O error, closed)
    PROCESS_FAILED = 125  # --exit-status: the process failed without an exit code
    PROCESS_STOPPED = 137  # --exit-status: the process was killed/stopped (no exit code)
    INTERRUPTED = 130  # Ctrl-C (SIGINT)
    TERMINATED = 143  # SIGTERM


EXIT_CODE_HELP = (
    "0 success, 1 unexpected error, 2 usage error, 3 cannot connect, "
    "4 authentication required or rejected, 5 not found, 6 protocol error, "
    "8 cannot write the output (disk full, I/O error), "
    "130 interrupted (Ctrl-C), 143 terminated (SIGTERM); with --exit-status: the "
    "process's own exit code, 137 if it was stopped, 125 if it failed without a code, "
    "7 if its status could not be learnt"
)


class ForgeError(Exception):
    """Base of every error forgectl reports; ``str()`` is the one-line message."""

    exit_code: ExitCode = ExitCode.ERROR
    #: True when trying again later may succeed (server down, 5xx, dropped link).
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(ForgeError):
    exit_code = ExitCode.USAGE


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
        super().__init__(f"the server sent {what}, over {over} (--max-message-size MIB raises it)")


def _mib(size: int) -> str:
    mib = size / (1 << 20)
    return f"{mib:.0f} MiB ({size:,} bytes)" if mib >= 1 else f"{size:,} bytes"


class ConfigError(UsageError):
    """A config file or profile that cannot be used."""


class OutputError(ForgeError):
    """stdout cannot be written (a closed pipe is not an error: it ends quietly)."""

    exit_code = ExitCode.OUTPUT
