"""Pure mask operations: bool (H, W) in, new bool (H, W) out (inputs are never modified), except the brush
helper, which paints into a uint8 working buffer in place for live strokes.

Points are (x, y) = (column, row) pixel coordinates, as views deliver them.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def _as_points(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if not np.isfinite(array).all():
        raise ValueError("points must be finite (x, y) pairs")
    return np.round(array).astype(np.int32)


def paint_polyline(buffer: np.ndarray, points: Sequence[Sequence[float]] | np.ndarray, radius: float,
                   value: int, previous: Sequence[float] | None = None) -> tuple[int, int, int, int] | None:
    """Paint a round brush of `radius` pixels along `points` (continuing from `previous`, the stroke's last
    point) into `buffer`, uint8 (H, W), in place, with `value` (1 = brush, 0 = eraser).

    Returns the touched rectangle (x0, y0, x1, y1), end-exclusive and clipped to the image (None if nothing
    inside), so a view can redraw only that part.
    """
    pts = _as_points(points)
    if len(pts) == 0:
        return None
    if previous is not None:
        pts = np.vstack([_as_points([previous]), pts])
    r = max(int(round(radius)), 0)
    if len(pts) == 1:
        cv2.circle(buffer, (int(pts[0, 0]), int(pts[0, 1])), r, int(value), thickness=-1)
    else:
        cv2.polylines(buffer, [pts.reshape(-1, 1, 2)], isClosed=False, color=int(value), thickness=max(2 * r, 1),
                      lineType=cv2.LINE_8)  # thickness 2r spans |d| <= r, like cv2.circle(r); round ends: a swept disk
        for x, y in pts[[0, -1]]:
            cv2.circle(buffer, (int(x), int(y)), r, int(value), thickness=-1)
    h, w = buffer.shape
    x0, y0 = max(int(pts[:, 0].min()) - r - 1, 0), max(int(pts[:, 1].min()) - r - 1, 0)
    x1, y1 = min(int(pts[:, 0].max()) + r + 2, w), min(int(pts[:, 1].max()) + r + 2, h)
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def stroke(mask: np.ndarray, points, radius: float, erase: bool = False) -> np.ndarray:
    """A whole brush (or eraser) stroke applied to a copy of `mask`."""
    buffer = mask.astype(np.uint8)
    paint_polyline(buffer, points, radius, 0 if erase else 1)
    return buffer.astype(bool)


def polygon(mask: np.ndarray, points, subtract: bool = False) -> np.ndarray:
    """Add (or subtract) the filled polygon / lasso `points` (>= 3 vertices, closed implicitly)."""
    pts = _as_points(points)
    if len(pts) < 3:
        raise ValueError(f"a polygon needs at least 3 points, got {len(pts)}")
    region = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(region, [pts.reshape(-1, 1, 2)], 1, lineType=cv2.LINE_8)
    return mask & ~region.astype(bool) if subtract else mask | region.astype(bool)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions enclosed by the mask (not connected to the image border)."""
    from scipy.ndimage import binary_fill_holes

    return binary_fill_holes(mask)


def _components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels int32 (H, W), areas per label) with 8-connectivity; label 0 is the background."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return labels, stats[:, cv2.CC_STAT_AREA]


def remove_small_islands(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """Remove connected components (8-connected) with fewer than `min_pixels` pixels."""
    if not mask.any():
        return mask.copy()
    labels, areas = _components(mask)
    keep = areas >= int(min_pixels)
    keep[0] = False
    return keep[labels]


def keep_largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep only the largest connected component (8-connected); ties keep the first found."""
    if not mask.any():
        return mask.copy()
    labels, areas = _components(mask)
    areas = areas.copy()
    areas[0] = -1
    return labels == int(np.argmax(areas))


def smooth(mask: np.ndarray, radius: int = 3) -> np.ndarray:
    """Morphological smoothing: closing then opening with a disk of `radius` (scikit-image), which rounds
    jagged boundaries, closes thin gaps and removes spurs thinner than the disk. Computed on the mask's
    bounding box (plus margin) so that a small lesion in a 1080p frame costs little."""
    from skimage.morphology import binary_closing, binary_opening, disk

    if not mask.any() or radius < 1:
        return mask.copy()
    rows, cols = np.nonzero(mask)
    pad = 2 * int(radius) + 2
    r0, r1 = max(rows.min() - pad, 0), min(rows.max() + pad + 1, mask.shape[0])
    c0, c1 = max(cols.min() - pad, 0), min(cols.max() + pad + 1, mask.shape[1])
    footprint = disk(int(radius))
    crop = binary_opening(binary_closing(mask[r0:r1, c0:c1], footprint), footprint)
    out = np.zeros_like(mask, dtype=bool)
    out[r0:r1, c0:c1] = crop
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two bool (H, W) masks; two empty masks agree perfectly (1.0: "no lesion" both times)."""
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    return 1.0 if total == 0 else 2.0 * int(np.count_nonzero(a & b)) / total
