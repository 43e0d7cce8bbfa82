"""The core's errors, phrased for the command line: its facts, then the flags that help.

The core carries facts and a :class:`~forgectl.errors.Hint`; only here do they
become ``--cacert FILE`` or ``FORGE_TOKEN``.
"""

from __future__ import annotations

from ..constants import ENV_SERVER, ENV_TOKEN
from ..errors import ForgeError, Hint, InvalidValue

#: Library parameter → the flag that sets it.
FLAGS = {
    "since": "--since",
    "level": "--level",
    "grep": "--grep",
    "tail": "--tail",
    "status": "--status",
    "run_reason": "--run-reason",
}


def phrase(error: ForgeError, api: str) -> str:
    """``str(error)`` with CLI advice: flag names for parameters, and the hint."""
    if isinstance(error, InvalidValue) and error.param in FLAGS:
        return f"invalid {FLAGS[error.param]} {error.value!r}: {error.reason}"
    message = str(error)
    advice = _advice(error.hint, api)
    return message + advice if advice and advice.strip(" ;()") not in message else message


def _advice(hint: Hint | None, api: str) -> str:
    if hint is Hint.TRUST:
        return "; use --cacert FILE or --insecure"
    if hint is Hint.INSECURE:
        return ", or use --insecure"
    if hint is Hint.TOKEN:
        return f"; run `forgectl login` or set {ENV_TOKEN}"
    if hint is Hint.OPEN_TIMEOUT:
        return " (--open-timeout)"
    if hint is Hint.DIALECT:
        # The dialect was chosen: the other one may be right, or the server wrong.
        if api == "documented":
            return f"; use --api forge or auto (or check --server, {ENV_SERVER})"
        if api == "forge":
            return f"; try --api documented or auto (or check --server, {ENV_SERVER})"
        return f"; is --server ({ENV_SERVER}) the Forge server?"
    if hint is Hint.MESSAGE_SIZE:
        return " (--max-message-size MIB raises it)"
    if hint is Hint.SERVER:
        return f"; is --server ({ENV_SERVER}) the Forge server?"
    return ""
