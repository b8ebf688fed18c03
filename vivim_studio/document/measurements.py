"""Size of a lesion in one frame: area, long axis (maximum Feret diameter) and short axis (the longest chord
perpendicular to the long axis), in pixels and, with a calibration, in millimetres.

    m = measure_lesion(mask, spacing=(0.1, 0.1))      # bool (H, W); (row mm, column mm) per pixel, or None
    m.long_axis_mm, m.short_axis_mm, m.area_mm2        # None without a spacing: never a millimetre unbacked
    m.long_axis_px.ends                                # ((x0, y0), (x1, y1)) in pixel coordinates, for calipers

A mask is a set of pixels. Distances are measured between pixel centres in physical space (the spacing applied
before any geometry, so non-square pixels are measured right), then one pixel's extent along the measured
direction is added: an axis-aligned 100-pixel bar measures 100 pixels, not 99. That extent is the width of the
ellipse inscribed in the pixel (one pixel in every direction for square pixels), so a shape measures the same
at every angle: the staircase of a rotated outline would add up to 0.4 pixel at each end if the pixels were
taken as squares. The long axis is found on the convex hull of the boundary pixels. The short axis is the longest
chord perpendicular to it inside the outline through the boundary pixels' centres, its staircases straightened
(Douglas-Peucker, 0.75 pixel: a chord ending on a staircase would waver by up to half a pixel at each end),
plus one pixel's extent. A chord runs inside the outline only: across a concave lesion it stops at the gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SAMPLING_PX = 0.25  # step between the sweep lines, in pixels
STAIRCASE_PX = 0.75  # an outline of pixel centres departs from a straight edge by less than this (any slope)


@dataclass(frozen=True)
class Axis:
    """A measured segment: its length in pixel units of the measured direction and its ends (x, y) in pixels."""

    length: float  # in the units of the spacing used: mm with a spacing, pixels without
    ends: tuple[tuple[float, float], tuple[float, float]]


@dataclass(frozen=True)
class LesionMeasurement:
    area_px: int
    long_axis: Axis | None  # None for an empty mask
    short_axis: Axis | None
    spacing: tuple[float, float] | None  # (row mm, column mm) per pixel; None: uncalibrated, lengths in pixels

    @property
    def calibrated(self) -> bool:
        return self.spacing is not None

    @property
    def area_mm2(self) -> float | None:
        return None if self.spacing is None else self.area_px * self.spacing[0] * self.spacing[1]

    @property
    def long_axis_mm(self) -> float | None:
        return None if self.spacing is None or self.long_axis is None else self.long_axis.length

    @property
    def short_axis_mm(self) -> float | None:
        return None if self.spacing is None or self.short_axis is None else self.short_axis.length


def _pixel_extent(direction: np.ndarray, scale: np.ndarray) -> float:
    """Width along a unit `direction` (physical space, x and y scaled by `scale`) of the ellipse inscribed in one
    pixel: the pixel's size along an axis, and the same in every direction for square pixels."""
    return float(np.hypot(direction[0] * scale[0], direction[1] * scale[1]))


def measure_lesion(mask: np.ndarray, spacing: tuple[float, float] | None = None) -> LesionMeasurement:
    """Area, long and short axis of the pixels of `mask` (bool (H, W)); see the module docstring."""
    mask = np.asarray(mask, dtype=bool)
    area = int(np.count_nonzero(mask))
    if area == 0:
        return LesionMeasurement(0, None, None, spacing)
    scale = np.array([1.0, 1.0]) if spacing is None else np.array([spacing[1], spacing[0]], dtype=float)  # (x, y)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    points = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(float)  # (x, y) pixel centres
    physical = points * scale
    hull = physical[cv2.convexHull(physical.astype(np.float32), returnPoints=False).ravel()] \
        if len(physical) >= 3 else physical
    distances = np.linalg.norm(hull[:, None, :] - hull[None, :, :], axis=-1)
    i, j = np.unravel_index(int(np.argmax(distances)), distances.shape)
    a, b = hull[i], hull[j]
    along = (b - a) / distances[i, j] if distances[i, j] > 0 else np.array([1.0, 0.0])
    long_length = float(distances[i, j]) + _pixel_extent(along, scale)
    long_axis = Axis(long_length, (tuple(a / scale), tuple(b / scale)))
    short_axis = _short_axis(contours, a, along, float(distances[i, j]), scale)
    if short_axis.length > long_length:  # a sampling step over: no chord is longer than the maximum Feret diameter
        short_axis = Axis(long_length, short_axis.ends)
    return LesionMeasurement(area, long_axis, short_axis, spacing)


def _short_axis(contours: list[np.ndarray], origin: np.ndarray, along: np.ndarray, length: float,
                scale: np.ndarray) -> Axis:
    """The longest chord perpendicular to `along` inside the outline (pixel centres, staircases straightened):
    every line at once, at every outline vertex's position along the long axis and a quarter pixel apart."""
    across = np.array([-along[1], along[0]])
    polygons = [cv2.approxPolyDP(c, STAIRCASE_PX, True).reshape(-1, 2).astype(float) * scale for c in contours]
    starts = np.concatenate(polygons)
    stops = np.concatenate([np.roll(p, -1, axis=0) for p in polygons])
    s0, s1 = (starts - origin) @ along, (stops - origin) @ along  # (E,) edge ends along the long axis
    u0, u1 = (starts - origin) @ across, (stops - origin) @ across  # and across it
    step = SAMPLING_PX * float(min(scale))
    # the widest chord of a polygon lies at one of its vertices' positions: those, and a regular sweep
    positions = np.union1d(np.arange(0.0, length + step, step), np.clip(s0, 0.0, length))
    lo, hi = np.minimum(s0, s1), np.maximum(s0, s1)
    crosses = (lo[None, :] <= positions[:, None]) & (positions[:, None] < hi[None, :])  # (P, E), half-open
    with np.errstate(divide="ignore", invalid="ignore"):  # edges along the lines never cross them
        fraction = (positions[:, None] - s0[None, :]) / (s1 - s0)[None, :]
        crossings = np.sort(np.where(crosses, u0 + fraction * (u1 - u0), np.inf), axis=1)
    if crossings.shape[1] % 2:
        crossings = np.concatenate([crossings, np.full((len(positions), 1), np.inf)], axis=1)
    # even-odd rule: the line is inside between crossings 0-1, 2-3, ...
    entries, exits = crossings[:, 0::2], crossings[:, 1::2]
    spans = np.full(exits.shape, -1.0)
    paired = np.isfinite(exits)
    spans[paired] = exits[paired] - entries[paired]
    widest = spans.max(axis=1)
    # among chords as long as the longest (a rectangle has many), the one nearest the long axis's middle
    candidates = np.flatnonzero(widest >= widest.max() - 1e-6 * max(length, 1.0))
    line = int(candidates[np.argmin(np.abs(positions[candidates] - length / 2))])
    pair = int(np.argmax(spans[line]))
    if spans[line, pair] < 0:  # a single pixel, or an outline no line crosses
        return Axis(_pixel_extent(across, scale), (tuple(origin / scale), tuple(origin / scale)))
    centre = origin + positions[line] * along
    p, q = centre + across * entries[line, pair], centre + across * exits[line, pair]
    return Axis(float(spans[line, pair]) + _pixel_extent(across, scale), (tuple(p / scale), tuple(q / scale)))
