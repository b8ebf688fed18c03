"""Lesion size report of a video: every lesion measured on every reviewed frame, and per lesion the frame where
its long axis is largest. Information for the clinician, not a diagnosis.

    result = write_report(document, "report/", ReportOptions(task="thyroid"))
    result.rows          # [LesionFrame]: one per lesion and frame, in frame order
    result.lesions       # [LesionSummary]: per lesion, its key frame (largest long axis)

Writes into the chosen folder (created; apart from the video, its dataset and its workspace):
    measurements.csv   frame (numbered from 1), lesion, status, area_mm2, long_axis_mm, short_axis_mm,
                       spacing_source, area_px, long_axis_px, short_axis_px, touches_image_edge: the mm columns
                       are empty and spacing_source says "uncalibrated" where no calibration backs a millimetre
    summary.json       the video (name, identity; never a patient field), the calibrations, each lesion's key
                       frame with its numbers and calipers, and the size thresholds of the task (thyroid: ACR
                       TI-RADS; polyp: size categories), as information
    report.png         the long axis over the frames for each lesion, and each lesion's key frame with calipers
Each file is written atomically. A folder that holds another video's report is refused.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from vivim_core.file_safety import check_output_apart, confined

from .atomic import atomic_write
from .calibration import Calibration
from .exceptions import ExportError, SourceError
from .export_targets import export_inputs
from .lesion_view import lesion_masks, lesion_status
from .measurements import Axis, LesionMeasurement, measure_lesion
from .size_information import NOT_A_DIAGNOSIS, size_information
from .status import FRAME_SELECTIONS, FrameStatus, frames_in_selection, now_utc

REPORT_FORMAT = "vivim-studio-report"
CSV_NAME, SUMMARY_NAME, FIGURE_NAME = "measurements.csv", "summary.json", "report.png"
CSV_COLUMNS = ("frame", "lesion", "status", "area_mm2", "long_axis_mm", "short_axis_mm", "spacing_source",
               "area_px", "long_axis_px", "short_axis_px", "touches_image_edge")
EDGE_NOTE = "the lesion touches the image's edge: it may extend beyond the image, and measure larger"
UNCALIBRATED = "uncalibrated"
SELECTIONS = FRAME_SELECTIONS
TASKS = ("thyroid", "polyp")
PRECEDENCE = ("a calibration the user gives (--pixel-spacing, or a line drawn over a known length) applies to the "
              "whole image and comes first; otherwise the file's: the ultrasound region that holds the lesion's "
              "centre, else its Pixel Spacing; without any, lengths are in pixels and marked uncalibrated")


class ReportError(ExportError):
    """A report that cannot be written (no reviewed frame, a folder that is not free): the message says why."""


@dataclass(frozen=True)
class LesionFrame:
    """One lesion on one frame (0-based `frame`): its size in pixels and, with a calibration, in millimetres."""

    frame: int
    lesion: int
    status: FrameStatus
    pixels: LesionMeasurement  # lengths in pixels
    physical: LesionMeasurement | None  # lengths in mm; None: uncalibrated
    calibration: Calibration | None
    touches_edge: bool = False  # the mask reaches the image's border: the lesion may be cut off

    @property
    def spacing_source(self) -> str:
        return self.calibration.source if self.calibration is not None else UNCALIBRATED

    @property
    def long_axis_mm(self) -> float | None:
        return None if self.physical is None else self.physical.long_axis_mm

    def csv_row(self) -> list[str]:
        physical = self.physical
        mm = ["", "", ""] if physical is None else [_number(physical.area_mm2), _number(physical.long_axis_mm),
                                                     _number(physical.short_axis_mm)]
        return [str(self.frame + 1), str(self.lesion), self.status.value, *mm, self.spacing_source,
                str(self.pixels.area_px), _number(_length(self.pixels.long_axis)),
                _number(_length(self.pixels.short_axis)), "yes" if self.touches_edge else "no"]

    def to_json(self) -> dict[str, Any]:
        physical = self.physical
        return {"frame": self.frame + 1, "lesion": self.lesion, "status": self.status.value,
                "calibrated": physical is not None,
                "area_mm2": _rounded(physical.area_mm2) if physical else None,
                "long_axis_mm": _rounded(physical.long_axis_mm) if physical else None,
                "short_axis_mm": _rounded(physical.short_axis_mm) if physical else None,
                "spacing_source": self.spacing_source,
                "spacing_mm": list(self.calibration.spacing) if self.calibration is not None else None,
                "area_px": self.pixels.area_px, "long_axis_px": _rounded(_length(self.pixels.long_axis)),
                "short_axis_px": _rounded(_length(self.pixels.short_axis)),
                "calipers_px": _calipers(physical or self.pixels),
                "touches_image_edge": self.touches_edge, **({"note": EDGE_NOTE} if self.touches_edge else {})}


@dataclass(frozen=True)
class LesionSummary:
    """A lesion over the video: its key frame (the largest long axis: in mm among its calibrated frames, in
    pixels when none is calibrated) and the size thresholds of the task, as information."""

    lesion: int
    rows: list[LesionFrame]
    key: LesionFrame
    size_information: dict[str, Any] | None

    @property
    def calibrated_frames(self) -> int:
        return sum(row.physical is not None for row in self.rows)

    def to_json(self) -> dict[str, Any]:
        uncalibrated = len(self.rows) - self.calibrated_frames
        return {"lesion": self.lesion, "frames": [row.frame + 1 for row in self.rows],
                "calibrated_frames": self.calibrated_frames, "uncalibrated_frames": uncalibrated,
                "key_frame": self.key.to_json(),
                "key_frame_chosen_by": "largest long axis in mm" if self.key.physical is not None
                else "largest long axis in pixels (no frame of this lesion is calibrated)",
                "size_information": self.size_information}


@dataclass
class ReportOptions:
    """selection: reviewed (frames a human edited or accepted; default) | accepted | all (including the model's
    unreviewed proposals). pixel_spacing_mm: a square pixel's size given by the user, applied to every lesion.
    task: thyroid | polyp (which size thresholds to show) | None. frames: a range of frames (0-based)."""

    selection: str = "reviewed"
    pixel_spacing_mm: float | None = None
    task: str | None = None
    frames: range | None = None


@dataclass
class ReportResult:
    folder: Path
    files: list[Path]
    rows: list[LesionFrame]
    lesions: list[LesionSummary]
    summary: dict[str, Any] = field(default_factory=dict)


def _length(axis: Axis | None) -> float | None:
    return None if axis is None else axis.length


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _calipers(measurement: LesionMeasurement) -> dict[str, Any]:
    ends = {name: None if axis is None else [[round(float(v), 2) for v in point] for point in axis.ends]
            for name, axis in (("long_axis", measurement.long_axis), ("short_axis", measurement.short_axis))}
    return ends


def _scaled(pixels: LesionMeasurement, mm: float) -> LesionMeasurement:
    """`pixels` (measured without a spacing) in millimetres for square pixels of `mm`: every length scales by
    `mm` (what `measure_lesion(mask, (mm, mm))` computes, without measuring again)."""
    def scale(axis: Axis | None) -> Axis | None:
        return None if axis is None else replace(axis, length=axis.length * mm)
    return LesionMeasurement(pixels.area_px, scale(pixels.long_axis), scale(pixels.short_axis), (mm, mm))


def measure_lesion_frame(document, frame: int, lesion: int, mask: np.ndarray,
                         override: Calibration | None = None) -> LesionFrame:
    """Measure one lesion's `mask` (bool (H, W)) on `frame` with the calibration that applies to it."""
    calibration = document.calibration_for(mask, override)
    pixels = measure_lesion(mask)
    physical = None
    if calibration is not None:
        row_mm, column_mm = calibration.spacing
        physical = _scaled(pixels, row_mm) if row_mm == column_mm else measure_lesion(mask, calibration.spacing)
    edge = bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
    return LesionFrame(frame, lesion, lesion_status(document, frame, lesion), pixels, physical, calibration, edge)


