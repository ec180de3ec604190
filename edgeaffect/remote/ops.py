"""What the ``device`` commands and ``--on NAME`` do: add / check / set up a device; bench,
profile and predict there, with the figures brought back and kept as measurements."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path

from edgeaffect.errors import DeviceError, InputError
from edgeaffect.io import sha256
from edgeaffect.remote import session, ssh
from edgeaffect.remote.registry import (DEFAULT_ROOT, DEFAULT_TIMEOUT_S, Device, check_kind, check_name,
                                        get_device, load_devices, parse_address, save_devices)


def connect(name: str) -> tuple[Device, ssh.Connection]:
    device = get_device(name)
    return device, ssh.Connection(device)


# --------------------------------------------------------------------------- add / check / setup

def add_device(name: str, address: str, kind: str, *, root: str = DEFAULT_ROOT, identity: Path | None = None,
               timeout_s: float = DEFAULT_TIMEOUT_S, accept_host_key: bool = False,
               fingerprint: str | None = None, log=sys.stdout) -> Device:
    """Register a device. Its host key must already be trusted (the user's known_hosts or
    edgeaffect's), or be accepted here: shown, and kept only with ``accept_host_key`` (or when it
    matches ``fingerprint``)."""
    user, host, port = parse_address(address)
    if identity is not None and not identity.is_file():
        raise InputError(f"--identity {identity}: no such key file")
    if timeout_s <= 0:
        raise InputError("--timeout must be > 0 seconds")
    device = Device(check_name(name), user, host, port, check_kind(kind), root,
                    str(identity.resolve()) if identity else None, timeout_s)
    if not ssh.is_known(device):
        lines = ssh.scan_host_key(device)
        prints = ssh.fingerprints(lines)
        if fingerprint:
            ssh.check_fingerprint(fingerprint, prints, device)
        elif not accept_host_key:
            raise DeviceError(f"the host key of {device.address} is not known: {'; '.join(prints)}. Check it on the "
                              "device (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`) and add again with "
                              "--accept-host-key or --host-key-fingerprint SHA256:...")
        path = ssh.accept_host_key(device, lines)
        print(f"host key accepted ({'; '.join(prints)}), kept in {path}", file=log)
    devices = load_devices()
    devices[name] = device
    save_devices(devices)
    return device


def remove_device(name: str) -> None:
    devices = load_devices()
    get_device(name)
    del devices[name]
    save_devices(devices)


def check_device(name: str) -> tuple[Device, dict, list[str]]:
    """The device's facts, and the notes a user should read before trusting its figures."""
    device, conn = connect(name)
    facts = session.probe(conn)
    return device, facts, notes(device, facts)


def notes(device: Device, facts: dict) -> list[str]:
    from edgeaffect.roofline.devices import get_device as catalog_device

    out = []
    expected = catalog_device(device.kind, measure_host=False)
    machine = (facts.get("machine") or "").lower()
    if device.kind.startswith(("rpi", "jetson")) and machine not in ("aarch64", "arm64"):
        out.append(f"registered as {device.kind} ({expected.name}) but it is a {machine or 'unknown'} machine "
                   f"({facts.get('cpu')}): its figures will calibrate {device.kind} estimates all the same")
    if facts.get("governor") not in (None, "performance"):
        out.append(f"CPU governor '{facts['governor']}': latencies vary with the clock; 'performance' gives "
                   "steadier figures")
    t = facts.get("throttled")
    if t not in (None, "0x0", "0"):
        out.append(f"the board reports throttling or under-voltage ({t}): figures may be slower than the device can do")
    if not facts.get("edgeaffect"):
        out.append(f"edgeaffect is not installed there: `edgeaffect device setup {device.name}`")
    return out


def local_wheel(work: Path) -> Path:
    """The wheel of the checkout this edgeaffect runs from (pip wheel, no dependencies)."""
    import edgeaffect

    src = Path(edgeaffect.__file__).resolve().parent.parent
    if not (src / "pyproject.toml").is_file():
        raise InputError("edgeaffect runs from an installed wheel, not a checkout: give --wheel PATH "
                         "(the edgeaffect wheel to install on the device)")
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                        str(work), str(src)], capture_output=True, text=True)
    wheels = sorted(work.glob("edgeaffect-*.whl"))
    if p.returncode != 0 or not wheels:
        last = (p.stderr.strip().splitlines() or ["no message"])[-1]
        raise DeviceError(f"could not build the wheel of {src}: {last}")
    return wheels[-1]


def _platforms(facts: dict) -> list[str]:
    """pip platform tags the device's wheels may carry (its architecture and glibc)."""
    arch = facts.get("machine") or "x86_64"
    arch = {"arm64": "aarch64"}.get(arch, arch)
    libc = (facts.get("libc") or "").split()
    minor = int(libc[1].split(".")[1]) if len(libc) == 2 and libc[0] == "glibc" and "." in libc[1] else 17
    return [f"manylinux_2_{m}_{arch}" for m in range(minor, 16, -1)] + [f"manylinux2014_{arch}", f"linux_{arch}"]


