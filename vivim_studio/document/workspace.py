"""The workspace: a folder that holds the expert's work on one video, saved atomically after every change.

See `workspace_format` for the layout and why a crash (even SIGKILL or a power cut) never corrupts it.
Opening validates everything before writing anything: a workspace of another video, one in use by another
process, or one edited into nonsense raises `WorkspaceError` and leaves the folder untouched.
"""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import os
from pathlib import Path
from typing import Any

from . import codec
from .atomic import FolderLock, LockFileError, atomic_write, fsync_dir, fsync_file, is_temp_file
from .exceptions import WorkspaceError
from .sources import MissingSource, SourceIdentity, VideoSource, open_source
from .status import FrameRecord
from .workspace_format import (BLOB_NAME, FORMAT, FORMAT_VERSION, FRAMES_DIR, MASKS_DIR, MODEL_NAME, MODELS_DIR,
                               PROBS_DIR, RECORD_NAME, STATE_FILE, WORKSPACE_FILE, StoredFrame, blob_name,
                               dump_json, frame_record_json, model_name, parse_frame_record, parse_state,
                               parse_workspace_file, record_name)

KEEP = object()  # save_frame(probability=KEEP): the probability file on disk stays as it is


def _source_description(source: VideoSource, folder: Path, previous_identities: set[str] = frozenset()
                        ) -> dict[str, Any]:
    path = source.path.resolve()
    try:
        relative = os.path.relpath(path, folder.resolve())
    except ValueError:  # another drive on Windows
        relative = None
    description = {"identity": source.identity.to_json(), "path": str(path), "relative_path": relative,
                   "name": source.name, "video_id": source.video_id, "fps": source.fps, "metadata": source.metadata}
    if previous_identities:
        description["previous_identities"] = sorted(previous_identities)
    return description


def identity_matches(recorded: SourceIdentity, source: VideoSource) -> bool:
    """Whether `source` is the video a workspace recorded: the same digest, or for a workspace of identity
    version 1 (sampled content) the same version-1 digest."""
    if recorded.version == 1:
        return recorded.digest == source.legacy_digest()
    return recorded.digest == source.identity.digest


