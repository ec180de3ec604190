"""The SSH transport: the system's OpenSSH client, never a password, never an unknown host key.

Why the ``ssh`` program and not a Python SSH library (paramiko, asyncssh): the user's keys,
agent, ``~/.ssh/config`` (jump hosts, aliases) and known hosts work as they do in a terminal,
and nothing native is added to the install. Every remote command is built from argument lists
with ``shlex`` quoting: a device name or path never reaches a remote shell unquoted."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgeaffect.errors import DeviceError, InputError
from edgeaffect.home import known_hosts_file
from edgeaffect.remote.registry import Device

CONNECT_TIMEOUT_S = 10
# A connection that stops answering is declared dropped after about 15 s.
ALIVE = ("-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3")


def _program(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DeviceError(f"the OpenSSH client ('{name}') is not installed here: install openssh-client "
                          "(Debian/Ubuntu) or OpenSSH for your OS")
    return path


def _user_known_hosts() -> list[str]:
    own = Path.home() / ".ssh" / "known_hosts"
    return [str(known_hosts_file())] + ([str(own)] if own.is_file() else [])


def ssh_argv(device: Device, *, batch: bool = True) -> list[str]:
    """``ssh`` with the options every call uses, up to and including the destination."""
    files = " ".join(f'"{p}"' for p in _user_known_hosts())
    argv = [_program("ssh"), "-p", str(device.port), "-o", "BatchMode=yes" if batch else "BatchMode=no",
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={files}",
            "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}", "-o", "LogLevel=ERROR", *ALIVE]
    if device.identity:
        argv += ["-i", device.identity, "-o", "IdentitiesOnly=yes"]
    return argv + ["-l", device.user, device.host.strip("[]"), "--"]


def quote(argv: list[str]) -> str:
    return shlex.join(argv)


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


def ssh_failure(device: Device, stderr: str, doing: str) -> DeviceError:
    """The one line for an ssh that failed before or while talking to the device (exit 255)."""
    text = stderr.strip()
    last = (text.splitlines() or ["no message"])[-1].strip()
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
        return DeviceError(f"the host key of {device.name} ({device.address}) changed since it was accepted: if "
                           f"the device was reinstalled, remove the old key with `ssh-keygen -R "
                           f"'{device.known_hosts_name}' -f {known_hosts_file()}` and run `edgeaffect device add` again")
    if "Host key verification failed" in text or "No ED25519 host key is known" in text or "host key is known" in text:
        return DeviceError(f"the host key of {device.name} ({device.address}) is not one you accepted: run "
                           f"`edgeaffect device add {device.name} --ssh {device.address} --kind {device.kind} "
                           "--accept-host-key` after checking its fingerprint")
    if "Permission denied" in text:
        return DeviceError(f"{device.name} ({device.address}) refused the key: put your public key in "
                           f"{device.user}'s ~/.ssh/authorized_keys there (`ssh-copy-id -p {device.port} "
                           f"{device.user}@{device.host}`), or give --identity")
    reach = ("Connection refused", "timed out", "No route to host", "Could not resolve", "Network is unreachable",
             "Name or service not known")
    if any(r in text for r in reach):
        return DeviceError(f"cannot reach {device.name} ({device.address}) while {doing}: {last}; is it on, on "
                           "the network, and running sshd?")
    return DeviceError(f"the connection to {device.name} ({device.address}) failed while {doing}: {last}; "
                       "nothing was kept from this run, run it again")


class Connection:
    def __init__(self, device: Device):
        self.device = device

    def run(self, remote: str, *, doing: str, stdin: bytes | None = None, timeout_s: float | None = None,
            check: bool = True) -> Result:
        """Run a remote shell command line (built with ``quote``); ``check``: exit != 0 is an error."""
        timeout_s = timeout_s or self.device.timeout_s
        try:
            p = subprocess.run(ssh_argv(self.device) + [remote], input=stdin or b"", capture_output=True,
                               timeout=timeout_s + CONNECT_TIMEOUT_S + 15)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"{doing} on {self.device.name} did not finish in {timeout_s:g} s; it was stopped "
                              "(give --timeout for longer runs)") from None
        err = p.stderr.decode("utf-8", "replace")
        if p.returncode == 255:
            raise ssh_failure(self.device, err, doing)
        if check and p.returncode != 0:
            raise remote_failure(self.device, doing, p.returncode, err)
        return Result(p.returncode, p.stdout, err)

    def send(self, remote: str, source, *, doing: str, timeout_s: float | None = None) -> Result:
        """Run ``remote`` with ``source(pipe)`` writing its standard input (a stream: a tar)."""
        timeout_s = timeout_s or self.device.timeout_s
        proc = subprocess.Popen(ssh_argv(self.device) + [remote], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            try:
                source(proc.stdin)
            except (BrokenPipeError, ConnectionError, OSError):
                pass  # the far end went away: its exit status and stderr say why
            try:
                proc.stdin.close()
            except OSError:
                pass
            proc.stdin = None  # closed: communicate() only reads
            out, err = proc.communicate(timeout=timeout_s + CONNECT_TIMEOUT_S + 15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise DeviceError(f"{doing} on {self.device.name} did not finish in {timeout_s:g} s; it was stopped") from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = err.decode("utf-8", "replace")
        if proc.returncode == 255:
            raise ssh_failure(self.device, text, doing)
        if proc.returncode != 0:
            raise remote_failure(self.device, doing, proc.returncode, text)
        return Result(proc.returncode, out, text)


def remote_failure(device: Device, doing: str, code: int, stderr: str) -> DeviceError:
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else f"exit status {code}"
    if code in (124, 137):  # coreutils timeout: stopped at the limit (137: killed after the grace period)
        return DeviceError(f"{doing} on {device.name} did not finish in time and was stopped there; give "
                           "--timeout SECONDS for longer runs")
    if "No space left on device" in stderr or "Disk quota exceeded" in stderr:
        return DeviceError(f"{device.name} ran out of disk space while {doing}: free space under {device.root} "
                           "there (nothing half-written was kept)")
    if last.startswith("error: "):
        last = last[len("error: "):]
    return DeviceError(f"{doing} failed on {device.name}: {last}")


# --------------------------------------------------------------------------- host keys

def scan_host_key(device: Device) -> list[str]:
    """The device's host keys as known_hosts lines (``ssh-keyscan``), for the user to accept."""
    try:
        p = subprocess.run([_program("ssh-keyscan"), "-T", "5", "-p", str(device.port), device.host.strip("[]")],
                           capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"cannot reach {device.name} ({device.address}) to read its host key") from None
    lines = [ln for ln in p.stdout.decode("utf-8", "replace").splitlines() if ln and not ln.startswith("#")]
    if not lines:
        raise DeviceError(f"cannot reach {device.name} ({device.address}) to read its host key: is it on, on the "
                          "network, and running sshd?")
    return lines


