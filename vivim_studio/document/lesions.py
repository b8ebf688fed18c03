"""Pure operations on label maps: uint8 (H, W), 0 background, 1..255 lesion ids. Inputs are never modified;
each function returns a new map.

Edits act on one lesion and, unless `other_lesions=True`, never take another lesion's pixels: painting lesion 2
over lesion 1 leaves lesion 1 as it is, erasing lesion 2 leaves lesion 1 too.
"""

from __future__ import annotations

import cv2
import numpy as np

from .status import MAX_LESION_ID

Geometry = tuple[int, tuple[int, int, int, int] | None, tuple[float, float] | None]  # area, box, centroid


def check_lesion_id(lesion: int) -> int:
    """`lesion` as an int when it is a usable id (1..255); ValueError otherwise."""
    if isinstance(lesion, bool) or not isinstance(lesion, (int, np.integer)) or not 1 <= int(lesion) <= MAX_LESION_ID:
        raise ValueError(f"lesion ids are integers 1..{MAX_LESION_ID}, got {lesion!r}")
    return int(lesion)


def present_ids(labels: np.ndarray) -> list[int]:
    """The lesion ids present in `labels`, increasing (computed on the rows that hold any lesion)."""
    rows = np.flatnonzero(labels.any(axis=1))
    if len(rows) == 0:
        return []
    counts = np.bincount(labels[rows[0]:rows[-1] + 1].ravel(), minlength=MAX_LESION_ID + 1)
    return [int(k) for k in np.flatnonzero(counts[1:]) + 1]


def geometry(mask: np.ndarray) -> Geometry:
    """(area, box (x0, y0, x1, y1) end-exclusive, centroid (x, y)) of a bool (H, W) mask; (0, None, None) when
    empty. Computed on the mask's bounding box, so a small lesion in a 1080p frame costs little."""
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return 0, None, None
    cols = np.flatnonzero(mask[rows[0]:rows[-1] + 1].any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    ys, xs = np.nonzero(mask[y0:y1, x0:x1])
    return len(ys), (x0, y0, x1, y1), (float(xs.mean()) + x0, float(ys.mean()) + y0)


def lesion_geometry(labels: np.ndarray, lesion: int) -> Geometry:
    return geometry(labels == lesion)


def _writable(labels: np.ndarray, lesion: int, other_lesions: bool) -> np.ndarray:
    """bool (H, W): where lesion `lesion` may be written: background and its own pixels (everywhere with
    `other_lesions`)."""
    if other_lesions:
        return np.ones(labels.shape, bool)
    return (labels == 0) | (labels == lesion)


def paint(labels: np.ndarray, region: np.ndarray, lesion: int, other_lesions: bool = False) -> np.ndarray:
    """Add the bool (H, W) `region` to lesion `lesion`."""
    out = labels.copy()
    out[region & _writable(labels, lesion, other_lesions)] = lesion
    return out


def erase(labels: np.ndarray, region: np.ndarray, lesion: int, other_lesions: bool = False) -> np.ndarray:
    """Remove the bool (H, W) `region` from lesion `lesion` (from every lesion with `other_lesions`)."""
    out = labels.copy()
    out[region & ((labels > 0) if other_lesions else (labels == lesion))] = 0
    return out


def replace(labels: np.ndarray, lesion: int, mask: np.ndarray, other_lesions: bool = False) -> np.ndarray:
    """Lesion `lesion` becomes the bool (H, W) `mask` (minus other lesions' pixels unless `other_lesions`)."""
    out = labels.copy()
    out[labels == lesion] = 0
    out[mask & ((out == 0) if not other_lesions else True)] = lesion
    return out


def from_mask(mask: np.ndarray, lesion: int = 1) -> np.ndarray:
    """The label map of a bool (H, W) mask that is all lesion `lesion`."""
    return np.where(np.asarray(mask, dtype=bool), np.uint8(lesion), np.uint8(0)).astype(np.uint8)


def merge(labels: np.ndarray, source: int, target: int) -> np.ndarray:
    """Lesion `source` becomes part of lesion `target`."""
    out = labels.copy()
    out[labels == source] = target
    return out


def relabel(labels: np.ndarray, source: int, target: int) -> np.ndarray:
    """Lesion `source` takes the id `target`; when `target` is on the frame too, the two exchange their ids (a
    tracking mix-up is fixed in one step)."""
    out = labels.copy()
    was_source, was_target = labels == source, labels == target
    out[was_source] = target
    out[was_target] = source
    return out


def component_at(labels: np.ndarray, lesion: int, x: float, y: float) -> np.ndarray:
    """bool (H, W): the 8-connected piece of lesion `lesion` under the point (x, y); ValueError when the point
    is not on that lesion."""
    h, w = labels.shape
    col, row = int(round(x)), int(round(y))
    if not (0 <= row < h and 0 <= col < w) or labels[row, col] != lesion:
        raise ValueError(f"the point ({col}, {row}) is not on lesion {lesion}")
    _count, components = cv2.connectedComponents((labels == lesion).view(np.uint8), connectivity=8)
    return components == components[row, col]
