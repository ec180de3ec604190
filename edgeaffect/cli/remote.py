"""``edgeaffect device ...``: the user's own devices, reached over SSH (add, list, check, setup,
remove). ``bench`` / ``profile`` / ``predict`` take ``--on NAME`` to run there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgeaffect.cli._panels import DEVICE

app = typer.Typer()
device_app = typer.Typer(no_args_is_help=True, help="Your own devices over SSH: add, list, check, setup, remove.")
app.add_typer(device_app, name="device", rich_help_panel=DEVICE)


@device_app.command("add")
def add_cmd(name: Annotated[str, typer.Argument(help="A short name for the device (letters, digits, - and _).")],
            ssh: Annotated[str, typer.Option("--ssh", help="USER@HOST[:PORT] (IPv6 in brackets).")],
            kind: Annotated[str, typer.Option(help="The catalog device it is (rpi4, rpi5, jetson-orin-nano, ...): "
                                                   "what its measurements calibrate.")],
            identity: Annotated[Optional[Path], typer.Option(help="Private key file (default: your agent and ~/.ssh/config).")] = None,
            root: Annotated[str, typer.Option(help="Folder on the device for the venv and bundles (under the remote home unless absolute).")] = ".edgeaffect",
            timeout: Annotated[float, typer.Option(help="Seconds a command there may run before it is stopped.")] = 900.0,
            accept_host_key: Annotated[bool, typer.Option("--accept-host-key", help="Trust the device's host key as it is now (check its fingerprint first).")] = False,
            host_key_fingerprint: Annotated[Optional[str], typer.Option(help="Trust the host key only if it has this fingerprint (SHA256:...).")] = None):
    """Register a device. No password is stored: SSH keys and host keys as SSH does them."""
    from edgeaffect.remote.ops import add_device

    d = add_device(name, ssh, kind, root=root, identity=identity, timeout_s=timeout, accept_host_key=accept_host_key,
                   fingerprint=host_key_fingerprint)
    typer.echo(f"device {d.name}: {d.address}, {d.kind}; next: `edgeaffect device check {d.name}`")


@device_app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON (name -> settings).")] = False):
    """The devices you added."""
    from dataclasses import asdict

    from edgeaffect.home import devices_file
    from edgeaffect.remote.registry import load_devices

    devices = load_devices()
    if as_json:
        typer.echo(json.dumps({n: asdict(d) for n, d in devices.items()}, indent=2))
        return
    if not devices:
        typer.echo(f"no devices yet ({devices_file()}); add one with `edgeaffect device add NAME --ssh USER@HOST --kind KIND`")
        return
    typer.echo(f"{'name':16s} {'kind':20s} {'address':32s} root")
    for d in devices.values():
        typer.echo(f"{d.name:16s} {d.kind:20s} {d.address:32s} {d.root}")


@device_app.command("remove")
def remove_cmd(name: str):
    """Forget a device (its measurements stay in the store)."""
    from edgeaffect.remote.ops import remove_device

    remove_device(name)
    typer.echo(f"device {name} removed")


@device_app.command("check")
def check_cmd(name: str, as_json: Annotated[bool, typer.Option("--json")] = False):
    """Reachable? Python, edgeaffect, runtimes, CPU, governor, temperature, throttling."""
    import json

    from edgeaffect.remote.ops import check_device

    device, facts, notes = check_device(name)
    if as_json:
        typer.echo(json.dumps({"device": device.name, "kind": device.kind, "facts": facts, "notes": notes}, indent=2))
        return
    runtimes = ", ".join(f"{k} {v}" for k, v in sorted((facts.get("runtimes") or {}).items())) or "none"
    rows = [("reachable", f"yes ({device.address})"), ("kind", device.kind), ("cpu", facts.get("cpu")),
            ("machine", f"{facts.get('machine')}, {facts.get('cores')} cores, {facts.get('libc') or '?'}"),
            ("python", facts.get("python")), ("edgeaffect", facts.get("edgeaffect") or "not installed"),
            ("runtimes", runtimes), ("governor", facts.get("governor") or "not reported"),
            ("temperature", f"{facts['temperature_c']:g} °C" if facts.get("temperature_c") is not None else "not reported"),
            ("throttled", facts.get("throttled") or "not reported (vcgencmd absent)"),
            ("nvpmodel", facts.get("nvpmodel") or "not reported"),
            ("free space", f"{facts.get('free_bytes', 0) / 2**30:.2f} GiB under {facts.get('root')}")]
    for k, v in rows:
        typer.echo(f"{k:12s} {v}")
    for n in notes:
        typer.echo(f"note: {n}")


@device_app.command("setup")
def setup_cmd(name: str,
              wheel: Annotated[Optional[Path], typer.Option(help="The edgeaffect wheel to install (default: built from this checkout).")] = None,
              extra: Annotated[Optional[str], typer.Option(help="pip extra (default: the device's export target's: rpi, jetson).")] = None,
              offline: Annotated[bool, typer.Option("--offline", help="The device has no network: download every wheel here for its platform and push them.")] = False):
    """Install edgeaffect with the target's runtime into a venv on the device."""
    from edgeaffect.remote.ops import setup_device

    facts = setup_device(name, wheel=wheel, extra=extra, offline=offline)
    runtimes = ", ".join(f"{k} {v}" for k, v in sorted((facts.get("runtimes") or {}).items()))
    typer.echo(f"{name}: edgeaffect {facts.get('edgeaffect')} with {runtimes} in {facts.get('root')}/venv")
