"""A "device" on this machine for the remote tests: Debian's OpenSSH server started on
127.0.0.1 on a free port with a throwaway host key and user key (only loopback), and a TCP
relay in front of it that can cut the connection after a number of bytes (a dropped link)."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def why_not() -> str | None:
    """Why this machine cannot serve a loopback device, or None."""
    if not Path(SSHD).is_file():
        return f"no OpenSSH server ({SSHD}): `make apt` installs openssh-server as root"
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "no OpenSSH client"
    return None


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


class Sshd:
    def __init__(self, work: Path):
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.host_key, self.user_key = work / "host_key", work / "user_key"
        _keygen(self.host_key)
        _keygen(self.user_key)
        (work / "authorized_keys").write_text((work / "user_key.pub").read_text())
        self.port = free_port()
        self.user = getpass.getuser()
        config = work / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.host_key}",
            f"AuthorizedKeysFile {work / 'authorized_keys'}", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", f"PidFile {work / 'sshd.pid'}",
            "PermitRootLogin prohibit-password", "MaxStartups 50", "MaxSessions 50", ""]))
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
        self.log = open(work / "sshd.log", "wb")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=self.log, stdout=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"sshd did not start: {(work / 'sshd.log').read_text()[-2000:]}")

    @property
    def address(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"

    def fingerprint(self) -> str:
        out = subprocess.run(["ssh-keygen", "-l", "-f", str(self.host_key) + ".pub"], capture_output=True,
                             text=True, check=True).stdout
        return out.split()[1]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


class Relay:
    """127.0.0.1:port -> the sshd; with ``cut_after`` bytes from the client, every connection is
    closed at that point (both ways), as a link that drops mid-copy."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.cut_after: int | None = None
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(20)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            budget = [self.cut_after]
            threading.Thread(target=self._pump, args=(client, server, budget), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, None), daemon=True).start()

    @staticmethod
    def _pump(src, dst, budget) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if budget is not None and budget[0] is not None:
                    budget[0] -= len(data)
                    if budget[0] < 0:
                        break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.sock.close()


def main() -> int:
    """``python -m tests.loopback_device [DIR]``: the tests' loopback "device", kept up until
    Ctrl-C, with the line that registers it (try `edgeaffect device ...` and `--on` by hand)."""
    import sys
    import tempfile

    reason = why_not()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    work = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="edgeaffect-loopback-"))
    server = Sshd(work / "sshd")
    print(f"edgeaffect device add lab --ssh {server.user}@127.0.0.1:{server.port} --kind rpi5 "
          f"--identity {server.user_key} --root {work / 'device'} --host-key-fingerprint {server.fingerprint()}",
          flush=True)
    try:
        while server.proc.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
