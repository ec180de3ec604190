"""One conversation with a device: what it is (the probe), a folder copied there and checked
file by file on arrival, edgeaffect run there under a time limit, its JSON brought back.

On the device, under the device's root (``~/.edgeaffect`` by default)::

    venv/              edgeaffect and the target's runtime (`edgeaffect device setup`)
    bundles/<id>/      verified copies, named by the SHA-256 of their file list: sent once
    incoming/          copies under way; renamed into bundles/ only once every file checks
    runs/              a run's outputs until they are fetched

Every run removes ``incoming/`` and ``runs/`` first, so a copy or run cut off half way leaves
nothing that a later run trusts. One run at a time per device: two benchmarks at once would
time each other."""

from __future__ import annotations

import hashlib
import json
import secrets
import tarfile
from importlib import resources
from pathlib import Path

from edgeaffect.errors import DeviceError, InputError
from edgeaffect.io import sha256
from edgeaffect.remote.registry import Device
from edgeaffect.remote.ssh import Connection, quote

# What each manifest runtime needs installed on the device (any one of them).
RUNTIME_PACKAGES = {"litert": ("ai-edge-litert", "tflite-runtime"), "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
                    "tensorrt": ("tensorrt",)}
SPACE_MARGIN = 1.1  # free space wanted on the device, as a multiple of what is sent
VERIFIED = ".edgeaffect-verified"


def probe(conn: Connection, *, clean: bool = False) -> dict:
    """The device's facts (``probe.py`` run by its python3); ``clean`` also clears leftovers."""
    script = resources.files("edgeaffect.remote").joinpath("probe.py").read_bytes()
    argv = ["python3", "-", conn.device.root] + (["clean"] if clean else [])
    r = conn.run(quote(argv), stdin=script, doing="reading what the device is", timeout_s=120, check=False)
    if r.returncode == 127:
        raise DeviceError(f"{conn.device.name} has no python3: install Python 3.10 or newer there")
    try:
        facts = json.loads(r.text.strip().splitlines()[-1])
    except (ValueError, IndexError):
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise DeviceError(f"{conn.device.name} did not answer the probe as expected ({last})") from None
    return facts


def describe(device: Device, facts: dict) -> str:
    """``lab (Raspberry Pi 5 ..., aarch64, governor ondemand, not throttled, 51.2 °C)``."""
    bits = [facts.get("cpu") or "unknown CPU", facts.get("machine") or "?"]
    if facts.get("governor"):
        bits.append(f"governor {facts['governor']}")
    t = facts.get("throttled")
    if t is not None:
        bits.append("not throttled" if t in ("0x0", "0") else f"THROTTLED ({t})")
    if facts.get("temperature_c") is not None:
        bits.append(f"{facts['temperature_c']:g} °C")
    return f"{device.name} ({', '.join(bits)})"


def device_record(device: Device, facts: dict) -> dict:
    """The ``device`` part of a measurement record."""
    return {"name": device.name, "kind": device.kind, "ssh": device.address, "cpu": facts.get("cpu"),
            "machine": facts.get("machine"), "governor": facts.get("governor"), "throttled": facts.get("throttled"),
            "temperature_c": facts.get("temperature_c"), "python": facts.get("python"),
            "edgeaffect": facts.get("edgeaffect"), "runtimes": facts.get("runtimes") or {}}


def require_edgeaffect(device: Device, facts: dict) -> None:
    if not facts.get("edgeaffect"):
        raise DeviceError(f"edgeaffect is not installed on {device.name}: run `edgeaffect device setup {device.name}`")


def require_runtime(device: Device, facts: dict, runtimes: set[str]) -> None:
    """At least one of ``runtimes`` (manifest runtime names) importable on the device."""
    have = set(facts.get("runtimes") or {})
    if any(set(RUNTIME_PACKAGES.get(r, (r,))) & have for r in runtimes):
        return
    wanted = " or ".join(p for r in sorted(runtimes) for p in RUNTIME_PACKAGES.get(r, (r,)))
    raise DeviceError(f"{device.name} has none of the runtimes this needs ({wanted}): run "
                      f"`edgeaffect device setup {device.name}`")


# --------------------------------------------------------------------------- copying