def fingerprints(lines: list[str]) -> list[str]:
    """``ED25519 SHA256:...`` per key, as ``ssh-keygen -lf`` prints them."""
    p = subprocess.run([_program("ssh-keygen"), "-l", "-f", "-"], input="\n".join(lines).encode(),
                       capture_output=True, timeout=30)
    out = []
    for ln in p.stdout.decode().splitlines():
        parts = ln.split()
        if len(parts) >= 2:
            out.append(f"{parts[-1].strip('()')} {parts[1]}")
    return out


def is_known(device: Device) -> bool:
    for f in _user_known_hosts():
        if Path(f).is_file():
            p = subprocess.run([_program("ssh-keygen"), "-F", device.known_hosts_name, "-f", f],
                               capture_output=True, timeout=30)
            if p.returncode == 0 and p.stdout.strip():
                return True
    return False


def accept_host_key(device: Device, lines: list[str]) -> Path:
    """Append the scanned keys to edgeaffect's own known_hosts (atomically)."""
    from edgeaffect.io import atomic_write_text

    path = known_hosts_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text() if path.is_file() else ""
    atomic_write_text(path, old + "".join(ln + "\n" for ln in lines))
    return path


def check_fingerprint(expected: str, found: list[str], device: Device) -> None:
    if not any(expected == f.split()[-1] for f in found):
        raise InputError(f"the host key of {device.address} is {', '.join(found)}, not {expected}: refusing it "
                         "(check you reach the right device)")
