"""Export a document's masks: VTUS layout (default, what `vivim-core finetune` reads), plain PNG masks or a
NIfTI volume, each with a manifest JSON (`<root>/manifests/...`) recording provenance.

Atomic: everything is written into a hidden staging folder inside ROOT, every file is read back and checked,
then the finished folders are renamed into place. If ROOT did not exist the whole staging folder becomes ROOT
in one rename. Otherwise (adding a video to an existing dataset) the renames are listed first in a journal
(`export_journal`); an interrupted commit is completed by the next export into the same ROOT, once its journal
is checked. A reader never sees half a video.

Privacy: the manifest holds the source's file name, identity hash, size and technical fields only; no DICOM
patient, study or institution fields are ever read into the document.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .atomic import atomic_write, fsync_dir
from .exceptions import ExportError
from .export_journal import (JOURNAL_SUFFIX, STAGING_PREFIX, apply_journal, complete_interrupted_exports,
                             remove_staging, write_journal)
from .export_writers import NiftiWriter, PngWriter, VtusWriter
from .sources import MissingSource
from .status import FrameStatus, now_utc

FORMATS = ("vtus", "png", "nifti")
SELECTIONS = {"all": None, "reviewed": (FrameStatus.EDITED, FrameStatus.ACCEPTED),
              "accepted": (FrameStatus.ACCEPTED,)}


class ExportCancelled(ExportError):
    """The export was cancelled; nothing was left in the output folder."""


@dataclass
class ExportOptions:
    """format: vtus | png | nifti. selection: all | reviewed (edited or accepted) | accepted.
    size: (H, W) to resize to (frames INTER_AREA/LINEAR, masks nearest), None = native.
    video_id: name of the video in the export (default: the source's name, sanitised)."""

    format: str = "vtus"
    split: str = "Train"
    selection: str = "all"
    size: tuple[int, int] | None = None
    video_id: str | None = None
    frames: range | None = None  # restrict to a frame range (0-based)


@dataclass
class ExportResult:
    root: Path
    outputs: list[Path]
    manifest_path: Path
    frames: list[int] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def safe_video_id(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "video"
    return cleaned


def _resize(image: np.ndarray, size: tuple[int, int] | None, mask: bool) -> np.ndarray:
    if size is None or image.shape[:2] == tuple(size):
        return image
    if mask:
        return cv2.resize(image.astype(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST) > 0
    shrinking = size[0] * size[1] < image.shape[0] * image.shape[1]
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def select_frames(document, options: ExportOptions) -> list[int]:
    if options.selection not in SELECTIONS:
        raise ExportError(f"unknown selection {options.selection!r}; choose one of {', '.join(SELECTIONS)}")
    wanted = SELECTIONS[options.selection]
    frames = options.frames if options.frames is not None else range(document.num_frames)
    return [i for i in frames if 0 <= i < document.num_frames and (wanted is None or document.status(i) in wanted)]


def _manifest(document, options: ExportOptions, video_id: str, frames: list[int], names: list[str],
              files: dict[str, str]) -> dict[str, Any]:
    from .. import __version__

    source, records = document.source, [document.record(i) for i in frames]
    frame_files = getattr(source, "frame_paths", None)  # frame folders: the file each exported frame came from
    identity = document.workspace.identity if document.workspace is not None else source.identity
    return {
        "format": "vivim-studio-export", "format_version": 1, "export_format": options.format,
        "created": now_utc(), "app_version": __version__, "video_id": video_id,
        "split": options.split if options.format == "vtus" else None,
        "source": {"kind": identity.kind, "name": source.name, "identity": identity.digest,
                   "num_frames": identity.num_frames, "frame_size": [identity.height, identity.width],
                   "fps": source.fps, "metadata": source.metadata},
        "selection": options.selection, "size": list(options.size or document.frame_size),
        "resized": options.size is not None and tuple(options.size) != tuple(document.frame_size),
        "frame_range": [frames[0], frames[-1]] if frames else None, "files": files,
        "frames": [{"index": i, "name": n, "status": r.status.value, "mask_origin": r.mask_origin, "model": r.model,
                    **({"source_file": frame_files[i].name} if frame_files else {})}
                   for i, n, r in zip(frames, names, records)],
        "human_edited_frames": [i for i, r in zip(frames, records) if r.status == FrameStatus.EDITED],
        "accepted_frames": [i for i, r in zip(frames, records) if r.status == FrameStatus.ACCEPTED],
        "models": sorted({r.model for r in records if r.model}),
        "checkpoint": document.checkpoint,
    }


def export_document(document, root: Path | str, options: ExportOptions | None = None,
                    progress: Callable[[int, int], None] | None = None,
                    cancel: Callable[[], bool] | None = None) -> ExportResult:
    """Export `document` into `root` (see the module docstring). Raises ExportError (ExportCancelled)."""
    options = options or ExportOptions()
    if options.format not in FORMATS:
        raise ExportError(f"unknown export format {options.format!r}; choose one of {', '.join(FORMATS)}")
    root = Path(root)
    video_id = safe_video_id(options.video_id or document.source.video_id)
    frames = select_frames(document, options)
    if not frames:
        raise ExportError(f"no frame of {document.source.name} matches the selection {options.selection!r} "
                          f"(status counts: { {k.value: v for k, v in document.status_counts().items()} })")
    if options.format == "vtus" and isinstance(document.source, MissingSource):
        raise ExportError(f"the VTUS export needs the video's frames, but {document.source.path} is not available; "
                          f"give the video's location (--source PATH), or export masks only (--format png/nifti)")
    complete_interrupted_exports(root)
    fresh = not root.exists()
    tag = f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging = root.parent / f".{root.name}{tag}" if fresh else root / tag
    try:
        staging.mkdir(parents=True)
        result = _write_staged(document, staging, options, video_id, frames, progress, cancel)
        outputs = [root / p.relative_to(staging) for p in result]
        if fresh:
            os.replace(staging, root)
            fsync_dir(root.parent)
        else:
            apply_journal(write_journal(root, staging, [p.relative_to(staging) for p in result]))
    except OSError as exc:
        remove_staging(staging)
        raise ExportError(f"{root}: the export could not be written ({exc.strerror or exc}); nothing was left "
                          f"half-written. Free disk space or choose another --out folder") from None
    except BaseException:
        remove_staging(staging)
        raise
    manifest_path = outputs[-1]
    return ExportResult(root, outputs[:-1], manifest_path, frames, json.loads(manifest_path.read_text()))


def _write_staged(document, staging: Path, options: ExportOptions, video_id: str, frames: list[int],
                  progress, cancel) -> list[Path]:
    """Write and verify every file in `staging`; returns the top-level outputs, the manifest last."""
    size = tuple(options.size) if options.size else document.frame_size
    if options.format == "vtus":
        writer = VtusWriter(staging, options.split, video_id)
    elif options.format == "png":
        writer = PngWriter(staging, video_id)
    else:
        writer = NiftiWriter(staging, video_id, size, len(frames), document.source.metadata.get("pixel_spacing_mm"))
    wanted = set(frames)
    frame_files = getattr(document.source, "frame_paths", None)  # JPEG frame files are copied, not re-encoded
    copy_jpeg = frame_files is not None and options.size is None and options.format == "vtus"
    frame_iter = (document.source.iter_frames(frames[0], frames[-1] + 1) if writer.needs_frames
                  else ((i, None) for i in range(frames[0], frames[-1] + 1)))
    names = []
    try:
        for index, frame in frame_iter:
            if index not in wanted:
                continue
            if cancel is not None and cancel():
                raise ExportCancelled("export cancelled; nothing was written")
            frame = None if frame is None else _resize(frame, size, mask=False)
            original = frame_files[index] if copy_jpeg and frame_files[index].suffix.lower() in (".jpg", ".jpeg") \
                else None
            names.append(writer.add(index, frame, _resize(document.mask(index), size, mask=True), original))
            if progress is not None:
                progress(len(names), len(frames))
    finally:
        writer.close()
    if isinstance(writer, NiftiWriter):
        writer.verify(_resize(document.mask(i), size, mask=True) for i in frames)
    if len(names) != len(frames):
        raise ExportError(f"{document.source.path}: only {len(names)} of {len(frames)} frames could be read")
    files = {k: str(p.relative_to(staging)) for k, p in
             zip(("frames", "masks") if options.format == "vtus" else ("masks",), writer.outputs)}
    manifest_rel = (Path("manifests") / options.split / f"{video_id}.json" if options.format == "vtus"
                    else Path("manifests") / f"{video_id}.json")
    manifest = _manifest(document, options, video_id, frames, names, files)
    (staging / manifest_rel).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(staging / manifest_rel, (json.dumps(manifest, indent=1) + "\n").encode())
    if json.loads((staging / manifest_rel).read_text()) != json.loads(json.dumps(manifest)):
        raise ExportError(f"{staging / manifest_rel}: the manifest read back differs from what was written")
    return [*writer.outputs, staging / manifest_rel]