def file_list(local: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file to send (a folder's, or one file's)."""
    if local.is_file():
        return {local.name: sha256(local)}
    if not local.is_dir():
        raise InputError(f"not found: {local}")
    files = sorted(p for p in local.rglob("*") if p.is_file() and not p.name.startswith("."))
    return {f"{local.name}/{p.relative_to(local).as_posix()}": sha256(p) for p in files}


def _write_tar(local: Path, names: list[str]):
    base = local.parent

    def write(pipe) -> None:
        with tarfile.open(fileobj=pipe, mode="w|") as tar:
            for name in names:
                path = base / name
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = path.stat().st_size, 0o644, int(path.stat().st_mtime)
                with open(path, "rb") as f:
                    tar.addfile(info, f)
    return write


VERIFY = """
import hashlib, json, os, shutil, sys
incoming, final, marker = sys.argv[1], sys.argv[2], sys.argv[3]
listing = json.loads(sys.stdin.readline())
bad = []
for name, want in sorted(listing.items()):
    h = hashlib.sha256()
    try:
        with open(os.path.join(incoming, name), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        bad.append(name + " (missing)")
        continue
    if h.hexdigest() != want:
        bad.append(name)
if bad:
    shutil.rmtree(incoming, ignore_errors=True)
    print("error: " + str(len(bad)) + " file(s) arrived damaged: " + ", ".join(bad[:3]), file=sys.stderr)
    sys.exit(3)
open(os.path.join(incoming, marker), "w").close()
os.makedirs(os.path.dirname(final), exist_ok=True)
if os.path.isdir(final):
    shutil.rmtree(final)  # an older copy without its marker: replaced whole
os.rename(incoming, final)
"""


def push(conn: Connection, facts: dict, local: Path) -> str:
    """Copy a folder or file to the device once; returns its path there. It is written under
    ``incoming/``, each file's SHA-256 checked there, and only then renamed into place."""
    listing = file_list(local)
    ident = hashlib.sha256(json.dumps(listing, sort_keys=True).encode()).hexdigest()[:20]
    root = facts["root"]
    final = f"{root}/bundles/{ident}"
    there = f"{final}/{local.name}"
    if conn.run(quote(["test", "-f", f"{final}/{VERIFIED}"]), doing="looking for an earlier copy",
                timeout_s=60, check=False).returncode == 0:
        return there
    size = sum((local.parent / n).stat().st_size for n in listing)
    if facts.get("free_bytes") is not None and facts["free_bytes"] < size * SPACE_MARGIN + (1 << 20):
        raise DeviceError(f"{conn.device.name} has {facts['free_bytes'] / 2**20:.1f} MiB free under {root}; "
                          f"copying {local.name} needs {size * SPACE_MARGIN / 2**20:.1f} MiB: free space there")
    incoming = f"{root}/incoming/{ident}.{secrets.token_hex(4)}"
    conn.send(quote(["mkdir", "-p", incoming]) + " && " + quote(["tar", "-x", "-f", "-", "-C", incoming]),
              _write_tar(local, list(listing)), doing=f"copying {local.name}")
    conn.run(quote(["python3", "-c", VERIFY, incoming, final, VERIFIED]),
             stdin=(json.dumps(listing) + "\n").encode(), doing=f"checking the copy of {local.name}", timeout_s=300)
    return there


# --------------------------------------------------------------------------- running

def _remove_quietly(conn: Connection, path: str) -> None:
    """Leave nothing of a run behind on the device, even when it failed (best effort: the
    link may be what failed)."""
    try:
        conn.run(quote(["rm", "-rf", path]), doing="cleaning up", timeout_s=60)
    except DeviceError:
        pass


def run_tool(conn: Connection, facts: dict, argv: list[str], *, doing: str, timeout_s: float,
             output: str | None = None) -> tuple[str, bytes | None]:
    """Run ``edgeaffect ARGV`` from the device's venv under ``timeout``; ``output``: a file name
    the command writes (``{out}`` in ``argv`` stands for its path), brought back as bytes."""
    root = facts["root"]
    run_dir = f"{root}/runs/{secrets.token_hex(6)}"
    out_path = f"{run_dir}/{output}" if output else ""
    argv = [a.replace("{out}", out_path) for a in argv]
    # the venv's python with -m, not its `edgeaffect` launcher: pip writes the launcher of a
    # venv whose path has shell characters as a /bin/sh trampoline that expands them
    tool = [f"{root}/venv/bin/python", "-m", "edgeaffect.cli"]
    line = (quote(["mkdir", "-p", run_dir]) + " && " +
            quote(["timeout", "-k", "10", str(max(1, int(timeout_s))), *tool, *argv]))
    data = None
    try:
        r = conn.run(line, doing=doing, timeout_s=timeout_s + 15)
        if output:
            data = conn.run(quote(["cat", out_path]), doing=f"fetching the result of {doing}", timeout_s=120).stdout
    finally:
        _remove_quietly(conn, run_dir)
    return r.text, data
