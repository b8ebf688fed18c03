"""Window/level (brightness and contrast) for display only: a new image is returned, the frame is never changed,
and nothing the Studio measures or exports sees it.

    shown = apply_window(frame, level=100, width=120)     # uint8 (H, W) or (H, W, 3) -> uint8, same shape
    level, width = window_from_percentiles(frame)         # a starting window that spans the frame's 1..99 %

The mapping is DICOM's linear VOI function (PS3.3 C.11.2.1.2.1) onto 0..255: values at or below
level - 0.5 - (width - 1) / 2 show black, at or above level - 0.5 + (width - 1) / 2 white, linear between.
`level=128, width=256` shows the frame exactly as it is. Colour frames get the same mapping on every channel.
"""

from __future__ import annotations

import numpy as np

FULL_WINDOW = (128.0, 256.0)  # (level, width) that leaves a uint8 frame unchanged
MIN_WIDTH = 1.0


def window_lut(level: float, width: float) -> np.ndarray:
    """uint8 (256,) lookup table of the window (see the module docstring). ValueError for a width below 1 or a
    level or width that is not a finite number."""
    level, width = float(level), float(width)
    if not (np.isfinite(level) and np.isfinite(width)) or width < MIN_WIDTH:
        raise ValueError(f"window level {level!r} and width {width!r}: both must be finite numbers, the width at "
                         f"least {MIN_WIDTH:g}")
    values = np.arange(256, dtype=np.float64)
    if width == MIN_WIDTH:  # DICOM: a width of 1 is a threshold at level - 0.5
        return np.where(values < level - 0.5, 0, 255).astype(np.uint8)
    scaled = ((values - (level - 0.5)) / (width - 1.0) + 0.5) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def apply_window(frame: np.ndarray, level: float, width: float) -> np.ndarray:
    """The frame (uint8 (H, W) or (H, W, C)) as shown through the window: a new uint8 array of the same shape."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ValueError(f"apply_window takes uint8 frames, got {frame.dtype}")
    if (float(level), float(width)) == FULL_WINDOW:
        return frame.copy()
    return window_lut(level, width)[frame]


def window_from_percentiles(frame: np.ndarray, low: float = 1.0, high: float = 99.0) -> tuple[float, float]:
    """(level, width) of a window from the `low` to the `high` percentile of the frame's values (all channels)."""
    lo, hi = np.percentile(np.asarray(frame), [low, high])
    width = max(float(hi - lo) + 1.0, MIN_WIDTH)
    return float(lo) + 0.5 + (width - 1.0) / 2.0, width