def select_frames(document, options: ReportOptions) -> list[int]:
    return frames_in_selection(document, options.selection, options.frames, ReportError)


def measure_frames(document, frames: list[int], override: Calibration | None = None,
                   progress: Callable[[int, int], None] | None = None) -> list[LesionFrame]:
    """Every lesion present on each of `frames` (0-based), measured; in frame then lesion order."""
    rows = []
    for done, frame in enumerate(frames, 1):
        for lesion, mask in lesion_masks(document, frame).items():
            rows.append(measure_lesion_frame(document, frame, lesion, mask, override))
        if progress is not None:
            progress(done, len(frames))
    return rows


def summarize(rows: list[LesionFrame], task: str | None = None) -> list[LesionSummary]:
    """Per lesion (in number order): its key frame (largest long axis; the earliest on a tie) and the size
    thresholds of `task` for that long axis when it is in millimetres."""
    summaries = []
    for lesion in sorted({row.lesion for row in rows}):
        mine = [row for row in rows if row.lesion == lesion]
        calibrated = [row for row in mine if row.physical is not None]
        if calibrated:
            key = max(calibrated, key=lambda row: (row.long_axis_mm, -row.frame))
        else:
            key = max(mine, key=lambda row: (_length(row.pixels.long_axis), -row.frame))
        summaries.append(LesionSummary(lesion, mine, key, size_information(task, key.long_axis_mm)))
    return summaries


