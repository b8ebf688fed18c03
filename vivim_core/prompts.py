"""Prompts: what an expert tells the model about one frame, and how they become the model's input maps.

    prompt = FramePrompt(positive=[(120, 80)], negative=[(40, 200)], rough_mask=current_mask)
    maps = render_prompt(prompt, frame_size=(1080, 1920), model_size=(256, 256))   # float32 (4, 256, 256)

Channels (`PROMPT_CHANNEL_NAMES`, in order):
  positive      disks at the clicks that say "lesion here"
  negative      disks at the clicks that say "not lesion here"
  rough_mask    a mask to start from: the frame's current mask, a box's inscribed ellipse, a mask carried
                from an accepted neighbour...
  rough_given   1 everywhere when `rough_mask` is given (an empty rough mask then means "no lesion"), else 0

Points are (x, y) = (column, row) in the frame's own pixels; masks are bool (H, W) at the frame's size. A
click is a disk of `click_radius(model_size)` model pixels (5 at 256x256, as in RITM).
NumPy and OpenCV only: the Studio renders prompts without importing torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from .config import PROMPT_CHANNELS

PROMPT_CHANNEL_NAMES = ("positive", "negative", "rough_mask", "rough_given")
assert len(PROMPT_CHANNEL_NAMES) == PROMPT_CHANNELS

Point = tuple[float, float]


@dataclass(frozen=True)
class FramePrompt:
    """Clicks and a rough mask for one frame (all optional). `box` (x0, y0, x1, y1) is a rough mask given
    as a box: its inscribed ellipse, unless `rough_mask` is also given."""

    positive: tuple[Point, ...] = field(default_factory=tuple)
    negative: tuple[Point, ...] = field(default_factory=tuple)
    rough_mask: np.ndarray | None = None
    box: tuple[float, float, float, float] | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.positive or self.negative or self.rough_mask is not None or self.box is not None)

    def with_click(self, x: float, y: float, positive: bool) -> "FramePrompt":
        if positive:
            return FramePrompt(self.positive + ((float(x), float(y)),), self.negative, self.rough_mask, self.box)
        return FramePrompt(self.positive, self.negative + ((float(x), float(y)),), self.rough_mask, self.box)


def click_radius(model_size: tuple[int, int]) -> int:
    """Click disk radius in model pixels: 5 at 256x256, scaled with the smaller side, at least 2."""
    return max(2, int(round(5 * min(model_size) / 256)))


def box_mask(box: tuple[float, float, float, float], frame_size: tuple[int, int]) -> np.ndarray:
    """The filled ellipse inscribed in `box` (x0, y0, x1, y1), bool (H, W): a lesion's rough shape."""
    x0, y0, x1, y1 = box
    mask = np.zeros(frame_size, dtype=np.uint8)
    centre = (int(round((x0 + x1) / 2)), int(round((y0 + y1) / 2)))
    axes = (max(1, int(round(abs(x1 - x0) / 2))), max(1, int(round(abs(y1 - y0) / 2))))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, thickness=-1)
    return mask.astype(bool)


def _disks(points: Sequence[Point], frame_size: tuple[int, int], model_size: tuple[int, int]) -> np.ndarray:
    h, w = model_size
    out = np.zeros((h, w), dtype=np.uint8)
    sy, sx = h / frame_size[0], w / frame_size[1]
    radius = click_radius(model_size)
    for x, y in points:
        centre = (int(np.clip(round((x + 0.5) * sx - 0.5), 0, w - 1)), int(np.clip(round((y + 0.5) * sy - 0.5), 0, h - 1)))
        cv2.circle(out, centre, radius, 1, thickness=-1)
    return out.astype(np.float32)


def render_prompt(prompt: FramePrompt | None, frame_size: tuple[int, int], model_size: tuple[int, int]
                  ) -> np.ndarray:
    """The model's prompt maps for one frame, float32 (PROMPT_CHANNELS, h, w) at `model_size` (h, w);
    all zeros for None."""
    h, w = model_size
    maps = np.zeros((PROMPT_CHANNELS, h, w), dtype=np.float32)
    if prompt is None:
        return maps
    maps[0] = _disks(prompt.positive, frame_size, model_size)
    maps[1] = _disks(prompt.negative, frame_size, model_size)
    rough = prompt.rough_mask
    if rough is None and prompt.box is not None:
        rough = box_mask(prompt.box, frame_size)
    if rough is not None:
        rough = np.asarray(rough, dtype=bool)
        if rough.shape != tuple(frame_size):
            raise ValueError(f"rough mask of shape {rough.shape} for a frame of size {tuple(frame_size)}")
        maps[2] = cv2.resize(rough.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        maps[3] = 1.0
    return maps


# Where a corrective click goes -------------------------------------------------------------------------------
def error_regions(prediction: np.ndarray, truth: np.ndarray) -> list[tuple[np.ndarray, bool]]:
    """Connected components (8-connected) of missed lesion (positive=True) and of spill (positive=False), as
    (bool (H, W) region, positive) pairs, largest first; among equals, missed lesion first, then raster order."""
    regions = []
    for error, positive in ((truth & ~prediction, True), (prediction & ~truth, False)):
        count, labels, stats, _ = cv2.connectedComponentsWithStats(error.astype(np.uint8), connectivity=8)
        for label in range(1, count):
            regions.append((int(stats[label, cv2.CC_STAT_AREA]), not positive, label, labels, positive))
    regions.sort(key=lambda r: (-r[0], r[1], r[2]))
    return [(labels == label, positive) for _, _, label, labels, positive in regions]


def region_depth(region: np.ndarray) -> np.ndarray:
    """float32 (H, W): each pixel's distance to the outside of `region` (the image border counts as outside)."""
    padded = np.pad(region.astype(np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]


def deepest_point(region: np.ndarray) -> tuple[int, int, float]:
    """(x, y, depth): the pixel of `region` farthest from its outside, first in raster order among equals."""
    depth = region_depth(region)
    y, x = divmod(int(np.argmax(depth)), region.shape[1])
    return x, y, float(depth[y, x])
