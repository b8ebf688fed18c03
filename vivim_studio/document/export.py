"""Export a document's masks: VTUS layout (default, what `vivim-core finetune` reads), plain PNG masks, a
NIfTI volume or a DICOM-SEG (`export_dicom_seg`, DICOM sources), each with a manifest JSON
(`<root>/manifests/...`) recording provenance and which lesions exist.

Lesions (`ExportOptions.lesions`, see `export_writers`): VTUS writes their union (binary, what training reads) by
default, or adds one folder per lesion ("separate"); PNG and NIfTI write label maps (each pixel's lesion id) by
default, or the union; DICOM-SEG always writes one segment per lesion.

Atomic: everything is written into a hidden staging folder inside ROOT, every file is read back and checked,
then the finished folders are renamed into place. If ROOT did not exist the whole staging folder becomes ROOT
in one rename. Otherwise (adding a video to an existing dataset) the renames are listed first in a journal
(`export_journal`); an interrupted commit is completed by the next export into the same ROOT, once its journal
is checked. A reader never sees half a video.

Privacy: the manifest holds the source's file name, identity hash, size and technical fields only; no DICOM
patient, study or institution fields are ever read into the document. The one exception is the DICOM-SEG file
itself, which carries the source's patient and study identifiers so that viewers link it to its images
(`export_dicom_seg.PRIVACY_NOTE`).
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vivim_core.file_safety import UnsafePathError, safe_name

from .atomic import atomic_write, fsync_dir
from .calibration import calibration_from_spacing
from .exceptions import ExportError
from .export_journal import (JOURNAL_SUFFIX, STAGING_PREFIX, apply_journal,  # noqa: F401 (re-exported)
                             complete_interrupted_exports, remove_staging, write_journal)
from .export_targets import (MANIFEST_FORMAT, check_apart_from_inputs, choose_video_id,  # noqa: F401
                             output_paths, safe_video_id)
from .export_dicom_seg import PRIVACY_NOTE, DicomSegWriter, require_dicom_source
from .export_writers import LESION_MODES, NiftiWriter, PngWriter, VtusWriter, lesion_folder
from .sources import MissingSource
from .status import FRAME_SELECTIONS, REVIEWED, FrameStatus, frames_in_selection, now_utc

FORMATS = ("vtus", "png", "nifti", "dicom-seg")
SELECTIONS = FRAME_SELECTIONS
UNREVIEWED_FLAG = "--include-unreviewed-proposals"  # the command line's name for selection "all"
MAX_SIZE = 16384
DEFAULT_LESIONS = {"vtus": "union", "png": "labels", "nifti": "labels"}


class ExportCancelled(ExportError):
    """The export was cancelled; nothing was left in the output folder."""


@dataclass
class ExportOptions:
    """format: vtus | png | nifti | dicom-seg (DICOM sources only; one segment per lesion, native size).
    selection: reviewed (default: frames a human edited or accepted, the only ones that are ground truth) |
    accepted | all (every frame, INCLUDING the model's unreviewed proposals: not ground truth; the manifest
    says which frames were reviewed).
    size: (H, W) to resize to (frames INTER_AREA/LINEAR, masks nearest), None = native.
    video_id: name of the video in the export, a plain file name (default: the source's name made safe, see
    `export_targets.safe_video_id`, unique in the output folder).
    lesions: union | labels | separate (see `export_writers`); None: the format's default (vtus union, png and
    nifti labels; dicom-seg: one segment per lesion, whatever this says).
    pixel_spacing_mm: a square pixel's size for the NIfTI volume (nifti only; default: the user's drawn
    calibration, else the DICOM file's spacing, else none)."""

    format: str = "vtus"
    split: str = "Train"
    selection: str = "reviewed"
    size: tuple[int, int] | None = None
    video_id: str | None = None
    frames: range | None = None  # restrict to a frame range (0-based)
    lesions: str | None = None
    pixel_spacing_mm: float | None = None

    @property
    def lesion_mode(self) -> str:
        if self.format == "dicom-seg":
            return "segments"
        return self.lesions or DEFAULT_LESIONS.get(self.format, "union")


