"""Atomic writes: a temp file in the same folder, then a rename, so nothing is left half written.

A temp name is hidden and carries the writer's process id (``.NAME.PID.random``): a process
killed mid-write (SIGKILL, power loss) leaves only such a name, which no command trusts, and
the next write of the same file or folder removes the leftovers of writers that are gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from edgeaffect.errors import InputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _usual_mode(path: str | os.PathLike, directory: bool = False) -> None:
    """mkstemp / mkdtemp make private (0600 / 0700) files; give the result the mode a plain
    open() would, so a bundle copied to a device is readable there."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep_leftovers(parent: Path, name: str) -> list[Path]:
    """Remove the temp files / folders of ``name`` in ``parent`` whose writer has died."""
    pattern = re.compile(rf"^\.{re.escape(name)}\.(\d+)\.")
    removed = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if not m or int(m.group(1)) == os.getpid() or _alive(int(m.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _prefix(name: str) -> str:
    return f".{name}.{os.getpid()}."


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_prefix(path.name), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _usual_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temp path beside ``path``; it replaces ``path`` only if the block succeeds.
    For writers that take a file name (converters, savers)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(path.parent, path.stem)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_prefix(path.stem), suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        _usual_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a temp folder beside ``path``; it becomes ``path`` (replacing it) only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(path.parent, path.name)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_prefix(path.name)))
    try:
        yield tmp
        _usual_mode(tmp, directory=True)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_json(path: str | os.PathLike, missing: str, fix: str):
    """A JSON file's content, or one line: ``missing`` when there is no file, else that it
    is not valid JSON, with ``fix`` (what to run instead)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(missing)
    try:
        return json.loads(path.read_text())
    except (ValueError, RecursionError) as exc:  # bad JSON or bytes, a 5000-digit number, nesting past the stack
        raise InputError(f"{path} is not valid JSON ({exc}); {fix}") from None


def file_stamp(path: str | os.PathLike) -> str:
    """A file's size and modification time, for a cache key. A link to nowhere (or a folder of
    that name) in a corpus has none: its reader then skips or refuses it, saying why."""
    try:
        st = os.stat(path)
    except OSError:
        return "unreadable"
    return f"{st.st_size}:{st.st_mtime_ns}"


def sha256(path: str | os.PathLike) -> str:
    """A file's SHA-256, read in 1 MiB chunks (bundles' manifests, copies to a device, the
    measurement store all name files by it)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
