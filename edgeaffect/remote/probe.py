"""Sent to the device's ``python3`` on standard input (standard library only: it runs before
edgeaffect is installed there). Prints one JSON object: what the device is, how it is clocked
and cooled, what of edgeaffect and its runtimes it has, and the free space under the root.

Usage on the device: ``python3 - ROOT [clean]``; ``clean`` also removes what an interrupted
run left under ROOT (a half copy, a run's outputs), so every run starts clean."""

import json
import os
import platform
import shutil
import subprocess
import sys

RUNTIMES = ("ai-edge-litert", "tflite-runtime", "onnxruntime", "onnxruntime-gpu", "tensorrt", "numpy")


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").strip("\x00\n ")
    except OSError:
        return None


def cpu_model():
    board = read("/proc/device-tree/model")  # Raspberry Pi, Jetson: the board's own name
    text = read("/proc/cpuinfo") or ""
    name = next((ln.split(":", 1)[1].strip() for ln in text.splitlines()
                 if ln.lower().startswith(("model name", "hardware"))), None)
    if board and name:
        return f"{board} ({name})"
    return board or name or platform.processor() or platform.machine()


def command(argv):
    if shutil.which(argv[0]) is None:
        return None
    try:
        p = subprocess.run(argv, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout.decode("utf-8", "replace").strip() if p.returncode == 0 else None


def throttled():
    """Raspberry Pi: ``vcgencmd get_throttled`` (0x0: never throttled or under-volted)."""
    out = command(["vcgencmd", "get_throttled"])
    return out.split("=", 1)[1] if out and "=" in out else None


def temperature():
    raw = read("/sys/class/thermal/thermal_zone0/temp")
    try:
        return round(int(raw) / 1000, 1)
    except (TypeError, ValueError):
        return None


def venv_facts(root):
    """edgeaffect's and the runtimes' versions as the device's venv sees them."""
    python = os.path.join(root, "venv", "bin", "python")
    if not os.access(python, os.X_OK):
        return None, {}
    code = ("import json, importlib.metadata as m\nout = {}\n"
            f"for n in {('edgeaffect',) + RUNTIMES!r}:\n"
            "    try:\n        out[n] = m.version(n)\n    except m.PackageNotFoundError:\n        pass\n"
            "print(json.dumps(out))")
    try:
        p = subprocess.run([python, "-c", code], capture_output=True, timeout=60)
        found = json.loads(p.stdout or b"{}")
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None, {}
    return found.pop("edgeaffect", None), found


def clean(root):
    for sub in ("incoming", "runs"):
        shutil.rmtree(os.path.join(root, sub), ignore_errors=True)


def board_facts():
    """What the board tells of itself: CPU, governor, temperature, throttling, power mode."""
    libc = platform.libc_ver()
    return {
        "cpu": cpu_model(), "machine": platform.machine(), "system": platform.system(), "cores": os.cpu_count(),
        "python": platform.python_version(), "libc": f"{libc[0]} {libc[1]}".strip() or None,
        "governor": read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "temperature_c": temperature(), "throttled": throttled(), "nvpmodel": command(["nvpmodel", "-q"]),
    }


def main():
    root = os.path.expanduser(sys.argv[1])
    os.makedirs(root, exist_ok=True)
    if "clean" in sys.argv[2:]:
        clean(root)
    version, runtimes = venv_facts(root)
    usage = shutil.disk_usage(root)
    facts = dict(board_facts(), edgeaffect=version, runtimes=runtimes, root=os.path.abspath(root),
                 free_bytes=usage.free)
    print(json.dumps(facts))


if __name__ == "__main__":  # sent as `python3 -`; never imported
    main()
