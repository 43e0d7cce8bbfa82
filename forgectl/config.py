"""Profiles: named server settings in ``config.toml``.

The file lives in forgectl's config directory: ``$FORGECTL_CONFIG_DIR``, else the
platform's (platformdirs): on Linux ``$XDG_CONFIG_HOME/forgectl``, else
``~/.config/forgectl``; on macOS ``~/Library/Application Support/forgectl``; on
Windows ``%APPDATA%\forgectl``::

    default_profile = "work"          # optional; else a profile named "default"

    [profiles.work]
    server = "https://forge.example.com"
    api = "documented"                # auto | documented | forge
    output = "json"                   # json | pretty
    cacert = "~/certs/company-ca.pem" # relative paths: relative to the config dir
    insecure = false
    token_file = "/run/secrets/forge" # a file holding the token (e.g. a mounted secret)

A profile only fills what flags and environment variables left unset.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .constants import ENV_CONFIG_DIR
from .dialects import API_CHOICES
from .errors import ConfigError

CONFIG_FILE = "config.toml"
DEFAULT_PROFILE = "default"

_CHOICES: dict[str, tuple[str, ...]] = {
    "api": API_CHOICES,
    "output": ("json", "pretty"),
}
_STRINGS = ("server", "api", "output", "cacert", "token_file")
_PATHS = ("cacert", "token_file")
_KEYS = (*_STRINGS, "insecure")


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    server: str | None = None
    api: str | None = None
    output: str | None = None
    cacert: str | None = None
    insecure: bool | None = None
    token_file: str | None = None


def config_dir() -> Path:
    """forgectl's config directory (it may not exist yet)."""
    override = os.environ.get(ENV_CONFIG_DIR)
    if override:
        return Path(override).expanduser()
    if sys.platform not in ("darwin", "win32"):
        # What platformdirs answers here, without importing it (and tempfile,
        # shutil, bz2, lzma with it: about 6 ms of every run); except that the
        # XDG spec says to ignore a relative path, which platformdirs would use.
        xdg = os.environ.get("XDG_CONFIG_HOME", "")
        base = Path(xdg) if xdg.strip() and os.path.isabs(xdg) else Path.home() / ".config"
        return base / "forgectl"
    import platformdirs

    return Path(platformdirs.user_config_dir("forgectl", appauthor=False, roaming=True))


def config_path() -> Path:
    return config_dir() / CONFIG_FILE


def load_config(path: Path | None = None) -> dict[str, Any]:
    """The parsed config file; an empty dict when there is none."""
    path = path or config_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    import tomllib

    try:
        config = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return config


def permission_warnings(path: Path | None = None) -> list[str]:
    """Why the config file could have been changed by someone else (written by other
    users, or in a directory they can write), as warnings; none when it is safe.

    Whoever can change it can point forgectl at a server of theirs, and the token
    goes with it (ssh refuses such a config; forgectl warns and goes on)."""
    import stat

    path = path or config_path()
    try:
        info = path.stat()
        parent = path.parent.stat()
    except OSError:
        return []
    lines = []
    me = os.getuid() if hasattr(os, "getuid") else None
    if me is not None and info.st_uid not in (me, 0):
        lines.append(f"{path} belongs to another user (uid {info.st_uid}): they can change it")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022:
        lines.append(
            f"{path} is writable by other users (mode {mode:04o}): they could point "
            f"forgectl at a server of theirs, token included; run `chmod go-w {path}`"
        )
    dir_mode = stat.S_IMODE(parent.st_mode)
    if dir_mode & 0o022 and not dir_mode & stat.S_ISVTX:
        lines.append(
            f"{path.parent} is writable by other users (mode {dir_mode:04o}): they could "
            f"replace {path.name}; run `chmod go-w {path.parent}`"
        )
    return lines


def select_profile(name: str | None, path: Path | None = None) -> Profile | None:
    """The profile named ``name``, else the default one, else None.

    Naming a profile that does not exist is an error; having none at all is not.
    """
    path = path or config_path()
    config = load_config(path)
    profiles = config.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: 'profiles' must be a table ([profiles.NAME])")
    if name is None:
        default = config.get("default_profile")
        if default is not None and not isinstance(default, str):
            raise ConfigError(f"{path}: default_profile must be a string")
        if default is None:
            if DEFAULT_PROFILE not in profiles:
                return None
            default = DEFAULT_PROFILE
        name = default
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none defined"
        raise ConfigError(f"unknown profile {name!r} (profiles in {path}: {known})")
    return _profile(name, profiles[name], path)


def _profile(name: str, table: object, path: Path) -> Profile:
    where = f"{path}: profile {name!r}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _KEYS:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(_KEYS)})")
        if key == "insecure":
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: insecure must be true or false")
        elif not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: {key} must be a non-empty string")
        elif key in _CHOICES and value not in _CHOICES[key]:
            raise ConfigError(f"{where}: {key} must be one of {', '.join(_CHOICES[key])}")
        elif key in _PATHS:
            value = str(path.parent / Path(os.path.expandvars(value)).expanduser())
        values[key] = value
    return Profile(name, **values)