@dataclass
class ExportResult:
    root: Path
    outputs: list[Path]
    manifest_path: Path
    frames: list[int] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def _resize(image: np.ndarray, size: tuple[int, int] | None, mask: bool) -> np.ndarray:
    """A frame (mask=False) or a label map uint8 / bool mask (mask=True, nearest neighbour: ids stay ids) at
    `size`, in the input's dtype."""
    if size is None or image.shape[:2] == tuple(size):
        return image
    if mask:
        resized = cv2.resize(image.view(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
        return resized > 0 if image.dtype == bool else resized
    shrinking = size[0] * size[1] < image.shape[0] * image.shape[1]
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def select_frames(document, options: ExportOptions) -> list[int]:
    return frames_in_selection(document, options.selection, options.frames, ExportError)


def _no_frames_message(document, options: ExportOptions) -> str:
    counts = ", ".join(f"{n} {s.value}" for s, n in document.status_counts().items() if n) or "no frames"
    where = f"{document.source.name}" + (f" (frames {options.frames.start + 1}-{options.frames.stop})"
                                         if options.frames is not None and len(options.frames) else "")
    if options.selection == "all":
        return f"no frame of {where} to export ({counts})"
    what = "accepted" if options.selection == "accepted" else "edited or accepted"
    return (f"no frame of {where} was {what} by a human yet ({counts}): review frames first (correct them, or "
            f"accept good proposals with A); a label export holds only reviewed frames. To export the model's "
            f"proposals as they are (not ground truth), ask for it explicitly ({UNREVIEWED_FLAG}, or the export "
            f"dialog's 'Include unreviewed proposals')")


def _json_safe(value: Any) -> Any:
    """`value` with anything JSON cannot hold faithfully (NaN, infinities, other types) turned into text."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return str(value)


def _manifest(document, options: ExportOptions, video_id: str, frames: list[int], names: list[str],
              files: dict[str, str], extra: dict[str, Any]) -> dict[str, Any]:
    from .. import __version__

    source, records = document.source, [document.record(i) for i in frames]
    lesion_ids = sorted({k for r in records for k in r.lesion_ids})
    frame_files = getattr(source, "frame_paths", None)  # frame folders: the file each exported frame came from
    identity = document.workspace.identity if document.workspace is not None else source.identity
    reviewed = [r.status in REVIEWED for r in records]
    return {
        "format": MANIFEST_FORMAT, "format_version": 1, "export_format": options.format,
        "created": now_utc(), "app_version": __version__, "video_id": video_id,
        "split": options.split if options.format == "vtus" else None,
        "source": {"kind": identity.kind, "name": source.name, "identity": identity.digest,
                   "identity_version": identity.version, "num_frames": identity.num_frames,
                   "frame_size": [identity.height, identity.width], "fps": source.fps,
                   "metadata": _json_safe(source.metadata)},
        "selection": options.selection, "includes_unreviewed_proposals": not all(reviewed),
        "size": list(options.size or document.frame_size),
        "resized": options.size is not None and tuple(options.size) != tuple(document.frame_size),
        "frame_range": [frames[0], frames[-1]] if frames else None, "files": files,
        "lesions": {"mode": options.lesion_mode, "ids": lesion_ids, "values": _lesion_values(options),
                    **({"folders": {str(k): lesion_folder(k) for k in lesion_ids}}
                       if options.lesion_mode == "separate" else {})},
        "frames": [{"index": i, "name": n, "status": r.status.value, "reviewed": ok, "mask_origin": r.mask_origin,
                    "model": r.model, "lesions": [{"id": x.id, "status": x.status.value, "origin": x.origin}
                                                  for x in r.lesions],
                    **({"source_file": frame_files[i].name} if frame_files else {})}
                   for i, n, r, ok in zip(frames, names, records, reviewed)],
        "reviewed_frames": [i for i, ok in zip(frames, reviewed) if ok],
        "unreviewed_frames": [i for i, ok in zip(frames, reviewed) if not ok],
        "human_edited_frames": [i for i, r in zip(frames, records) if r.status == FrameStatus.EDITED],
        "accepted_frames": [i for i, r in zip(frames, records) if r.status == FrameStatus.ACCEPTED],
        "models": sorted({r.model for r in records if r.model}),
        "checkpoint": _json_safe(document.checkpoint),
        **_json_safe(extra),
    }


def _lesion_values(options: ExportOptions) -> str:
    if options.lesion_mode == "segments":
        return "one segment per lesion, numbered by its lesion id"
    if options.lesion_mode == "labels":
        return "each pixel's lesion id, 0 background"
    lesion = "1" if options.format == "nifti" else "255"
    return f"{lesion} for every lesion, 0 background" + (
        f"; lesion<k>/ holds lesion k alone ({lesion} / 0)" if options.lesion_mode == "separate" else "")


def _check_path_text(text: str, what: str) -> None:
    """UnsafePathError for text no file system can take as a path (a NUL, or characters without an encoding)."""
    try:
        if "\x00" in text:
            raise ValueError("a NUL character")
        os.fsencode(text)
    except (ValueError, UnicodeError) as exc:
        raise UnsafePathError(f"{what} {text!r} cannot be a path ({exc}); choose another") from None


def _check_options(options: ExportOptions) -> None:
    if options.format not in FORMATS:
        raise ExportError(f"unknown export format {options.format!r}; choose one of {', '.join(FORMATS)}")
    if options.format == "dicom-seg" and options.lesions is not None:
        raise ExportError(f"a DICOM-SEG export always holds one segment per lesion; leave out --lesions "
                          f"{options.lesions}")
    if options.format != "dicom-seg" and options.lesion_mode not in LESION_MODES:
        raise ExportError(f"unknown lesion mode {options.lesions!r}; choose one of {', '.join(LESION_MODES)}")
    if options.format == "vtus" and options.lesion_mode == "labels":
        raise ExportError("a VTUS export holds binary masks (what training reads): choose --lesions union, or "
                          "separate for a folder per lesion beside them; label maps come with --format png or nifti")
    if options.format == "nifti" and options.lesion_mode == "separate":
        raise ExportError("a NIfTI export is one volume: choose --lesions labels (each voxel holds its lesion's id) "
                          "or union; a folder per lesion comes with --format vtus or png")
    if options.format == "vtus":
        safe_name(options.split, "--split")
        safe_name(f"{options.split}_GT", "--split")
        _check_path_text(options.split, "--split")
    if options.video_id is not None:
        safe_name(options.video_id, "--video-id")
        _check_path_text(options.video_id, "--video-id")
    if options.format == "dicom-seg" and options.size is not None:
        raise ExportError("a DICOM-SEG matches its source's frames pixel for pixel; leave out the size (--size)")
    if options.pixel_spacing_mm is not None and options.format != "nifti":
        raise ExportError("a pixel spacing (--pixel-spacing) is written into NIfTI volumes only; leave it out for "
                          f"--format {options.format}")
    if options.size is not None:
        size = tuple(options.size)
        if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_SIZE
                                     for v in size):
            raise ExportError(f"size {options.size!r}: give (height, width), each 1..{MAX_SIZE} pixels")


def _volume_spacing(document, options: ExportOptions) -> tuple[Any, str | None]:
    """The NIfTI volume's (row, column) pixel spacing in mm and where it comes from: --pixel-spacing, else the
    line the user drew, else the DICOM file's (one spacing for the whole image), else none; scaled when the
    frames are resized. The writer checks it again (a recorded spacing may be anything)."""
    if options.pixel_spacing_mm is not None:
        calibration = calibration_from_spacing(options.pixel_spacing_mm)
        spacing, source = calibration.spacing, calibration.source
    elif getattr(document, "user_calibration", None) is not None:
        spacing, source = document.user_calibration.calibration.spacing, document.user_calibration.calibration.source
    else:
        spacing, source = document.source.metadata.get("pixel_spacing_mm"), "the DICOM file"
    if spacing is None or options.size is None or tuple(options.size) == tuple(document.frame_size):
        return spacing, source
    try:  # a resized pixel covers more (or less) of the image
        (row, column), (height, width) = (float(v) for v in spacing), document.frame_size
        return (row * height / options.size[0], column * width / options.size[1]), f"{source}, resized"
    except (TypeError, ValueError):
        return spacing, source


def export_document(document, root: Path | str, options: ExportOptions | None = None,
                    progress: Callable[[int, int], None] | None = None,
                    cancel: Callable[[], bool] | None = None) -> ExportResult:
    """Export `document` into `root` (see the module docstring). Raises ExportError (ExportCancelled), or
    UnsafePathError for a name or folder that would write outside `root` or onto the video's own files."""
    options = options or ExportOptions()
    _check_options(options)
    _check_path_text(str(root), "the export folder")
    root = Path(root)
    frames = select_frames(document, options)
    if not frames:
        raise ExportError(_no_frames_message(document, options))
    if options.format == "vtus" and isinstance(document.source, MissingSource):
        raise ExportError(f"the VTUS export needs the video's frames, but {document.source.path} is not available; "
                          f"give the video's location (--source PATH), or export masks only (--format png/nifti)")
    if options.format == "dicom-seg":
        require_dicom_source(document)
    check_apart_from_inputs(document, root)
    try:
        complete_interrupted_exports(root)
        video_id = choose_video_id(document, root, options.format, options.split if options.format == "vtus"
                                   else None, options.video_id)
        fresh = not os.path.lexists(root)
    except OSError as exc:
        raise ExportError(f"{root}: the export folder cannot be used ({exc.strerror or exc}); choose another "
                          f"folder") from None
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
    mode = options.lesion_mode
    lesion_ids = sorted({k for i in frames for k in document.record(i).lesion_ids})
    extra: dict[str, Any] = {}
    if options.format == "vtus":
        writer = VtusWriter(staging, options.split, video_id, mode, lesion_ids)
    elif options.format == "png":
        writer = PngWriter(staging, video_id, mode, lesion_ids)
    elif options.format == "dicom-seg":
        writer = DicomSegWriter(staging, video_id, document)
    else:
        spacing, spacing_source = _volume_spacing(document, options)
        writer = NiftiWriter(staging, video_id, size, len(frames), spacing, mode)
        extra["pixel_spacing"] = {"mm": writer.spacing_mm, "source": spacing_source if writer.spacing_mm else None}
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
            names.append(writer.add(index, frame, _resize(document.labels(index), size, mask=True), original))
            if progress is not None:
                progress(len(names), len(frames))
    finally:
        writer.close()
    if isinstance(writer, NiftiWriter):
        writer.verify(_resize(document.labels(i), size, mask=True) for i in frames)
    if isinstance(writer, DicomSegWriter):
        writer.finish()
        extra.update(dicom_seg=writer.info, privacy=PRIVACY_NOTE)
    if len(names) != len(frames):
        raise ExportError(f"{document.source.path}: only {len(names)} of {len(frames)} frames could be read")
    files = {k: str(p.relative_to(staging)) for k, p in
             zip(("frames", "masks") if options.format == "vtus" else ("masks",), writer.outputs)}
    manifest_rel = Path(output_paths(options.format, options.split, video_id)[-1])
    manifest = _manifest(document, options, video_id, frames, names, files, extra)
    (staging / manifest_rel).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(staging / manifest_rel, (json.dumps(manifest, indent=1) + "\n").encode())
    if json.loads((staging / manifest_rel).read_text()) != json.loads(json.dumps(manifest)):
        raise ExportError(f"{staging / manifest_rel}: the manifest read back differs from what was written")
    return [*writer.outputs, staging / manifest_rel]