class Workspace:
    """An open workspace folder. Use `Workspace.open_for(source, folder)` or `Workspace.open_existing(folder)`.

    `read_only=True` takes no lock and never writes (export while the GUI has the video open). A workspace
    folder that cannot be written (read-only medium or share, no permission) opens read-only as well, so the
    user can still view it; `read_only_reason` then says why, and edits raise `EditError` with that reason."""

    def __init__(self, folder: Path, info: dict[str, Any], read_only: bool):
        self.folder = Path(folder)
        self.identity: SourceIdentity = info["identity"]
        self.identity_aliases: set[str] = set(info.get("previous_identities", ()))  # digests of earlier versions
        self.source_info: dict[str, Any] = info["source"]
        self.format_version: int = info["format_version"]
        self.read_only = read_only
        self.read_only_reason: str | None = None  # why a workspace asked for writing was opened read-only
        self._files: dict[int, tuple[str | None, str | None]] = {}  # frame -> (mask file, probability file)
        self._lock: FolderLock | None = None
        self._unsynced: set[Path] = set()  # files written with durable=False, flushed by sync()
        self.ignored_files: list[Path] = []  # files named almost like frame records or masks: left alone
        self.warnings: list[str] = []  # what the user should know about this workspace (shown on open)

    # opening ------------------------------------------------------------------------------------------
    @classmethod
    def open_for(cls, source: VideoSource, folder: Path | str, create: bool = True, read_only: bool = False
                 ) -> "Workspace":
        """Open (or create) the workspace of `source` at `folder`; refuses another video's workspace."""
        folder = Path(folder)
        if not (folder / WORKSPACE_FILE).exists():
            if read_only or not create:
                raise WorkspaceError(f"{folder}: no workspace here (no {WORKSPACE_FILE})")
            cls._create(folder, source)
        workspace = cls.open_existing(folder, read_only=read_only, _source=source)
        if not workspace.read_only and workspace.source_info.get("path") != str(source.path.resolve()):
            try:
                workspace._rewrite_source(source)  # same video, moved: remember where it is now
            except BaseException:
                workspace.close()
                raise
        return workspace

    @classmethod
    def open_existing(cls, folder: Path | str, read_only: bool = False, _source: VideoSource | None = None
                      ) -> "Workspace":
        folder = Path(folder)
        if not (folder / WORKSPACE_FILE).is_file():
            raise WorkspaceError(f"{folder}: not a Vivim Studio workspace (no {WORKSPACE_FILE} inside)")
        info = parse_workspace_file(folder)
        if _source is not None and not identity_matches(info["identity"], _source):
            recorded = info["source"].get("name") or "another video"
            raise WorkspaceError(
                f"{folder}: this workspace belongs to another video ({recorded}: {info['identity'].describe()}); "
                f"the video opened is {_source.identity.describe()}. Open the workspace's own video, or choose "
                f"another workspace folder for this one (e.g. --workspace NEW_FOLDER). Nothing was changed.")
        workspace = cls(folder, info, read_only)
        if not read_only:
            workspace._check_own_folders()
            workspace._acquire_lock()
        if _source is not None:
            try:
                workspace._adopt_identity(_source)
            except BaseException:
                workspace.close()
                raise
        return workspace

    def _check_own_folders(self) -> None:
        """Refuse to write through a sub-folder that is a link: saves and clean-ups would land elsewhere."""
        for sub in (FRAMES_DIR, MASKS_DIR, PROBS_DIR, MODELS_DIR):
            path = self.folder / sub
            if path.is_symlink() or (os.path.lexists(path) and not path.is_dir()):
                what = f"a symbolic link to {os.readlink(path)}" if path.is_symlink() else "not a folder"
                raise WorkspaceError(f"{path}: is {what}; a workspace keeps its files in its own folders, so it was "
                                     f"not opened for editing (saves would be written there). Replace it by a real "
                                     f"folder (e.g. a copy of what it points to), or open the workspace read-only")

    def _adopt_identity(self, source: VideoSource) -> None:
        """After `identity_matches`: a version-1 identity is replaced by the source's current one (in memory;
        in workspace.json too when writable), the old digest kept as an alias (older exports name it)."""
        if self.identity.version == source.identity.version:
            return
        self.identity_aliases.add(self.identity.digest)
        self.identity = source.identity
        if not self.read_only:
            self._rewrite_source(source)

    @staticmethod
    def _create(folder: Path, source: VideoSource) -> None:
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise WorkspaceError(f"{folder}: exists and is not a Vivim Studio workspace (no {WORKSPACE_FILE}); "
                                 f"choose a new or empty folder for the workspace")
        try:
            for sub in (FRAMES_DIR, MASKS_DIR, PROBS_DIR):
                (folder / sub).mkdir(parents=True, exist_ok=True)
            created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            from .. import __version__
            atomic_write(folder / WORKSPACE_FILE, dump_json({
                "format": FORMAT, "format_version": FORMAT_VERSION, "created": created,
                "app_version": __version__, "source": _source_description(source, folder)}))
        except OSError as exc:
            raise WorkspaceError(f"{folder}: cannot create the workspace here ({exc.strerror or exc}); choose a "
                                 f"writable folder (e.g. --workspace DIR)") from None

    def _acquire_lock(self) -> None:
        """Lock the workspace for writing. A folder that cannot be written (read-only medium, no permission)
        opens read-only instead, with `read_only_reason` saying why: the user can still view it."""
        unwritable = [p for p in (self.folder, *(self.folder / s for s in (FRAMES_DIR, MASKS_DIR, PROBS_DIR)))
                      if p.is_dir() and not os.access(p, os.W_OK)]
        if unwritable:
            self._open_read_only(f"{unwritable[0]} is not writable")
            return
        lock = FolderLock(self.folder)
        try:
            acquired = lock.acquire()
        except LockFileError as exc:
            raise WorkspaceError(f"{lock.path}: the workspace's lock file {exc.strerror}; writing into it could "
                                 f"change another file, so the workspace was not opened for editing. Delete "
                                 f"{lock.path} (it holds nothing but a process id) and open it again, or open the "
                                 f"workspace read-only") from None
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                self._open_read_only(exc.strerror or str(exc))
                return
            raise WorkspaceError(f"{self.folder}: cannot write in the workspace ({exc.strerror or exc}); open it "
                                 f"read-only or copy it to a writable place") from None
        if not acquired:
            holder = lock.holder()
            raise WorkspaceError(f"{self.folder}: the workspace is open in another Vivim Studio process"
                                 + (f" (pid {holder})" if holder else "") + "; close it there first")
        self._lock = lock

    def _open_read_only(self, reason: str) -> None:
        self.read_only = True
        self.read_only_reason = (f"{self.folder}: the workspace folder cannot be written ({reason}), so it is open "
                                 f"read-only and edits cannot be saved. To edit, copy the folder to a writable "
                                 f"place and open that copy (or make it writable)")

    def mark_current_format(self) -> None:
        """An older workspace opened for writing, once its records validated: mark it with this format's version
        (its records are read as they are, see `workspace_format`), so that an older Vivim Studio refuses it
        instead of misreading the label maps written from now on. No-op when current or read-only."""
        if self.read_only or self.format_version >= FORMAT_VERSION:
            return
        data = parse_workspace_file(self.folder)["raw"]
        data["format_version"] = FORMAT_VERSION
        self._write(self.folder / WORKSPACE_FILE, dump_json(data), True)
        self.format_version = FORMAT_VERSION

    def _rewrite_source(self, source: VideoSource) -> None:
        data = parse_workspace_file(self.folder)["raw"]
        data["source"] = _source_description(source, self.folder, self.identity_aliases)
        data["format_version"] = max(self.format_version, 2)  # 3 once the records validated (`mark_current_format`)
        self._write(self.folder / WORKSPACE_FILE, dump_json(data), True)
        self.format_version = data["format_version"]
        self.source_info = data["source"]

    def source_candidates(self) -> list[Path]:
        """Where the source video may be: the recorded path relative to the workspace, then absolute."""
        found = []
        if self.source_info.get("relative_path"):
            found.append((self.folder / self.source_info["relative_path"]).resolve())
        if self.source_info.get("path"):
            found.append(Path(self.source_info["path"]))
        return found

    def find_source(self, source_path: Path | str | None = None, require: bool = False,
                    cache_bytes: int = 256 * 2**20) -> VideoSource:
        """The workspace's video, opened: at `source_path` if given, else where the workspace recorded it.
        Not found and not `require`d: a `MissingSource` (masks usable, `frame()` raises). A video of another
        identity is a WorkspaceError."""
        candidates = [Path(source_path)] if source_path is not None else self.source_candidates()
        existing = next((p for p in candidates if p.exists()), None)
        if existing is None:
            if require or source_path is not None:
                raise WorkspaceError(f"{self.folder}: the workspace's video is not at "
                                     f"{' or '.join(map(str, candidates)) or '(unknown)'}; give it with --source")
            recorded = Path(self.source_info.get("path") or self.source_info.get("name") or "video")
            source = MissingSource(recorded, self.identity, self.source_info.get("fps"))
            source.video_id = self.source_info.get("video_id") or source.video_id
            return source
        source = open_source(existing, cache_bytes=cache_bytes)
        try:
            if not identity_matches(self.identity, source):
                raise WorkspaceError(f"{self.folder}: {existing} is not this workspace's video (it is "
                                     f"{source.identity.describe()}; the workspace's is {self.identity.describe()}); "
                                     f"give the right one with --source")
            self._adopt_identity(source)
        except BaseException:
            source.close()
            raise
        return source

    # reading ------------------------------------------------------------------------------------------
    def load_frames(self) -> dict[int, StoredFrame]:
        """Every frame record, validated (WorkspaceError naming the first bad file). Only the canonical name of
        a frame's record (`record_name`) is read: a file that merely looks like one (`0000005.json` beside
        `000005.json`) is left alone and listed in `ignored_files` and `warnings`."""
        frames_dir = self.folder / FRAMES_DIR
        frames: dict[int, StoredFrame] = {}
        ignored = []
        if frames_dir.is_dir():
            for entry in sorted(os.scandir(frames_dir), key=lambda e: e.name):
                match = RECORD_NAME.match(entry.name)
                if not match:
                    continue
                index = int(match.group(1))
                if entry.name != record_name(index):
                    ignored.append(Path(entry.path))
                    continue
                frames[index] = parse_frame_record(Path(entry.path), index, self.identity.num_frames,
                                                   (self.identity.height, self.identity.width))
        self._files = {i: (f.mask_file, f.probability_file) for i, f in frames.items()}
        self.ignored_files = ignored
        if ignored:
            names = ", ".join(p.name for p in ignored[:5]) + (f" and {len(ignored) - 5} more" if len(ignored) > 5
                                                              else "")
            self.warnings.append(f"{frames_dir}: {len(ignored)} file(s) named like frame records but not as this "
                                 f"workspace names them were ignored and left as they are ({names}); each frame's "
                                 f"record is frames/NNNNNN.json. Move them out of the workspace if they are not "
                                 f"needed")
        return frames

    def load_state(self) -> dict[str, Any]:
        return parse_state(self.folder, self.identity.num_frames)

    def read_probability(self, index: int) -> bytes:
        name = self._files.get(index, (None, None))[1]
        if name is None:
            raise WorkspaceError(f"{self.folder}: frame {index} has no probability map")
        path = self.folder / PROBS_DIR / name
        try:
            data = path.read_bytes()
            codec.check_png(data)
        except OSError as exc:
            raise WorkspaceError(f"{path}: cannot read the probability map ({exc.strerror or exc})") from None
        except codec.CodecError as exc:
            raise WorkspaceError(f"{path}: damaged probability map ({exc}); propose masks again to replace it "
                                 f"(the frame's mask is not affected)") from None
        return data

    def blob_path(self, index: int, kind: str) -> Path | None:
        """The file holding frame `index`'s "mask" or "probability" map (None when it has none)."""
        mask_file, prob_file = self._files.get(index, (None, None))
        name = mask_file if kind == "mask" else prob_file
        return None if name is None else self.folder / (MASKS_DIR if kind == "mask" else PROBS_DIR) / name

    def remove_leftovers(self) -> None:
        """Delete temp files and mask/probability files no record names (what a crash can leave behind).
        Call after `load_frames` validated the workspace. Only files named exactly as this workspace names its
        own are touched; while files that look like frame records were ignored (`ignored_files`), no mask or
        probability file is deleted at all (one of them may name it)."""
        named = {sub: {files[k] for files in self._files.values() if files[k]}
                 for k, sub in enumerate((MASKS_DIR, PROBS_DIR))}
        for sub in (".", FRAMES_DIR, MASKS_DIR, PROBS_DIR, MODELS_DIR):
            folder = self.folder / sub
            if not folder.is_dir() or folder.is_symlink():
                continue
            for entry in os.scandir(folder):
                blob = BLOB_NAME.match(entry.name)
                orphan = (sub in named and not self.ignored_files and blob is not None
                          and entry.name == blob_name(int(blob.group(1)), blob.group(2))
                          and entry.name not in named[sub])
                if (is_temp_file(entry.name) or orphan) and entry.is_file(follow_symlinks=False):
                    try:
                        os.unlink(entry.path)
                    except OSError:
                        pass

    # writing ------------------------------------------------------------------------------------------
    def _write(self, path: Path, data: bytes, durable: bool) -> None:
        if self.read_only:
            raise WorkspaceError(self.read_only_reason or f"{self.folder}: opened read-only; nothing can be saved")
        try:
            atomic_write(path, data, durable)
            if not durable:
                self._unsynced.add(path)
        except OSError as exc:
            raise WorkspaceError(f"{path}: could not save ({exc.strerror or exc}); your work is kept in memory: "
                                 f"free disk space or fix permissions, it is saved again with the next change "
                                 f"(or on close)") from None

    def _write_blob(self, sub: str, index: int, data: bytes, durable: bool) -> str:
        name = blob_name(index, hashlib.sha256(data).hexdigest())
        path = self.folder / sub / name
        if not path.exists():  # content-named: an existing file already holds exactly these bytes
            self._write(path, data, durable)
        return name

    def save_frame(self, index: int, record: FrameRecord, mask: bytes | None, probability: Any = KEEP,
                   durable: bool = True) -> None:
        """Persist one frame: mask bytes (None: empty), probability bytes / None (none) / KEEP."""
        old_mask, old_prob = self._files.get(index, (None, None))
        mask_file = self._write_blob(MASKS_DIR, index, mask, durable) if mask is not None else None
        if probability is KEEP:
            prob_file = old_prob
        else:
            prob_file = self._write_blob(PROBS_DIR, index, probability, durable) if probability else None
        self._write(self.folder / FRAMES_DIR / record_name(index),
                    frame_record_json(index, record, mask_file, prob_file), durable)
        self._files[index] = (mask_file, prob_file)
        for sub, old, new in ((MASKS_DIR, old_mask, mask_file), (PROBS_DIR, old_prob, prob_file)):
            if old is not None and old != new:
                try:
                    os.unlink(self.folder / sub / old)
                except OSError:
                    pass  # an orphan is harmless; the next open removes it

    def save_state(self, state: dict[str, Any], durable: bool = True) -> None:
        self._write(self.folder / STATE_FILE, dump_json(state), durable)

    # the workspace's adapted model -------------------------------------------------------------------------
    def model_path(self, reference: dict[str, Any] | None) -> Path | None:
        """The checkpoint file a validated state "model" reference names, if it is there and looks like a Vivim
        checkpoint (header only); None otherwise (the caller falls back to the default checkpoint)."""
        if reference is None:
            return None
        path = self.folder / MODELS_DIR / reference["file"]
        try:
            if path.is_symlink() or not path.is_file():
                return None
        except OSError:
            return None
        from ..services.checkpoint_header import is_vivim_checkpoint

        return path if is_vivim_checkpoint(path) else None

    def save_model(self, model, provenance: dict[str, Any], keep: int = 2) -> dict[str, Any]:
        """Write `model` as the next models/adapted-NNNN.safetensors; returns its state reference {"file",
        "sha256"}. Older adapted models beyond the newest `keep` are deleted (their lineage stays in the
        provenance of the newer ones)."""
        from vivim_core.engine.checkpoint import checkpoint_sha256, save_checkpoint

        if self.read_only:
            raise WorkspaceError(self.read_only_reason or f"{self.folder}: opened read-only; nothing can be saved")
        folder = self.folder / MODELS_DIR
        folder.mkdir(exist_ok=True)
        numbers = sorted(int(m.group(1)) for e in os.scandir(folder) if (m := MODEL_NAME.match(e.name)))
        name = model_name((numbers[-1] + 1) if numbers else 1)
        try:
            save_checkpoint(model, folder / name, provenance)
        except OSError as exc:
            raise WorkspaceError(f"{folder / name}: could not save the adapted model ({exc.strerror or exc}); free "
                                 f"disk space or check the drive") from None
        for number in numbers[:max(0, len(numbers) + 1 - keep)]:
            try:
                os.unlink(folder / model_name(number))
            except OSError:
                pass
        return {"file": name, "sha256": checkpoint_sha256(folder / name)}

    def sync(self) -> None:
        """Make the bulk (durable=False) writes durable: fsync exactly those files, then the folders. (Not
        `os.sync()`, which would wait for every other program's writes too.)"""
        if self.read_only or not self._unsynced:
            return
        try:
            for path in sorted(self._unsynced):
                try:
                    fsync_file(path)
                except FileNotFoundError:
                    pass  # replaced or deleted since: its successor was written (and is listed) or not needed
            for sub in (".", FRAMES_DIR, MASKS_DIR, PROBS_DIR):
                fsync_dir(self.folder / sub)
        except OSError as exc:
            raise WorkspaceError(f"{self.folder}: could not flush the workspace to disk ({exc.strerror or exc}); "
                                 f"free disk space or check the drive") from None
        self._unsynced.clear()

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
