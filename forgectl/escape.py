"""Making server text safe for a terminal.

Everything a server says is untrusted: a log message, a close reason, an HTTP
error page, a JSON key. A terminal obeys what it reads, so an escape sequence
in any of them could set the window title, clear the screen, write to the
clipboard (OSC 52) or make a terminal answer as if typed. Two rules, one module:

- :func:`escape` / :func:`escape_line`: text shown *as text* (stderr lines,
  pretty output). Every control character is shown as ``\\xNN``, so nothing in
  it can act on the terminal, and nothing can fake a line of forgectl's own.
  :func:`escape_keeping_colour` is :func:`escape` for a process's own output in
  pretty mode: its colours (SGR sequences) stay, for the renderer to turn into
  styles (or drop, :func:`strip_colour`, when colour is off); everything else is
  escaped alike.
- :class:`TerminalFilter`: a process's raw output written to a terminal
  (``logs --raw``). Colours (SGR), ``\\r``, backspace, line erase and moves
  within the line are kept, so progress bars and colours still work; every
  other control sequence (OSC, DCS, APC, PM, SOS strings, screen and mode
  changes, cursor moves to other lines) is removed. Sequences split across
  chunks are recognised. Into a file or a pipe, raw output is never filtered.
"""

from __future__ import annotations

import codecs
import re

# C0 controls but tab and newline, DEL, C1 controls; and the bidirectional
# embeddings, overrides and isolates, which reorder what a reader sees.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_LINE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` with every control character shown as ``\\xNN`` (tab and newline kept)."""
    return _CONTROL.sub(_shown, text)


#: A colour or attribute change (SGR): ``ESC [ params m``.
_SGR = re.compile(r"\x1b\[[0-9;:]*m")


def escape_keeping_colour(text: str) -> str:
    """:func:`escape`, but SGR sequences (colours, bold...) are left as they are;
    every other control character, and every other escape sequence's ESC, is
    shown as ``\\xNN``. The result holds no control character but tab, newline
    and the ESC of an SGR sequence."""
    if "\x1b" not in text:
        return escape(text)
    out: list[str] = []
    pos = 0
    for match in _SGR.finditer(text):
        out.append(escape(text[pos : match.start()]))
        out.append(match.group())
        pos = match.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def strip_colour(text: str) -> str:
    """``text`` without its SGR sequences (colour off: ``--color never``, NO_COLOR)."""
    return _SGR.sub("", text) if "\x1b" in text else text


def escape_line(text: str) -> str:
    """``text`` for one line: as :func:`escape`, and newlines shown as ``\\x0a`` too,
    so that server text cannot start a line that looks like forgectl's own."""
    return _CONTROL_LINE.sub(_shown, text)


# -- raw output on a terminal ----------------------------------------------------------

_ESC = "\x1b"
#: What may reach the terminal untouched: tab, newline, carriage return, backspace.
_UNSAFE = re.compile("[\x00-\x07\x0b\x0c\x0e-\x1f\x7f-\x9f\udc80-\udc9f]")
#: CSI sequences kept: colours and attributes (SGR, ``m``), erase in line (``K``),
#: and moves within the line (``G`` column, ``C`` forward, ``D`` back).
_KEPT_CSI = re.compile(r"\x1b\[[0-9;:]*[mKGCD]")
#: What ends an OSC, DCS, APC, PM or SOS string: BEL, ST (ESC \\ or 0x9c), or
#: CAN/SUB, which abort it; ESC may also start the next sequence.
_STRING_END = re.compile("[\x07\x18\x1a\x1b\x9c]")
#: A CSI longer than this is junk: it is dropped without being kept in memory.
_MAX_CSI = 64

_TEXT, _ESCAPE, _INTERMEDIATE, _CSI, _STRING, _STRING_ESCAPE = range(6)


