"""Help that reads: connection options once, ranges in words, forgiving names,
and typos that are usage errors rather than silence."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from forgectl.cli.main import cli
from forgectl.errors import ExitCode

COMMANDS = (["ps"], ["logs"], ["monitor"], ["diff"], ["login"], ["logout"], ["auth", "status"])
CONNECTION = ("--server", "--token", "--api", "--profile", "--cacert", "--insecure")


def help_of(*args: str) -> str:
    result = CliRunner(env={"COLUMNS": "100"}).invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_subcommand_help_names_connection_options_in_one_place(command: list[str]) -> None:
    text = help_of(*command)
    head, section = text.split("Connection options:", 1)
    assert "forgectl --help" in " ".join(section.split()[:40])
    described = [line.split()[0] for line in head.splitlines() if line.startswith("  -")]
    for name in CONNECTION:
        assert name in section, name  # named in the one line...
        assert name not in [row.rstrip(",") for row in described], name  # ...never described
    assert "[env var:" not in text


def test_root_help_describes_connection_options_in_full() -> None:
    text = " ".join(help_of().split())
    for name, env in (("--server", "FORGE_URL"), ("--token", "FORGE_TOKEN")):
        assert name in text and f"env var: {env}" in text


def test_subcommand_help_is_short() -> None:
    assert len(help_of("logs").splitlines()) < 65  # 82 on main, before
    assert len(help_of("auth", "status").splitlines()) < 30


def test_ranges_are_written_for_people() -> None:
    text = help_of("logs")
    assert "9223372036854775807" not in text and "x>" not in text and "<=x" not in text
    assert "(default 30 s)" in text


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["logs", "p", "--tail", "-1"], "give 0 or more"),
        (["logs", "p", "--tail", "many"], "not a whole number"),
        (["logs", "p", "--settle", "0"], "more than 0 seconds"),
        (["monitor", "--type", "bogus"], "process_started"),
        (["-s", "", "logs", "p"], "the server URL is empty"),
        (["logs", "p", "-s", " "], "the server URL is empty"),
        (["logs", "p", "--profile", ""], "the profile name is empty"),
    ],
)
def test_bad_values_are_usage_errors(args: list[str], says: str) -> None:
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("forgectl")
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == ExitCode.USAGE, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("forgectl: error: ") and says in line


def test_level_warning_means_warn() -> None:
    from forgectl.filters import parse_levels

    assert parse_levels(["warning"]) == parse_levels(["warn"])
