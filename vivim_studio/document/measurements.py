"""Size of a lesion in one frame: area, long axis (maximum Feret diameter) and short axis (the longest chord
perpendicular to the long axis), in pixels and, with a calibration, in millimetres.

    m = measure_lesion(mask, spacing=(0.1, 0.1))      # bool (H, W); (row mm, column mm) per pixel, or None
    m.long_axis_mm, m.short_axis_mm, m.area_mm2        # None without a spacing: never a millimetre unbacked
    m.long_axis_px.ends                                # ((x0, y0), (x1, y1)) in pixel coordinates, for calipers

A mask is a set of pixels, each a unit square around its centre. Distances are measured between pixel centres in
physical space (the spacing applied before any geometry, so non-square pixels are measured right), then the
extent of one pixel along the measured direction is added: an axis-aligned 100-pixel bar measures 100 pixels,
not 99. The long axis is found on the convex hull of the boundary pixels; the short axis by sweeping lines
perpendicular to it, a quarter pixel apart, and taking the longest run inside the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SAMPLING_PX = 0.25  # step along and across the sweep lines, in pixels


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
    """Length of one pixel's footprint along a unit `direction` in physical space (x, y scaled by `scale`)."""
    return float(abs(direction[0]) * scale[0] + abs(direction[1]) * scale[1])


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
    short_axis = _short_axis(mask, a, along, float(distances[i, j]), scale)
    return LesionMeasurement(area, long_axis, short_axis, spacing)


def _short_axis(mask: np.ndarray, origin: np.ndarray, along: np.ndarray, length: float, scale: np.ndarray) -> Axis:
    """The longest run of mask pixels on lines perpendicular to `along`, swept over the long axis (every line at
    once: positions x offsets samples)."""
    across = np.array([-along[1], along[0]])
    h, w = mask.shape
    step = SAMPLING_PX * float(min(scale))
    reach = length + 2 * float(max(scale))  # no chord is longer than the long axis
    offsets = np.arange(-reach, reach + step, step)  # along each line, physical units
    positions = np.arange(0.0, length + step, step)  # along the long axis
    centres = origin[None, :] + positions[:, None] * along[None, :]  # (P, 2)
    samples = centres[:, None, :] + offsets[None, :, None] * across[None, None, :]  # (P, S, 2) physical (x, y)
    pixel = np.rint(samples / scale).astype(np.int64)
    inside = (pixel[..., 0] >= 0) & (pixel[..., 0] < w) & (pixel[..., 1] >= 0) & (pixel[..., 1] < h)
    hits = np.zeros(inside.shape, dtype=bool)
    hits[inside] = mask[pixel[..., 1][inside], pixel[..., 0][inside]]
    # longest run of consecutive hits on each line: run ids from the cumulative count of misses
    padded = np.concatenate([np.zeros((len(positions), 1), dtype=np.int8), hits.astype(np.int8),
                             np.zeros((len(positions), 1), dtype=np.int8)], axis=1)
    edges = np.diff(padded, axis=1)
    best_span, best_ends = 0.0, (origin, origin)
    for line in np.flatnonzero(hits.any(axis=1)):
        starts, stops = np.flatnonzero(edges[line] == 1), np.flatnonzero(edges[line] == -1)
        k = int(np.argmax(stops - starts))
        first, last = offsets[starts[k]], offsets[stops[k] - 1]
        if last - first > best_span:
            best_span = last - first
            best_ends = (centres[line] + across * first, centres[line] + across * last)
    p, q = best_ends
    # The run's first and last samples lie within a sample of the pixels' outer edges: span + one sample is the
    # run's edge-to-edge length, like the long axis's centre-to-centre distance plus a pixel.
    return Axis(best_span + step, (tuple(p / scale), tuple(q / scale)))
