"""Crash-safe file writing and the workspace lock.

`atomic_write` writes a temporary file in the destination folder, fsyncs it and renames it over the target, so a
reader (or the next start after a SIGKILL or power cut) sees either the old or the new content, never a mix.
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
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
    which `fsync_file` what they wrote afterwards, in batches. The rename replaces a symbolic link at `path`
    itself, never its target; the temporary file is created new (never through an existing name)."""
    path = Path(path)
    unique = f"{os.getpid()}-{threading.get_ident() % 10**6}-{next(_counter)}"
    tmp = path.with_name(f".{path.name}{TEMP_MARK}{unique}")
    try:
        fd = _create_new(tmp)
        with open(fd, "wb") as f:
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


def _create_new(path: Path) -> int:
    """A new file at `path`, open for writing. A leftover at that name (a crashed writer's temp file, or a link
    planted there) is removed first, so nothing is ever written through it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        return os.open(path, flags, 0o666)
    except FileExistsError:
        os.unlink(path)
        return os.open(path, flags, 0o666)


def is_temp_file(name: str) -> bool:
    return name.startswith(".") and TEMP_MARK in name


class LockFileError(OSError):
    """The lock file is not a plain file of its own (a symbolic link, a hard link to another file, a folder...):
    writing the pid into it could overwrite something else."""


class FolderLock:
    """An exclusive advisory lock on `folder/.lock`, released by the OS when the process dies (even SIGKILL).

    `acquire()` returns False when another process holds it, and raises `LockFileError` when `.lock` is not a
    plain file with a single name (a folder received from elsewhere may hold a link there): the lock file is
    opened without following links and checked before the pid is written into it."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / ".lock"
        self._file = None

    def _open(self):
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        if os.path.islink(self.path):  # also where O_NOFOLLOW does not exist
            raise LockFileError(errno.ELOOP, "is a symbolic link", str(self.path))
        try:
            fd = os.open(self.path, flags, 0o666)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
                raise LockFileError(exc.errno, "is a symbolic link" if exc.errno == errno.ELOOP else
                                    "is not a plain file", str(self.path)) from None
            raise
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            os.close(fd)
            raise LockFileError(errno.EINVAL, "is not a plain file" if not stat.S_ISREG(info.st_mode) else
                                "is a hard link to another file", str(self.path))
        return os.fdopen(fd, "r+b")

    def acquire(self) -> bool:
        handle = self._open()
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
            if os.path.islink(self.path):
                return ""
            with open(self.path, "rb") as f:
                return f.read(32).decode("ascii", "replace").strip()
        except OSError:
            return ""

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops flock/msvcrt locks
            self._file = None