def _check_folder(document, folder: Path) -> None:
    """The report folder must be apart from the inputs, and hold no other video's report (nor files of these
    names that no report wrote)."""
    check_output_apart(folder, export_inputs(document), "the report folder")
    names = [confined(folder, name) for name in (CSV_NAME, SUMMARY_NAME, FIGURE_NAME)]
    if not any(os.path.lexists(path) for path in names):
        return
    summary = names[1]
    try:
        owner = json.loads(summary.read_bytes().decode("utf-8")) if summary.is_file() else None
    except (OSError, UnicodeDecodeError, ValueError):
        owner = None
    if not isinstance(owner, dict) or owner.get("format") != REPORT_FORMAT:
        taken = next(path for path in names if os.path.lexists(path))
        raise ReportError(f"{taken} exists and was not written by a Vivim Studio report; nothing was replaced. "
                          f"Choose another folder (--out)")
    identity = owner.get("source", {}).get("identity") if isinstance(owner.get("source"), dict) else None
    if identity != _identity(document):
        raise ReportError(f"{folder} holds the report of another video "
                          f"({str(owner.get('source', {}).get('name'))!r}); nothing was replaced. Choose another "
                          f"folder (--out)")


def _identity(document) -> str:
    return (document.workspace.identity if document.workspace is not None else document.source.identity).digest


