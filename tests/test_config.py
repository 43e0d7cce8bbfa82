"""Profiles in config.toml and their place in the precedence order."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import support
from click.testing import CliRunner

from forgectl.cli.main import cli
from forgectl.config import config_dir, select_profile
from forgectl.errors import ConfigError, ExitCode
from forgectl.settings import resolve

CONFIG = """\
default_profile = "work"

[profiles.work]
server = "https://forge.example.com"
api = "documented"
output = "json"
cacert = "ca.pem"

[profiles.local]
server = "http://127.0.0.1:9999"
api = "forge"
output = "pretty"
insecure = true
"""


def write_config(text: str) -> Path:
    path = config_dir() / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_no_config_means_no_profile() -> None:
    assert select_profile(None) is None
    assert resolve().server.url == "http://localhost:8887"


def test_config_dir_follows_xdg_and_the_override(
    isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config_dir() == isolated_env / "config" / "forgectl"
    monkeypatch.setenv("FORGECTL_CONFIG_DIR", str(tmp_path / "elsewhere"))
    assert config_dir() == tmp_path / "elsewhere"


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="the Linux (XDG) places")
@pytest.mark.parametrize("xdg", [None, "", "relative/dir"])
def test_config_dir_on_linux_is_unchanged_by_platformdirs(
    xdg: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without XDG_CONFIG_HOME (or with an empty or relative one, which the XDG spec
    says to ignore) the directory is ~/.config/forgectl, as before platformdirs."""
    monkeypatch.setenv("HOME", str(tmp_path))
    if xdg is None:
        monkeypatch.delenv("XDG_CONFIG_HOME")
    else:
        monkeypatch.setenv("XDG_CONFIG_HOME", xdg)
    assert config_dir() == tmp_path / ".config" / "forgectl"


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="the Linux (XDG) places")
@pytest.mark.parametrize("xdg", [None, "/abs/config", "   "])
def test_config_dir_on_linux_is_where_platformdirs_puts_it(
    xdg: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found without importing platformdirs (start-up), in the same place."""
    import platformdirs

    monkeypatch.setenv("HOME", str(tmp_path))
    if xdg is None:
        monkeypatch.delenv("XDG_CONFIG_HOME")
    else:
        monkeypatch.setenv("XDG_CONFIG_HOME", xdg)
    expected = platformdirs.user_config_dir("forgectl", appauthor=False, roaming=True)
    assert config_dir() == Path(expected)


def test_default_profile_key_names_the_default() -> None:
    path = write_config(CONFIG)
    profile = select_profile(None)
    assert profile is not None
    assert profile.name == "work"
    assert profile.server == "https://forge.example.com"
    assert profile.cacert == str(path.parent / "ca.pem")  # relative to the config dir


def test_a_profile_named_default_is_used_without_default_profile() -> None:
    write_config('[profiles.default]\nserver = "http://127.0.0.1:1234"\n')
    assert resolve().server.url == "http://127.0.0.1:1234"
    assert resolve().profile == "default"


def test_named_profile_fills_what_was_not_given() -> None:
    write_config(CONFIG)
    settings = resolve(profile="local")
    assert (settings.server.url, settings.api, settings.output, settings.insecure) == (
        "http://127.0.0.1:9999",
        "forge",
        "pretty",
        True,
    )


def test_explicit_values_beat_the_profile() -> None:
    write_config(CONFIG)
    settings = resolve(server="http://127.0.0.1:7", api="auto", profile="local")
    assert settings.server.url == "http://127.0.0.1:7"
    assert settings.api == "auto"
    assert settings.profile == "local"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[profiles.work\n", "invalid TOML"),
        ('[profiles.work]\nsrever = "x"\n', "unknown key 'srever'"),
        ('[profiles.work]\napi = "graphql"\n', "api must be one of"),
        ("[profiles.work]\ninsecure = 1\n", "insecure must be true or false"),
        ('profiles = "work"\n', "must be a table"),
        ('default_profile = "gone"\n[profiles.work]\n', "unknown profile 'gone'"),
    ],
)
def test_bad_config_is_a_config_error(text: str, message: str) -> None:
    write_config(text)
    with pytest.raises(ConfigError, match=message) as info:
        select_profile("work" if "gone" not in text else None)
    assert info.value.exit_code == ExitCode.USAGE


def test_unknown_profile_lists_the_known_ones() -> None:
    write_config(CONFIG)
    with pytest.raises(ConfigError, match=r"unknown profile 'nope'.*local, work"):
        select_profile("nope")


def test_cli_unknown_profile_is_one_line_and_exit_2() -> None:
    write_config(CONFIG)
    result = support.invoke(None, "--profile", "nope", "auth", "status")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "unknown profile 'nope'" in result.stderr


def test_cli_bad_config_is_exit_2() -> None:
    write_config("this is = = not toml\n")
    result = support.invoke(None, "auth", "status")
    assert result.exit_code == 2
    assert "invalid TOML" in result.stderr


def test_cli_profile_from_env_and_flag_and_env_precedence() -> None:
    write_config(CONFIG)
    runner = CliRunner()
    # FORGE_PROFILE picks the profile; its server is used.
    result = runner.invoke(cli, ["auth", "status"], env={"FORGE_PROFILE": "local"})
    assert result.exit_code == 0, result.stderr
    assert "server:  http://127.0.0.1:9999" in result.stdout
    assert "profile: local" in result.stdout
    # FORGE_URL beats the profile's server ...
    result = runner.invoke(
        cli,
        ["auth", "status"],
        env={"FORGE_PROFILE": "local", "FORGE_URL": "http://127.0.0.1:5555"},
    )
    assert "server:  http://127.0.0.1:5555" in result.stdout
    # ... and the flag beats FORGE_URL.
    result = runner.invoke(
        cli,
        ["--server", "127.0.0.1:6666", "auth", "status"],
        env={"FORGE_PROFILE": "local", "FORGE_URL": "http://127.0.0.1:5555"},
    )
    assert "server:  http://127.0.0.1:6666" in result.stdout
    # --profile beats FORGE_PROFILE; default_profile applies when none is named.
    result = runner.invoke(cli, ["auth", "status", "--profile", "local"])
    assert "profile: local" in result.stdout


def test_profile_token_file(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("tok-from-file-7Q\n")
    write_config(f'[profiles.default]\nserver = "http://127.0.0.1:1"\ntoken_file = "{secret}"\n')
    settings = resolve()
    assert (settings.token, settings.token_source) == ("tok-from-file-7Q", "token_file")
    # The environment still wins.
    settings = resolve(token="env-tok", token_from_env=True)
    assert settings.token_source == "FORGE_TOKEN"


def test_missing_token_file_is_a_clean_error(tmp_path: Path) -> None:
    write_config(f'[profiles.default]\ntoken_file = "{tmp_path / "absent"}"\n')
    result = support.invoke(None, "auth", "status")
    assert result.exit_code == 2
    assert "cannot read token_file" in result.stderr
