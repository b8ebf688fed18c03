"""Crash-safe file writing and the workspace lock.

`atomic_write` writes a temporary file in the destination folder, fsyncs it and renames it over the target, so a
reader (or the next start after a SIGKILL or power cut) sees either the old or the new content, never a mix.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
from pathlib import Path

TEMP_MARK = ".tmp-"  # temporary files are named `.<name>.tmp-<pid>-<n>`; leftovers are removed on open
_counter = itertools.count()  # unique temp names per write: threads of one process never share a temp file


def fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable (POSIX; Windows has no directory fsync and needs none)."""
    if sys.platform.startswith("win"):
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a file already written (e.g. by a bulk, non-durable write) to the disk."""
    fd = os.open(path, os.O_RDWR if sys.platform.startswith("win") else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, durable: bool = True) -> None:
    """Replace `path` with `data` atomically. durable=False skips the fsyncs: still all-or-nothing for a killed
    process (the kernel keeps written pages), but not against a power cut; used for bulk proposal writes,
    which `fsync_file` what they wrote afterwards, in batches."""
    path = Path(path)
    unique = f"{os.getpid()}-{threading.get_ident() % 10**6}-{next(_counter)}"
    tmp = path.with_name(f".{path.name}{TEMP_MARK}{unique}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    if durable:
        fsync_dir(path.parent)


def is_temp_file(name: str) -> bool:
    return name.startswith(".") and TEMP_MARK in name


class FolderLock:
    """An exclusive advisory lock on `folder/.lock`, released by the OS when the process dies (even SIGKILL).

    `acquire()` returns False when another process holds it."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / ".lock"
        self._file = None

    def acquire(self) -> bool:
        handle = open(self.path, "a+b")
        try:
            if sys.platform.startswith("win"):
                import msvcrt
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()).encode())
        handle.flush()
        self._file = handle
        return True

    def holder(self) -> str:
        """The pid written by the holder, for messages ('' when unknown)."""
        try:
            return self.path.read_text().strip()
        except OSError:
            return ""

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops flock/msvcrt locks
            self._file = None
