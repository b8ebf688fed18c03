"""How big a pixel is, and where that knowledge comes from. Without a calibration the Studio shows pixels and
says "uncalibrated": it never shows a millimetre that no calibration backs.

Sources, each named in every measurement it backs:
  DICOM Pixel Spacing (0028,0030)                 [row, column] mm per pixel, for the whole image
  DICOM ultrasound region (0018,6011)             Physical Delta X / Y of a region of the image (units code 3: cm),
                                                  used for a lesion inside that region
  a line drawn by the user                        two points over a known length (the scanner's depth ruler)
  --pixel-spacing MM                              given on the command line for a video without metadata

    calibrations = calibrations_from_dicom(dataset)              # pydicom Dataset -> [Calibration]
    line = calibration_from_line((10, 40), (10, 440), 40.0)      # 40 mm over 400 px: 0.1 mm per pixel
    chosen = choose_calibration(calibrations, mask)              # the one that applies to this lesion, or None
    drawn = UserCalibration.from_line((10, 40), (10, 440), 40.0, frame=3)   # what a workspace keeps of a line
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .exceptions import SourceError

MIN_MM, MAX_MM = 1e-4, 10.0  # plausible physical sizes of a pixel (0.1 um .. 1 cm)
UNITS_CM = 3  # DICOM Physical Units code for centimetres (PS3.3 C.8.5.5.1.15)


class CalibrationError(SourceError):
    """A calibration that cannot be right (zero, negative, absurd): the message says which and why."""


@dataclass(frozen=True)
class Calibration:
    """Millimetres per pixel along rows (y) and columns (x), where it comes from, and the image region it holds
    for ((x0, y0, x1, y1), end-exclusive; None: the whole image)."""

    row_mm: float
    column_mm: float
    source: str
    region: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        for name in ("row_mm", "column_mm"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                    or not MIN_MM <= value <= MAX_MM:
                raise CalibrationError(f"{self.source}: a pixel of {value!r} mm is not plausible (expected "
                                       f"{MIN_MM:g} to {MAX_MM:g} mm); not used")

    @property
    def spacing(self) -> tuple[float, float]:
        """(row mm, column mm), as `measurements.measure_lesion` takes it."""
        return float(self.row_mm), float(self.column_mm)

    def contains(self, x: float, y: float) -> bool:
        if self.region is None:
            return True
        x0, y0, x1, y1 = self.region
        return x0 <= x < x1 and y0 <= y < y1

    def to_json(self) -> dict[str, Any]:
        return {"row_mm": self.row_mm, "column_mm": self.column_mm, "source": self.source,
                "region": None if self.region is None else list(self.region)}

    @classmethod
    def from_json(cls, data: Any) -> "Calibration":
        """Parse `to_json` output; CalibrationError (naming the problem) for anything else."""
        if not isinstance(data, dict) or not isinstance(data.get("source"), str) or len(data["source"]) > 300:
            raise CalibrationError(f"a calibration must be an object with a \"source\" text, found {str(data)[:80]!r}")
        region = data.get("region")
        if region is not None and not (isinstance(region, list) and len(region) == 4
                                       and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                               for v in region)):
            raise CalibrationError(f"calibration region must be [x0, y0, x1, y1] of pixel indices, found {region!r}")
        return cls(data.get("row_mm"), data.get("column_mm"), data["source"], None if region is None else tuple(region))


def calibration_from_line(start: tuple[float, float], end: tuple[float, float], length_mm: float,
                          frame: int | None = None) -> Calibration:
    """Square pixels from a line of `length_mm` drawn from `start` to `end` ((x, y) pixel coordinates)."""
    pixels = math.hypot(end[0] - start[0], end[1] - start[1])
    if not math.isfinite(length_mm) or length_mm <= 0:
        raise CalibrationError(f"the line's length must be a positive number of millimetres, got {length_mm!r}")
    if pixels < 10:
        raise CalibrationError(f"the calibration line is {pixels:.1f} pixels long; draw it over at least 10 pixels "
                               f"(longer is more precise: the whole depth ruler, for example)")
    where = "" if frame is None else f" on frame {frame + 1}"
    mm = length_mm / pixels
    return Calibration(mm, mm, f"a line drawn by the user: {length_mm:g} mm over {pixels:.1f} px{where}")


@dataclass(frozen=True)
class UserCalibration:
    """A calibration line the user drew: its ends ((x, y) pixels), its length in mm, the frame it was drawn on
    (0-based; None: not recorded) and the calibration it gives. Kept in the workspace (`to_json` / `from_json`)."""

    start: tuple[float, float]
    end: tuple[float, float]
    length_mm: float
    frame: int | None
    calibration: Calibration

    @classmethod
    def from_line(cls, start: tuple[float, float], end: tuple[float, float], length_mm: float,
                  frame: int | None = None) -> "UserCalibration":
        """CalibrationError for a line that cannot give a calibration (see `calibration_from_line`)."""
        points = []
        for name, point in (("start", start), ("end", end)):
            try:
                x, y = (float(v) for v in point)
            except (TypeError, ValueError):
                raise CalibrationError(f"the calibration line's {name} must be two numbers (x, y), found "
                                       f"{point!r}") from None
            if not (math.isfinite(x) and math.isfinite(y)):
                raise CalibrationError(f"the calibration line's {name} {point!r} is not a point of the image")
            points.append((x, y))
        if isinstance(length_mm, bool) or not isinstance(length_mm, (int, float)):
            raise CalibrationError(f"the line's length must be a number of millimetres, got {length_mm!r}")
        if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int) or frame < 0):
            raise CalibrationError(f"the calibration line's frame must be a frame index, got {frame!r}")
        calibration = calibration_from_line(points[0], points[1], float(length_mm), frame)
        return cls(points[0], points[1], float(length_mm), frame, calibration)

    def to_json(self) -> dict[str, Any]:
        return {"start": list(self.start), "end": list(self.end), "length_mm": self.length_mm, "frame": self.frame}

    @classmethod
    def from_json(cls, data: Any) -> "UserCalibration":
        """The line back from `to_json`, its calibration computed again (and so checked); CalibrationError
        naming the problem for anything else."""
        if not isinstance(data, dict) or not {"start", "end", "length_mm"} <= set(data):
            raise CalibrationError(f"a drawn calibration must be an object with \"start\", \"end\" and "
                                   f"\"length_mm\", found {str(data)[:80]!r}")
        for name in ("start", "end"):
            if not isinstance(data[name], list) or len(data[name]) != 2 \
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data[name]):
                raise CalibrationError(f"a drawn calibration's \"{name}\" must be [x, y], found {data[name]!r}")
        return cls.from_line(tuple(data["start"]), tuple(data["end"]), data["length_mm"], data.get("frame"))


def calibration_from_spacing(mm: float, source: str = "--pixel-spacing") -> Calibration:
    return Calibration(mm, mm, f"{source} {mm:g} mm")


def calibrations_from_dicom(dataset: Any) -> list[Calibration]:
    """The calibrations a DICOM dataset (pydicom) states: each tissue region of its Sequence of Ultrasound Regions
    with physical units in cm, then Pixel Spacing. Implausible values are skipped (a CalibrationError would name
    them; here they only do not back any measurement)."""
    found: list[Calibration] = []
    for number, item in enumerate(getattr(dataset, "SequenceOfUltrasoundRegions", None) or [], start=1):
        try:
            units = (int(item.PhysicalUnitsXDirection), int(item.PhysicalUnitsYDirection))
            if units != (UNITS_CM, UNITS_CM):
                continue  # time, velocity or other units: not a length in this region
            region = (int(item.RegionLocationMinX0), int(item.RegionLocationMinY0),
                      int(item.RegionLocationMaxX1) + 1, int(item.RegionLocationMaxY1) + 1)
            found.append(Calibration(abs(float(item.PhysicalDeltaY)) * 10.0, abs(float(item.PhysicalDeltaX)) * 10.0,
                                     f"DICOM ultrasound region {number} (Physical Delta X/Y, cm)", region))
        except (AttributeError, TypeError, ValueError, CalibrationError):
            continue
    spacing = getattr(dataset, "PixelSpacing", None)
    if spacing is not None:
        try:
            found.append(Calibration(float(spacing[0]), float(spacing[1]), "DICOM Pixel Spacing (0028,0030)"))
        except (TypeError, ValueError, IndexError, CalibrationError):
            pass
    return found


def choose_calibration(calibrations: list[Calibration], mask: np.ndarray) -> Calibration | None:
    """The calibration that applies to the lesion `mask` (bool (H, W)): the first region that holds the lesion's
    centroid, else a whole-image one; None when none applies (the lesion is then measured in pixels)."""
    if not calibrations:
        return None
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return next((c for c in calibrations if c.region is None), calibrations[0])
    cx, cy = float(xs.mean()), float(ys.mean())
    regional = [c for c in calibrations if c.region is not None and c.contains(cx, cy)]
    if regional:
        return regional[0]
    return next((c for c in calibrations if c.region is None), None)
