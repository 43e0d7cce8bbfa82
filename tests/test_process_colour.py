"""A process's own colours in pretty mode: the one escaping function keeps SGR and
nothing else; raw chunks cut inside a sequence; a command's output in an agent's
tool call. (On the real server, on a pseudo-terminal: tests/test_terminal_manners.py.)"""

from __future__ import annotations

import io

from rich.text import Text
from test_agent_view import command, line

from forgectl.escape import escape, escape_keeping_colour, strip_colour
from forgectl.events import RawChunk
from forgectl.output.pretty import PrettyRenderer


class Kept(io.BytesIO):
    def close(self) -> None:  # what was written stays readable
        pass


def test_escape_keeping_colour_keeps_sgr_only() -> None:
    text = "\x1b[1;32mok\x1b[0m \x1b]0;title\x07 \x1b[2J \x1b[38;2;1;2;3mrgb\x1b[m\r\x08"
    kept = escape_keeping_colour(text)
    assert kept == (
        "\x1b[1;32mok\x1b[0m \\x1b]0;title\\x07 \\x1b[2J \x1b[38;2;1;2;3mrgb\x1b[m\\x0d\\x08"
    )
    assert escape_keeping_colour("plain\ttext\n") == escape("plain\ttext\n")
    assert strip_colour(text) == "ok \x1b]0;title\x07 \x1b[2J rgb\r\x08"
    assert escape(strip_colour(text)) == escape_keeping_colour(strip_colour(text))


def test_pretty_raw_output_keeps_a_colour_cut_between_chunks() -> None:
    out = Kept()
    renderer = PrettyRenderer(out, color="always")
    for piece in (b"a \x1b[3", b"1mred\x1b", b"[0m b\n", b"cut \x1b["):
        renderer.render(RawChunk(piece, "stdout"))
    renderer.close()
    shown = out.getvalue().decode()
    assert Text.from_ansi(shown.split("\n")[0]).plain == "a red b", shown
    assert "\x1b[31mred" in shown, shown
    # a sequence that never completes is shown as text at the end, not lost
    assert shown.endswith("cut \\x1b["), shown


def test_a_commands_output_keeps_its_colours_in_an_agent_tool_call() -> None:
    entry = line(command("\x1b[32m3 passed\x1b[0m \x1b]0;t\x07", cmd="pytest"))
    for color, kept in (("always", True), ("never", False)):
        out = Kept()
        renderer = PrettyRenderer(out, color=color)
        renderer.render(entry)
        renderer.close()
        shown = out.getvalue().decode()
        assert ("\x1b[32m3 passed" in shown) is kept, shown
        assert "\\x1b]0;t\\x07" in shown and "\x1b]" not in shown
        assert "\\x1b[32m" not in shown  # never shown as text
        assert "3 passed" in Text.from_ansi(shown).plain
