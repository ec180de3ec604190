"""Named devices (``edgeaffect device add``): where each is reached, what catalog device it is,
and where edgeaffect keeps its venv and bundles there. Kept in ``devices.toml`` (one table a
device), written atomically."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgeaffect.errors import InputError
from edgeaffect.home import devices_file

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\])$")
DEFAULT_ROOT = ".edgeaffect"  # under the remote user's home
DEFAULT_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class Device:
    name: str
    user: str
    host: str  # a name, an IPv4 address or a bracketed IPv6 one
    port: int
    kind: str  # a roofline catalog device: what the measurements calibrate
    root: str = DEFAULT_ROOT
    identity: str | None = None  # a private key file; None: the user's agent and ssh config
    timeout_s: float = DEFAULT_TIMEOUT_S
    extra: dict = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    @property
    def known_hosts_name(self) -> str:
        """How OpenSSH names the host in known_hosts: ``[host]:port`` off port 22."""
        bare = self.host.strip("[]")
        return bare if self.port == 22 else f"[{bare}]:{self.port}"


def parse_address(text: str) -> tuple[str, str, int]:
    """``USER@HOST[:PORT]`` (IPv6 in brackets) -> (user, host, port)."""
    user, at, rest = text.partition("@")
    if not at or not USER.match(user):
        raise InputError(f"--ssh '{text}': expected USER@HOST[:PORT], e.g. pi@raspberrypi.local or pi@[fe80::1]:2222")
    host, port = rest, "22"
    if rest.startswith("["):
        close = rest.find("]")
        host, tail = rest[: close + 1], rest[close + 1:]
        if close < 0 or (tail and not tail.startswith(":")):
            raise InputError(f"--ssh '{text}': an IPv6 address goes in brackets, e.g. pi@[fe80::1]:22")
        port = tail[1:] or "22"
    elif ":" in rest:
        host, port = rest.rsplit(":", 1)
    if not HOST.match(host) or host.startswith("-"):
        raise InputError(f"--ssh '{text}': '{host}' is not a host name or address")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InputError(f"--ssh '{text}': port must be 1-65535, got '{port}'")
    return user, host, int(port)


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise InputError(f"device name '{name}': use letters, digits, '-' and '_' (at most 32, starting with a "
                         "letter or digit)")
    return name


def check_kind(kind: str) -> str:
    from edgeaffect.roofline.devices import load_catalog

    catalog = load_catalog()
    kinds = sorted(k for k in catalog if k != "host")
    if kind not in kinds:
        import difflib

        close = difflib.get_close_matches(kind, kinds, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise InputError(f"unknown device kind '{kind}': {hint}(the catalog's: {', '.join(kinds)})")
    return kind


def load_devices(path: Path | None = None) -> dict[str, Device]:
    path = path or devices_file()
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"device list {path} is not valid TOML ({exc}): fix or delete it") from None
    out = {}
    for name, t in data.items():
        try:
            out[name] = Device(check_name(name), t["user"], t["host"], int(t["port"]), t["kind"],
                               t.get("root", DEFAULT_ROOT), t.get("identity"),
                               float(t.get("timeout_s", DEFAULT_TIMEOUT_S)))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"device list {path}: [{name}] is damaged ({type(exc).__name__}: {exc}); "
                             f"remove it with `edgeaffect device remove {name}` and add it again") from None
    return out


def get_device(name: str) -> Device:
    devices = load_devices()
    if name not in devices:
        known = ", ".join(sorted(devices)) or "none yet"
        raise InputError(f"no device named '{name}' (known: {known}); add it with "
                         f"`edgeaffect device add {name} --ssh USER@HOST --kind KIND`")
    return devices[name]


def _toml_table(d: Device) -> str:
    lines = [f"[{d.name}]"]
    for key, value in asdict(d).items():
        if key in ("name", "extra") or value is None:
            continue
        # JSON strings and numbers are valid TOML basic strings and numbers
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines)


def save_devices(devices: dict[str, Device], path: Path | None = None) -> Path:
    from edgeaffect.io import atomic_write_text

    path = path or devices_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# Devices edgeaffect reaches over SSH (`edgeaffect device add`); no passwords here.\n\n"
    text += "\n\n".join(_toml_table(d) for d in sorted(devices.values(), key=lambda d: d.name)) + "\n"
    atomic_write_text(path, text)
    return path
