"""Run commands inside the cached bookworm arm64 user-land under qemu-user, as a
Raspberry Pi 4 (Cortex-A72) or 5 (Cortex-A76). Mounts live in a private mount namespace
(``unshare --mount``), so nothing stays mounted and nothing can reach the host's /proc."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CPUS = {"rpi4": ("cortex-a72", "0xd08"), "rpi5": ("cortex-a76", "0xd0b")}
VENV = "/opt/edgeaffect-venv"


def userland() -> tuple[Path | None, str]:
    """(rootfs, "") or (None, the one-line reason it cannot run here)."""
    r = subprocess.run(["sh", str(ROOT / "scripts" / "rpi-userland.sh")], capture_output=True, text=True, timeout=1800)
    if r.returncode == 0:
        return Path(r.stdout.strip().splitlines()[-1]), ""
    lines = [line for line in r.stderr.splitlines() if line.startswith("skip:")]
    return None, (lines[-1] if lines else f"rpi-userland.sh failed ({r.returncode}): {r.stderr.strip()[-300:]}")


def pi_cpuinfo(device: str) -> str:
    """A Raspberry-Pi-like /proc/cpuinfo, so XNNPACK picks the kernels a Pi would."""
    part = CPUS[device][1]
    block = ("processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"
             "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: " + part +
             "\nCPU revision\t: 3\n\n")
    return "".join(block.format(i=i) for i in range(4))


def run(rootfs: Path, device: str, argv: list[str], *, timeout: int = 900, extra_env: dict | None = None):
    """Run ``argv`` inside the user-land as ``device``; a clean environment (env -i), so host
    pip settings (find-links, constraints, certificates) cannot leak in."""
    cpu = CPUS[device][0]
    info = rootfs / "tmp" / f"cpuinfo-{device}"
    info.write_text(pi_cpuinfo(device))
    env = {"PATH": "/usr/bin:/bin", "HOME": "/root", "QEMU_CPU": cpu, "LANG": "C.UTF-8",
           "PIP_CERT": "/etc/ssl/certs/host-ca.crt", "PIP_DISABLE_PIP_VERSION_CHECK": "1", **(extra_env or {})}
    inner = " ".join(shlex.quote(a) for a in ["/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv])
    script = (f"set -e; mount -t proc proc {shlex.quote(str(rootfs / 'proc'))}; "
              f"mount --bind {shlex.quote(str(info))} {shlex.quote(str(rootfs / 'proc' / 'cpuinfo'))}; "
              f"QEMU_CPU={cpu} exec chroot {shlex.quote(str(rootfs))} {inner}")
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=timeout)


def elf_load_alignments(path: Path) -> list[int]:
    """p_align of every PT_LOAD segment of a 64-bit little-endian ELF file."""
    import struct

    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return []
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    out = []
    for i in range(phnum):
        p_type, = struct.unpack_from("<I", data, phoff + i * phentsize)
        if p_type == 1:  # PT_LOAD
            out.append(struct.unpack_from("<Q", data, phoff + i * phentsize + 0x30)[0])
    return out
