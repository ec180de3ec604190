"""Where the desktop keeps what it knows of the user's devices.

``EDGEAFFECT_HOME`` puts everything in one folder (tests, CI jobs); otherwise the XDG
locations: the device list and the host keys the user accepted under the config home, the
measurements under the data home."""

from __future__ import annotations

import os
from pathlib import Path


def _xdg(var: str, default: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / default) / "edgeaffect"


def config_dir() -> Path:
    home = os.environ.get("EDGEAFFECT_HOME")
    return Path(home) if home else _xdg("XDG_CONFIG_HOME", ".config")


def data_dir() -> Path:
    home = os.environ.get("EDGEAFFECT_HOME")
    return Path(home) if home else _xdg("XDG_DATA_HOME", ".local/share")


def devices_file() -> Path:
    return config_dir() / "devices.toml"


def known_hosts_file() -> Path:
    return config_dir() / "known_hosts"


def measurements_dir() -> Path:
    return data_dir() / "measurements"
