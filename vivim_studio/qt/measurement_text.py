"""What the GUI says about calibrations and lesion sizes, as text (no Qt here, so it is tested on its own).

    short, full = calibration_summary(document)     # "0.128 mm/px · drawn line", and the whole source
    rows = frame_measurements(document, 12)         # [LesionFrame]: each lesion of frame 12, measured
    size_lines(rows[0])                             # {"Size": ..., "Axes": ..., "Calibration": ...}
    thresholds_text(rows[0], "thyroid")             # (one line, tooltip HTML) or None when uncalibrated

Millimetres appear only where a calibration backs them; otherwise lengths are in pixels, marked uncalibrated.
The measuring itself is the report's (`document.report.measure_frames`), so the panel, the calipers and the
report never disagree.
"""

from __future__ import annotations

from html import escape

from ..document.calibration import Calibration
from ..document.report import LesionFrame, measure_frames
from ..document.size_information import size_information

NOT_A_DIAGNOSIS = "information, not a diagnosis"
UNCALIBRATED = "uncalibrated"


def source_kind(calibration: Calibration) -> str:
    """A few words for where a calibration comes from ("drawn line", "DICOM ultrasound region 1", ...)."""
    source = calibration.source
    if source.startswith("a line drawn by the user"):
        return "drawn line"
    if source.startswith("DICOM ultrasound region"):
        return source.split(" (")[0]
    if source.startswith("DICOM Pixel Spacing"):
        return "DICOM Pixel Spacing"
    return source


def mm_per_pixel(calibration: Calibration) -> str:
    row, column = calibration.spacing
    return f"{row:.4g} mm/px" if row == column else f"{column:.4g} x {row:.4g} mm/px"


def calibration_summary(document) -> tuple[str, str]:
    """(short text for the status bar, full text for its tooltip) of the calibration that backs the video's
    millimetres: the drawn line, else the file's first (a region holds only inside it), else "uncalibrated"."""
    if document is None:
        return "", ""
    calibrations = document.calibrations
    if not calibrations:
        return (UNCALIBRATED, "Uncalibrated: lengths are shown in pixels. Tools > Calibrate (R): draw a line over a "
                              "known length, such as the scanner's depth ruler, and type its length in mm.")
    first = calibrations[0]
    short = f"{mm_per_pixel(first)} · {source_kind(first)}"
    lines = [f"Calibrated: {mm_per_pixel(first)}, from {first.source}."]
    if first.region is not None:
        lines.append(f"It holds inside the image region {first.region} (x0, y0, x1, y1); a lesion outside every "
                     f"calibrated region is measured in pixels.")
    lines.extend(f"Also stated: {mm_per_pixel(c)} from {c.source}." for c in calibrations[1:])
    return short, "\n".join(lines)


def frame_measurements(document, frame: int) -> list[LesionFrame]:
    """Each lesion present on `frame`, measured with the calibration that applies to it (lesion order)."""
    return measure_frames(document, [frame])


def _length(value: float) -> str:
    return f"{value:.1f}"


def size_lines(row: LesionFrame) -> dict[str, str]:
    """The frame panel's lines for one lesion: area, long and short axis (mm with a calibration, else px and
    "uncalibrated"), and the calibration that backs them."""
    pixels, physical = row.pixels, row.physical
    if physical is not None:
        size = f"{physical.area_mm2:,.1f} mm² ({pixels.area_px:,} px)"
        axes = f"long {_length(physical.long_axis_mm)} · short {_length(physical.short_axis_mm)} mm"
        calibration = f"{mm_per_pixel(row.calibration)}, {source_kind(row.calibration)}"
    else:
        size = f"{pixels.area_px:,} px ({UNCALIBRATED})"
        axes = (f"long {_length(pixels.long_axis.length)} · short {_length(pixels.short_axis.length)} px")
        calibration = f"{UNCALIBRATED}: no millimetres"
    if row.touches_edge:
        axes += " (touches the image edge: may be cut off)"
    return {"Size": size, "Axes": axes, "Calibration": calibration}


def thresholds_text(row: LesionFrame, task: str | None) -> tuple[str, str] | None:
    """(one line, tooltip HTML) of the task's published size thresholds for this lesion's long axis, as
    information; None without a task or a calibration (no thresholds on pixels)."""
    info = size_information(task, row.long_axis_mm)
    if info is None:
        return None
    if task == "polyp":
        line = f"{info['category']} · {NOT_A_DIAGNOSIS}"
        return line, f"<p>{escape(info['guideline'])}</p><p>{escape(info['note'])}</p>"
    fna = [level["level"] for level in info["levels"] if level["this_size"].startswith("at or above the FNA")]
    follow = [level["level"] for level in info["levels"] if level["this_size"].startswith("at or above the follow")]
    parts = ([f"FNA size for {', '.join(fna)}"] if fna else []) + \
            ([f"follow-up size for {', '.join(follow)}"] if follow else [])
    line = f"TI-RADS {info['long_axis_cm']:g} cm: {'; '.join(parts) or 'below every threshold'} · {NOT_A_DIAGNOSIS}"
    rows = "".join(f"<tr><td>{level['level']}</td><td>{escape(level['this_size'])}</td></tr>"
                   for level in info["levels"])
    tooltip = (f"<p><b>{escape(info['guideline'])}</b>: long axis {info['long_axis_cm']:g} cm</p>"
               f"<table>{rows}</table><p>{escape(info['note'])}</p>")
    return line, tooltip
