"""The one place that decides what Vivim may read and write (the trust model in README, "Trust model").

Everything that turns a user's choice or a name found in a file into a path goes through here:

    name = safe_name(video_id, "--video-id")               # one path component, or UnsafePathError
    target = confined(out, split, name, "0001.png")        # stays inside `out`, symlinks resolved
    check_output_apart(out, inputs=[video, dataset_root])  # an output never lands on or inside an input
    path = regular_file(checkpoint, "checkpoint")          # refuses FIFOs, devices, folders
    with open_regular(checkpoint, "checkpoint") as f: ...  # the same, and opening it can never block
    name = sanitised_name("My scan: 1/2")                  # "My scan_ 1_2": any text made into a safe name
    check_outputs_separate({"--out": out, "--prob-out": prob})  # no output inside another
    check_output_folder(out, "--out", ours=("predictions.json",))  # new, empty, or written by us before
    check_replaceable(json_path, "--json", is_ours)         # a new file, or one we wrote before

Paths are compared after resolving symlinks (`os.path.realpath`), so a symlink inside the chosen folder that
points elsewhere counts as elsewhere.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from .errors import VivimError

MAX_NAME_LENGTH = 200
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")
_WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


class UnsafePathError(VivimError, ValueError):
    """A path or name that would read or write outside what the user chose, or overwrite an input."""


def safe_name(text: str, what: str) -> str:
    """`text` when it is usable as ONE path component on every platform (no separators, not "." or "..",
    no control or reserved characters, not a device name, at most MAX_NAME_LENGTH characters); else
    UnsafePathError naming `what` (e.g. "--split")."""
    if not isinstance(text, str) or not text or text in (".", "..") or _FORBIDDEN.search(text) \
            or text != text.strip() or text.endswith(".") or len(text) > MAX_NAME_LENGTH \
            or text.split(".")[0].lower() in _WINDOWS_DEVICES:
        raise UnsafePathError(f"{what} {text!r} is not a plain folder or file name: use letters, digits, '-', '_' "
                              f"and '.', without '/', '\\\\' or '..' (at most {MAX_NAME_LENGTH} characters)")
    return text


def sanitised_name(text: str) -> str:
    """`text` made into a name that `safe_name` accepts: forbidden characters become '_', leading and trailing
    spaces and trailing dots go, device names and names of dots only get a '_' prefix, long names are cut.
    Different texts can give the same name: callers that name several outputs must check for collisions."""
    name = _FORBIDDEN.sub("_", str(text)).strip().rstrip(". ")[:MAX_NAME_LENGTH].rstrip(". ")
    if not name or name.split(".")[0].lower() in _WINDOWS_DEVICES:
        name = f"_{name}"[:MAX_NAME_LENGTH]
    return safe_name(name, "name")


def real(path: Path | str) -> Path:
    """The absolute path with every symlink resolved (also for parts that do not exist yet)."""
    return Path(os.path.realpath(os.path.abspath(path)))


def is_within(path: Path | str, folder: Path | str) -> bool:
    """Whether `path` is `folder` or inside it, symlinks resolved."""
    path, folder = real(path), real(folder)
    return path == folder or folder in path.parents


def confined(root: Path | str, *parts: str) -> Path:
    """root/parts..., refused (UnsafePathError) unless it stays inside `root` once symlinks are resolved.
    Each part must be a single safe component (see `safe_name`)."""
    for part in parts:
        safe_name(part, "path part")
    target = Path(root).joinpath(*parts)
    if not is_within(target, root):
        raise UnsafePathError(f"{target}: resolves to {real(target)}, outside {real(root)} (a symbolic link?); "
                              f"nothing is written outside the folder you chose")
    return target


def check_output_apart(output: Path | str, inputs: Iterable[Path | str], what: str = "--out") -> None:
    """Refuse an output folder that is an input, contains one (the input's own folder, its parents), or lies
    inside an input folder: writing there could overwrite or mix with the user's originals. `inputs` may be
    files or folders; a new folder beside an input file is fine."""
    out = real(output)
    for item in inputs:
        source = real(item)
        if is_within(source, out) or (source.is_dir() and is_within(out, source)):
            raise UnsafePathError(f"{what} {output}: overlaps the input {item} (the output would land on, inside "
                                  f"or around it and could overwrite it); choose a separate output folder")


def check_outputs_separate(outputs: dict[str, Path | str | None]) -> None:
    """Refuse two outputs (option name -> path; None = not given) where one is, or lies inside, the other: their
    files would mix or overwrite each other."""
    given = [(name, path) for name, path in outputs.items() if path is not None]
    for i, (first, first_path) in enumerate(given):
        for second, second_path in given[i + 1:]:
            if is_within(first_path, second_path) or is_within(second_path, first_path):
                raise UnsafePathError(f"{first} {first_path} and {second} {second_path} overlap (one is, or lies "
                                      f"inside, the other) and their files would overwrite each other; choose "
                                      f"separate folders")


def check_output_folder(folder: Path | str, what: str, ours: Iterable[str]) -> None:
    """An output folder must be new, empty, or hold one of the file names in `ours` (the mark of an earlier run
    of the same command): a folder of someone else's files (a ground-truth folder, a dataset) is refused, since
    writing there could overwrite them."""
    folder = Path(folder)
    if not os.path.lexists(folder):
        return
    if not folder.is_dir():
        raise UnsafePathError(f"{what} {folder}: exists and is not a folder; give a folder")
    if any(os.path.lexists(folder / name) for name in ours):
        return
    present = sorted(p.name for p in folder.iterdir())
    if present:
        shown = ", ".join(present[:3]) + (f" and {len(present) - 3} more" if len(present) > 3 else "")
        raise UnsafePathError(f"{what} {folder}: this folder already holds files that vivim-core did not write "
                              f"({shown}); writing there could overwrite them. Choose a new or empty folder")


def check_replaceable(path: Path | str, what: str, is_ours: Callable[[Path], bool]) -> None:
    """An output file may be new or replace a file that `is_ours` recognises (an earlier output of the same
    command); anything else (an image, a mask, someone's notes, a folder, a FIFO) is refused."""
    path = Path(path)
    if not os.path.lexists(path):
        return
    regular_file(path, what)
    if not is_ours(path):
        raise UnsafePathError(f"{what} {path}: this file already exists and vivim-core did not write it; choose "
                              f"another name (nothing was overwritten)")


def regular_file(path: Path | str, what: str, max_bytes: int | None = None) -> Path:
    """`path` when it is a regular file (after symlinks) no larger than `max_bytes`; else UnsafePathError
    saying what it is. FIFOs, sockets and devices would block or stream forever when read."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise UnsafePathError(f"{what} {path}: not found") from None
    except OSError as exc:
        raise UnsafePathError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise UnsafePathError(f"{what} {path}: is a folder; give a file")
    if not stat.S_ISREG(info.st_mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(info.st_mode) else "a socket" if stat.S_ISSOCK(info.st_mode)
                else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "not a regular file")
        raise UnsafePathError(f"{what} {path}: is {kind}, not a regular file; give a file")
    if max_bytes is not None and info.st_size > max_bytes:
        raise UnsafePathError(f"{what} {path}: {info.st_size:,} bytes, more than the {max_bytes:,} accepted")
    return path


def open_regular(path: Path | str, what: str, max_bytes: int | None = None) -> BinaryIO:
    """`path` opened for binary reading, refused (UnsafePathError) unless it is a regular file no larger than
    `max_bytes`. Opened without blocking and checked again once open, so a FIFO swapped in after the first
    check cannot hang the reader."""
    path = regular_file(path, what, max_bytes)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise UnsafePathError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafePathError(f"{what} {path}: is not a regular file (it changed while being opened); give a file")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")
