"""The export's commit journal: the list of renames that move a staged export into an existing output folder,
written before the first rename so that an interrupted commit can be finished by the next export.

    ROOT/.vivim-export-<pid>-<8 hex>/                 the staging folder (outputs written and verified here)
    ROOT/.vivim-export-<pid>-<8 hex>.journal.json     {"format": JOURNAL_FORMAT, "format_version": 1,
                                                       "staging": "<the staging folder's name>",
                                                       "paths": ["Train/clip", "Train_GT/clip", ...]}

An output folder may come from someone else, so a journal found there is data, not an order: before anything
is moved or deleted, `read_journal` checks that it is a plain file of ours, well formed, that it names its own
staging folder (a real folder directly in ROOT) and that every path stays inside ROOT and inside the staging
folder (see `vivim_core.file_safety`). Anything else is refused with a message naming the journal; the folder
is left as it is.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vivim_core.file_safety import UnsafePathError, confined, safe_name

from .atomic import atomic_write, fsync_dir
from .exceptions import ExportError

STAGING_PREFIX, JOURNAL_SUFFIX = ".vivim-export-", ".journal.json"
JOURNAL_FORMAT, JOURNAL_VERSION = "vivim-studio-export-journal", 1
STAGING_NAME = re.compile(re.escape(STAGING_PREFIX) + r"(\d+)-[0-9a-f]{8}$")
MAX_JOURNAL_BYTES = 1 << 20
MAX_PATH_PARTS = 3  # manifests/<split>/<video_id>.json is the deepest output
TRASH = ".replaced"  # inside the staging folder: older outputs being replaced, deleted with the staging folder


@dataclass(frozen=True)
class Journal:
    path: Path
    staging: Path
    paths: tuple[PurePosixPath, ...]


def write_journal(root: Path, staging: Path, relative: list[Path]) -> Journal:
    journal = Journal(root / f"{staging.name}{JOURNAL_SUFFIX}", staging,
                      tuple(PurePosixPath(p.as_posix()) for p in relative))
    atomic_write(journal.path, json.dumps({"format": JOURNAL_FORMAT, "format_version": JOURNAL_VERSION,
                                           "staging": staging.name,
                                           "paths": [str(p) for p in journal.paths]}).encode())
    return journal


class _Refused(Exception):
    """What is wrong with a journal (turned into an ExportError naming the file)."""


def _refusal(journal: Path, reason: str) -> ExportError:
    staging = journal.name[:-len(JOURNAL_SUFFIX)] if journal.name.endswith(JOURNAL_SUFFIX) else None
    return ExportError(f"{journal}: {reason}; it is not a commit journal this Vivim Studio wrote, or it was altered, "
                       f"so it was not followed and nothing was changed. If the folder came from elsewhere, delete "
                       f"{journal}" + (f" (and the folder {journal.parent / staging}, if any)" if staging else "")
                       + ", or export into a new folder")


def _relative_path(text: object, root: Path, staging: Path) -> PurePosixPath:
    if not isinstance(text, str):
        raise _Refused(f"\"paths\" holds {text!r}, not a relative path")
    path = PurePosixPath(text)
    if path.is_absolute() or not 1 <= len(path.parts) <= MAX_PATH_PARTS or str(path) != text:
        raise _Refused(f"the path {text!r} is not a relative output path of at most {MAX_PATH_PARTS} parts")
    try:
        for part in path.parts:
            safe_name(part, "a journal path's part")
            if part.startswith(STAGING_PREFIX) or part == TRASH:
                raise _Refused(f"the path {text!r} names the export's own bookkeeping")
        confined(root, *path.parts)
        confined(staging, *path.parts)
    except UnsafePathError as exc:
        raise _Refused(f"the path {text!r} is unsafe ({exc})") from None
    return path


def read_journal(journal: Path) -> Journal:
    """The validated journal at `journal` (ExportError naming it, and what to do, when it is not ours)."""
    try:
        root = journal.parent
        try:
            info = os.lstat(journal)
        except OSError as exc:
            raise _Refused(f"cannot be read ({exc.strerror or exc})") from None
        if stat.S_ISLNK(info.st_mode):
            raise _Refused("is a symbolic link")
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_JOURNAL_BYTES:
            raise _Refused(f"is not a plain file of at most {MAX_JOURNAL_BYTES:,} bytes")
        try:
            data = json.loads(journal.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise _Refused(f"is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise _Refused("is not a JSON object")
        keys = set(data)
        legacy = keys == {"staging", "paths"}  # journals of the previous version carried no format
        if not legacy and (keys != {"format", "format_version", "staging", "paths"}
                           or data["format"] != JOURNAL_FORMAT or data["format_version"] != JOURNAL_VERSION):
            raise _Refused(f"has the fields {sorted(keys)}, expected format {JOURNAL_FORMAT!r} version "
                           f"{JOURNAL_VERSION} with \"staging\" and \"paths\"")
        own_name = journal.name[:-len(JOURNAL_SUFFIX)]
        if data["staging"] != own_name or not STAGING_NAME.match(own_name):
            raise _Refused(f"names the staging folder {data['staging']!r}, not its own ({own_name!r})")
        staging = root / own_name
        try:
            staged = os.lstat(staging)
        except FileNotFoundError:
            staged = None
        except OSError as exc:
            raise _Refused(f"its staging folder {staging} cannot be read ({exc.strerror or exc})") from None
        if staged is not None and not stat.S_ISDIR(staged.st_mode):
            raise _Refused(f"its staging folder {staging} is "
                           + ("a symbolic link" if stat.S_ISLNK(staged.st_mode) else "not a folder"))
        if not isinstance(data["paths"], list):
            raise _Refused("\"paths\" is not a list")
        paths = tuple(_relative_path(p, root, staging) for p in data["paths"])
        if len(set(paths)) != len(paths):
            raise _Refused("\"paths\" lists a path twice")
    except _Refused as exc:
        raise _refusal(journal, str(exc)) from None
    return Journal(journal, staging, paths)


def apply_journal(journal: Journal) -> None:
    """Idempotent: finish the moves a (validated) journal lists, then delete its staging folder and itself."""
    root, staging = journal.path.parent, journal.staging
    trash = staging / TRASH
    for rel in journal.paths:
        source, target = staging.joinpath(*rel.parts), root.joinpath(*rel.parts)
        if not os.path.lexists(source):
            continue  # moved before the interruption
        target.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(target):
            (trash / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(target, trash / rel)
        os.replace(source, target)
        fsync_dir(target.parent)
        if not target.exists():  # pragma: no cover - a file system that lies about renames
            raise ExportError(f"{target}: missing right after it was moved into place")
    remove_staging(staging)
    journal.path.unlink(missing_ok=True)
    fsync_dir(root)


def remove_staging(staging: Path) -> None:
    """Delete a staging folder of ours; a symbolic link (not ours) is never followed nor removed."""
    if staging.is_dir() and not staging.is_symlink():
        shutil.rmtree(staging, ignore_errors=True)


def abandoned(staging_name: str, folder: Path) -> bool:
    """Whether the export that owns `staging_name` has ended without finishing (its process is gone); another
    process's live export is left alone."""
    match = re.search(re.escape(STAGING_PREFIX) + r"(\d+)-", staging_name)
    if match is None:
        return False
    pid = int(match.group(1))
    if pid == os.getpid():
        return False
    if os.name == "nt":  # no cheap liveness test without extra packages: keep anything younger than a day
        try:
            return time.time() - (folder / staging_name).lstat().st_mtime > 86400
        except OSError:
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def complete_interrupted_exports(root: Path) -> None:
    """Finish the commits a crash interrupted (after checking their journals), and drop staging folders whose
    export process died before its commit. Only names of the export's own pattern are touched."""
    if not root.is_dir():
        parent = root.parent
        pattern = re.compile(re.escape(f".{root.name}") + STAGING_NAME.pattern)
        for stale in parent.iterdir() if parent.is_dir() else ():
            if pattern.match(stale.name) and abandoned(stale.name, parent):
                remove_staging(stale)
        return
    for journal_path in sorted(root.glob(f"{STAGING_PREFIX}*{JOURNAL_SUFFIX}")):
        if not abandoned(journal_path.name[:-len(JOURNAL_SUFFIX)], root):
            continue  # a live export is committing it right now
        journal = read_journal(journal_path)
        try:
            apply_journal(journal)
        except OSError as exc:
            raise ExportError(f"{journal_path}: an interrupted export could not be completed ({exc.strerror or exc}); "
                              f"remove {journal_path} and the folder {journal.staging}, then export again") from None
    for stale in root.iterdir():
        if STAGING_NAME.match(stale.name) and not (root / f"{stale.name}{JOURNAL_SUFFIX}").exists() \
                and abandoned(stale.name, root):
            remove_staging(stale)