class TerminalFilter:
    """Raw output bytes → bytes safe to write to a terminal.

    Feed chunks as they come (:meth:`feed`), then :meth:`finish` at the end.
    Text stays byte for byte what the process wrote, bytes that are not UTF-8
    included; only control sequences are removed (counted in :attr:`removed`)
    and stray control characters shown as ``\\xNN``.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self._state = _TEXT
        self._csi: list[str] = []
        self._csi_size = 0
        #: How many control sequences were removed so far.
        self.removed = 0

    def feed(self, data: bytes) -> bytes:
        text = self._decoder.decode(data)
        if self._state == _TEXT and _UNSAFE.search(text) is None:
            if len(text) == len(data) and text.isascii():  # nothing held back or pending
                return data
            return text.encode("utf-8", "surrogateescape")
        return self._scan(text).encode("utf-8", "surrogateescape")

    def finish(self) -> bytes:
        """What is left at the end of the stream (an unfinished sequence is dropped)."""
        tail = self._scan(self._decoder.decode(b"", final=True))
        if self._state in (_ESCAPE, _INTERMEDIATE, _CSI):  # strings were counted
            self.removed += 1
        if self._state != _TEXT:
            self._state = _TEXT
            self._csi = []
        return tail.encode("utf-8", "surrogateescape")

    def _scan(self, text: str) -> str:
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            state = self._state
            if state == _TEXT:
                match = _UNSAFE.search(text, i)
                if match is None:
                    out.append(text[i:])
                    break
                start = match.start()
                out.append(text[i:start])
                i = start + 1
                char = text[start]
                if char == _ESC:
                    self._begin_csi(char)
                    self._state = _ESCAPE
                elif char == "\x9b":  # an 8-bit CSI: never kept
                    self._begin_csi(char)
                    self._state = _CSI
                elif char in "\x90\x98\x9d\x9e\x9f":  # 8-bit DCS, SOS, OSC, PM, APC
                    self.removed += 1
                    self._state = _STRING
                else:
                    out.append(_visible(char))
                continue
            char = text[i]
            code = ord(char)
            if state == _ESCAPE:
                i += 1
                if char == "[":
                    self._csi.append(char)
                    self._csi_size += 1
                    self._state = _CSI
                elif char in "]P_^X":  # OSC, DCS, APC, PM, SOS
                    self.removed += 1
                    self._state = _STRING
                elif 0x20 <= code <= 0x2F:  # ESC ( B, ESC # 8...: more to come
                    self._state = _INTERMEDIATE
                elif 0x30 <= code <= 0x7E:  # ESC c (reset), ESC 7/8, ESC M...
                    self.removed += 1
                    self._state = _TEXT
                else:  # not a sequence: drop the ESC, look at this character again
                    self.removed += 1
                    self._state = _TEXT
                    i -= 1
            elif state == _INTERMEDIATE:
                i += 1
                if 0x20 <= code <= 0x2F:
                    continue
                self.removed += 1
                self._state = _TEXT
                if not 0x30 <= code <= 0x7E:
                    i -= 1
            elif state == _CSI:
                i += 1
                if 0x20 <= code <= 0x3F:  # parameters and intermediates
                    if self._csi_size < _MAX_CSI:
                        self._csi.append(char)
                    self._csi_size += 1
                    continue
                self._state = _TEXT
                if 0x40 <= code <= 0x7E:
                    sequence = "".join(self._csi) + char
                    if self._csi_size < _MAX_CSI and _KEPT_CSI.fullmatch(sequence):
                        out.append(sequence)
                    else:
                        self.removed += 1
                else:  # a control inside the sequence: drop it, then handle this one
                    self.removed += 1
                    i -= 1
                self._csi = []
            elif state == _STRING:
                match = _STRING_END.search(text, i)
                if match is None:
                    break  # all of it belongs to the string
                i = match.end()
                self._state = _STRING_ESCAPE if match.group() == _ESC else _TEXT
            else:  # _STRING_ESCAPE: ESC \ ends the string; ESC anything starts anew
                if char == "\\":
                    i += 1
                    self._state = _TEXT
                else:
                    self._begin_csi(_ESC)
                    self._state = _ESCAPE
        return "".join(out)

    def _begin_csi(self, introducer: str) -> None:
        self._csi = [introducer]
        self._csi_size = 1


def _visible(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8 (surrogateescape)
        code -= 0xDC00
    return f"\\x{code:02x}"