def _csv_bytes(rows: list[LesionFrame]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(row.csv_row())
    return text.getvalue().encode("utf-8")


def _summary(document, options: ReportOptions, frames: list[int], rows: list[LesionFrame],
             lesions: list[LesionSummary], override: Calibration | None) -> dict[str, Any]:
    from .. import __version__

    source = document.source
    identity = document.workspace.identity if document.workspace is not None else source.identity
    calibrations = ([override] if override is not None else []) + document.calibrations
    return {
        "format": REPORT_FORMAT, "format_version": 1, "created": now_utc(), "app_version": __version__,
        "note": "Measurements are information, not a diagnosis. Millimetres are shown only where a calibration "
                "backs them; elsewhere lengths are in pixels and marked uncalibrated. " + NOT_A_DIAGNOSIS,
        "source": {"name": source.name, "kind": identity.kind, "identity": identity.digest,
                   "num_frames": identity.num_frames, "frame_size": [identity.height, identity.width],
                   "fps": source.fps},
        "frames_numbered_from": 1, "selection": options.selection, "frames_measured": [i + 1 for i in frames],
        "includes_unreviewed_proposals": any(not document.status(i).human_reviewed for i in frames),
        "task": options.task,
        "calibrations": [c.to_json() for c in calibrations], "calibration_precedence": PRECEDENCE,
        "measurements": {"long_axis": "maximum Feret diameter", "short_axis": "longest chord perpendicular to the "
                         "long axis", "area": "pixel count times the pixel's area"},
        "lesions": [lesion.to_json() for lesion in lesions],
        "files": {"measurements": CSV_NAME, "figure": FIGURE_NAME},
    }


def write_report(document, out: Path | str, options: ReportOptions | None = None,
                 progress: Callable[[int, int], None] | None = None) -> ReportResult:
    """Measure `document` and write the report into the folder `out` (see the module docstring). ReportError
    when there is nothing to measure or the folder cannot take it; UnsafePathError for a folder on the inputs."""
    from .calibration import calibration_from_spacing
    from .report_figure import draw_report

    options = options or ReportOptions()
    if options.task is not None and options.task not in TASKS:
        raise ReportError(f"unknown task {options.task!r}; choose one of {', '.join(TASKS)}")
    override = calibration_from_spacing(options.pixel_spacing_mm) if options.pixel_spacing_mm is not None else None
    folder = Path(out)
    frames = select_frames(document, options)
    if not frames:
        counts = ", ".join(f"{n} {s.value}" for s, n in document.status_counts().items() if n) or "no frames"
        raise ReportError(f"no frame of {document.source.name} to measure ({counts}): a report measures the frames "
                          f"a human edited or accepted; review frames first, or include the model's unreviewed "
                          f"proposals explicitly (--include-unreviewed-proposals)")
    _check_folder(document, folder)
    rows = measure_frames(document, frames, override, progress)
    lesions = summarize(rows, options.task)
    summary = _summary(document, options, frames, rows, lesions, override)
    frame_images = {s.key.frame: _frame_or_none(document, s.key.frame) for s in lesions}
    key_masks = {s.lesion: lesion_masks(document, s.key.frame).get(s.lesion) for s in lesions}
    figure = draw_report(document.source.name, document.num_frames, lesions, frame_images, key_masks,
                         document.frame_size)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        files = [confined(folder, name) for name in (CSV_NAME, FIGURE_NAME, SUMMARY_NAME)]
        atomic_write(files[0], _csv_bytes(rows))
        atomic_write(files[1], figure)
        atomic_write(files[2], (json.dumps(summary, indent=1, allow_nan=False) + "\n").encode("utf-8"))
    except OSError as exc:
        raise ReportError(f"{folder}: the report could not be written ({exc.strerror or exc}); free disk space or "
                          f"choose another folder (--out)") from None
    return ReportResult(folder, files, rows, lesions, summary)


def _frame_or_none(document, index: int) -> np.ndarray | None:
    """The frame's pixels, or None when the video is not at hand (the figure then shows the masks only)."""
    try:
        return document.frame(index)
    except SourceError:
        return None


def describe(summary: LesionSummary) -> str:
    """One line for a terminal: the lesion's key frame and its three numbers, with units and calibration."""
    key = summary.key
    if key.physical is not None:
        m = key.physical
        text = (f"lesion {summary.lesion}: frame {key.frame + 1}, long axis {m.long_axis_mm:.1f} mm, short axis "
                f"{m.short_axis_mm:.1f} mm, area {m.area_mm2:.1f} mm2 ({key.spacing_source})")
    else:
        m = key.pixels
        text = (f"lesion {summary.lesion}: frame {key.frame + 1}, long axis {m.long_axis.length:.1f} px, short axis "
                f"{m.short_axis.length:.1f} px, area {m.area_px} px (uncalibrated: no millimetres)")
    uncalibrated = len(summary.rows) - summary.calibrated_frames
    if key.physical is not None and uncalibrated:
        text += f"; {uncalibrated} frame(s) of it uncalibrated"
    if key.touches_edge:
        text += f"; note: {EDGE_NOTE}"
    return text