def download_wheels(wheel: Path, extra: str, facts: dict, into: Path) -> None:
    """Every wheel the device's install needs, for its platform and Python (offline devices)."""
    py = "".join((facts.get("python") or "3.11").split(".")[:2])
    argv = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", py,
            "--implementation", "cp", "-d", str(into)]
    for tag in _platforms(facts):
        argv += ["--platform", tag]
    p = subprocess.run(argv + [f"{wheel}[{extra}]"], capture_output=True, text=True)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["no message"])[-1]
        raise DeviceError(f"could not download the device's wheels here: {last}")


def target_extra(kind: str) -> str:
    from edgeaffect.export.targets import load_targets

    return next((t.extra for t in load_targets().values() if t.device == kind), "device")


def setup_device(name: str, *, wheel: Path | None = None, extra: str | None = None, offline: bool = False,
                 log=sys.stdout) -> dict:
    """edgeaffect (this checkout's wheel, or ``wheel``) with the target's extra, in a venv on the
    device; ``offline``: every wheel is downloaded here and pushed, the device installs with
    ``--no-index``."""
    device, conn = connect(name)
    facts = session.probe(conn, clean=True)
    extra = extra or target_extra(device.kind)
    with tempfile.TemporaryDirectory(prefix="edgeaffect-wheels-") as tmp:
        house = Path(tmp) / "wheels"
        house.mkdir()
        if wheel is None:
            print("building the wheel of this checkout", file=log, flush=True)
        elif not wheel.is_file() or wheel.suffix != ".whl":
            raise InputError(f"--wheel {wheel}: not a wheel file")
        built = local_wheel(house) if wheel is None else Path(house / wheel.name)
        if wheel is not None:
            built.write_bytes(wheel.read_bytes())
        if offline:
            print(f"downloading the wheels for {facts.get('machine')} / Python {facts.get('python')}", file=log,
                  flush=True)
            download_wheels(built, extra, facts, house)
        print(f"copying {len(list(house.iterdir()))} wheel(s) to {device.name}", file=log, flush=True)
        there = session.push(conn, facts, house)
    venv = f"{facts['root']}/venv"
    pip = [f"{venv}/bin/python", "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    source = ["--no-index", "--find-links", there] if offline else []
    # A PEP 508 URL, not a bare path: pip would read a ';' in the device's folder as a marker.
    target = f"edgeaffect @ file://{urllib.parse.quote(f'{there}/{built.name}')}"
    line = " && ".join([
        f"{{ test -x {ssh.shlex.quote(venv + '/bin/python')} || {ssh.quote(['python3', '-m', 'venv', venv])}; }}",
        ssh.quote(pip + source + [target.replace("edgeaffect @", f"edgeaffect[{extra}] @")]),
        ssh.quote(pip + ["--force-reinstall", "--no-deps", target]),  # the same version rebuilt: this one
    ])
    print(f"installing edgeaffect[{extra}] into {venv} on {device.name}", file=log, flush=True)
    conn.run(line, doing="installing edgeaffect", timeout_s=max(device.timeout_s, 1800))
    return session.probe(conn)


# --------------------------------------------------------------------------- measuring there

def _remote_paths(conn, facts, folders: list[Path]) -> dict[str, Path]:
    return {session.push(conn, facts, d): d for d in folders}


def _local_path(path: str, mapping: dict[str, Path]) -> str:
    for there, here in mapping.items():
        if path == there or path.startswith(there + "/"):
            return str(here) + path[len(there):]
    return path


def _runtimes_of(folders: list[Path]) -> set[str]:
    from edgeaffect.device.bundle import open_bundle

    out = set()
    for d in folders:
        b = open_bundle(d)
        for sub in b.stage_folders() or (d,):
            out |= {e["runtime"] for e in open_bundle(sub).manifest["files"].values()}
    return out


def _ready(name: str, runtimes: set[str]):
    device, conn = connect(name)
    facts = session.probe(conn, clean=True)
    session.require_edgeaffect(device, facts)
    session.require_runtime(device, facts, runtimes)
    return device, conn, facts


def bench_on(name: str, exports: list[Path], *, threads: int, budget_s: float, baseline: Path | None = None,
             timeout_s: float | None = None, log=sys.stderr) -> dict:
    """``edgeaffect bench`` run on the device: rows with local paths, their files' SHA-256 and
    cost; the record is saved in the measurement store."""
    for d in exports:
        if not (d / "manifest.json").is_file():
            raise InputError(f"not an export folder (no manifest.json): {d}")
    device, conn, facts = _ready(name, _runtimes_of(exports))
    timeout_s = timeout_s or device.timeout_s
    print(f"copying {len(exports)} export(s) to {device.name}", file=log, flush=True)
    mapping = _remote_paths(conn, facts, exports)
    argv = ["bench", *mapping, "--threads", str(threads), "--budget", f"{budget_s:g}", "--json", "{out}"]
    if baseline is not None:
        if not baseline.is_dir():
            raise InputError(f"--baseline {baseline}: not a folder")
        if any(baseline.iterdir()):
            argv += ["--baseline", session.push(conn, facts, baseline)]
    print(f"benchmarking on {session.describe(device, facts)}", file=log, flush=True)
    _, data = session.run_tool(conn, facts, argv, doing="the benchmark", timeout_s=timeout_s, output="bench.json")
    result = _json(data, device, "the benchmark")
    rows = [_with_file_facts(r, mapping) for r in result["rows"]]
    record = _record("bench", device, facts, threads, rows)
    return {"device": device, "facts": facts, "rows": rows, "record": record, "saved": _save(record, log),
            "remeasure": lambda row: remeasure_on(conn, facts, row, mapping, threads, budget_s, timeout_s)}


def remeasure_on(conn, facts, row: dict, mapping: dict[str, Path], threads: int, budget_s: float,
                 timeout_s: float) -> dict:
    """One more p50 / p99 of a row's file on the device (a budget over its limit is re-measured)."""
    back = {str(v): k for k, v in mapping.items()}
    there = _local_path(row["path"], back)
    _, data = session.run_tool(conn, facts, ["profile", there, "--threads", str(threads), "--budget",
                                             f"{budget_s:g}", "--json", "{out}"],
                               doing="re-measuring", timeout_s=timeout_s, output="profile.json")
    p = _json(data, conn.device, "re-measuring")
    return {"p50_ms": p["p50_ms"], "p99_ms": p["p99_ms"]}


def profile_on(name: str, artifact: Path, *, argv: list[str], timeout_s: float | None = None, log=sys.stderr) -> dict:
    """``edgeaffect profile`` of a file or export folder on the device."""
    if not artifact.exists():
        raise InputError(f"not found: {artifact}")
    runtimes = {"litert"} if artifact.suffix == ".tflite" else {"onnxruntime"} if artifact.suffix == ".onnx" \
        else _runtimes_of([artifact]) if (artifact / "manifest.json").is_file() else set(session.RUNTIME_PACKAGES)
    device, conn, facts = _ready(name, runtimes)
    there = session.push(conn, facts, artifact)
    print(f"profiling on {session.describe(device, facts)}", file=log, flush=True)
    _, data = session.run_tool(conn, facts, ["profile", there, *argv, "--json", "{out}"], doing="the profile",
                               timeout_s=timeout_s or device.timeout_s, output="profile.json")
    result = _json(data, device, "the profile")
    result["artifact"] = _local_path(str(result.get("artifact", there)), {there: artifact})
    return {"device": device, "facts": facts, "result": result}


def predict_on(name: str, bundle: Path, media: list[Path], *, argv: list[str], timeout_s: float | None = None) -> str:
    """``edgeaffect predict`` on the device; its output as the device printed it."""
    for m in media:
        if not m.is_file():
            raise InputError(f"not found: {m}")
    if not (bundle / "manifest.json").is_file():
        raise InputError(f"not an export folder (no manifest.json): {bundle}")
    device, conn, facts = _ready(name, _runtimes_of([bundle]))
    there = session.push(conn, facts, bundle)
    media_there = [session.push(conn, facts, m) for m in media]
    text, _ = session.run_tool(conn, facts, ["predict", media_there[0], "--model", there, *argv,
                                             *(["--audio", media_there[1]] if len(media_there) > 1 else [])],
                               doing="the prediction", timeout_s=timeout_s or device.timeout_s)
    return text


def _json(data: bytes | None, device: Device, doing: str) -> dict:
    try:
        return json.loads(data or b"")
    except ValueError:
        raise DeviceError(f"{doing} on {device.name} wrote no readable result; run it again "
                          "(`edgeaffect device check` shows the device's state)") from None


def _with_file_facts(row: dict, mapping: dict[str, Path]) -> dict:
    """A device row with the local path of its file, the file's SHA-256 and its cost."""
    row = dict(row, path=_local_path(row["path"], mapping))
    local = Path(row["path"])
    if local.is_file():
        from edgeaffect.remote.store import file_cost

        row["sha256"] = sha256(local)
        row["cost"] = file_cost(local)
    return row


def _record(command: str, device: Device, facts: dict, threads: int, rows: list[dict]) -> dict:
    keep = ("model", "format", "runtime", "package", "sha256", "bytes", "p50_ms", "p90_ms", "p99_ms", "runs",
            "model_memory_mib", "status", "cost")
    return {"schema": 1, "when": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "command": command,
            "device": session.device_record(device, facts), "threads": threads,
            "rows": [{k: r.get(k) for k in keep} for r in rows]}


def _save(record: dict, log) -> Path | None:
    from edgeaffect.remote.store import save_measurement

    path = save_measurement(record)
    print(f"measurement kept in {path}", file=log, flush=True)
    return path


def this_machine(kind: str, threads: int) -> dict:
    """The ``measured_on`` of a run on this very machine declared a ``kind`` (a self-hosted CI
    runner on the device): its budgets gate on what is measured here."""
    import platform

    from edgeaffect.remote import probe

    check_kind(kind)
    facts = probe.board_facts()
    return {"name": platform.node() or "this machine", "kind": kind, "ssh": None, "cpu": facts["cpu"],
            "machine": facts["machine"], "governor": facts["governor"], "throttled": facts["throttled"],
            "temperature_c": facts["temperature_c"], "threads": threads}
