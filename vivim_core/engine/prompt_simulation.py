"""Simulated prompts for training a prompt-capable Vivim (`config.prompt_channels`), as RITM and DeepEdit
train their click inputs: each frame of a training clip gets, at random, the kind of prompt the Studio
gives at that moment.

Rough mask (`ROUGH_MASK_MIX`):
  none        no rough mask: a frame nobody has touched (the model must propose from the image alone)
  deformed    the true mask moved, scaled, rotated, grown or shrunk: a proposal to correct
  neighbour   the true mask of another frame of the clip: a mask carried from a nearby accepted frame
  exact       the true mask: an accepted frame inside the clip (its neighbours should follow it)
  wrong       a lesion-like shape somewhere else: a proposal on the wrong structure
  empty       an empty rough mask ("no lesion here" from the expert, or a proposal that missed it)
Clicks (`CLICK_COUNTS`): 0 to 5, each placed on the largest remaining error between the rough mask (empty
when there is none) and the truth, at its deepest point or at a random point well inside it, as if each click
fixed its region before the next one.

    simulator = PromptSimulator(seed=0)
    prompts = simulator(masks)      # masks bool (B, T, H, W) -> float32 (B, T, PROMPT_CHANNELS, H, W)
    prompts = simulator.corrective(masks, model_predictions, prompts)   # clicks on the model's own errors

Half of the training steps (`CORRECTIVE_STEPS`) first run the model on the random prompts, then re-prompt half of
the frames from its predictions: the clicks then land on the errors the model really makes, as RITM trains.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..config import PROMPT_CHANNELS
from ..prompts import FramePrompt, error_regions, region_depth, render_prompt

ROUGH_MASK_MIX = {"none": 0.35, "deformed": 0.25, "neighbour": 0.12, "exact": 0.1, "wrong": 0.1, "empty": 0.08}
CLICK_COUNTS = {0: 0.4, 1: 0.22, 2: 0.16, 3: 0.1, 4: 0.07, 5: 0.05}
CORRECTIVE_STEPS = 0.5


def _deformed(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The mask under a random similarity transform (about its centre), then grown or shrunk a few pixels."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return mask.copy()
    cx, cy = xs.mean(), ys.mean()
    extent = max(np.ptp(xs), np.ptp(ys), 4)
    matrix = cv2.getRotationMatrix2D((float(cx), float(cy)), float(rng.uniform(-20, 20)),
                                     float(np.exp(rng.uniform(-0.2, 0.2))))
    matrix[:, 2] += rng.uniform(-0.15, 0.15, size=2) * extent
    out = cv2.warpAffine(mask.astype(np.uint8), matrix, (w, h), flags=cv2.INTER_NEAREST)
    radius = int(rng.integers(0, max(2, extent // 12) + 1))
    if radius:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        out = (cv2.dilate if rng.random() < 0.5 else cv2.erode)(out, kernel)
    return out.astype(bool)


def _wrong(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An ellipse about the lesion's size (or a random size) placed at random: a proposal on another structure."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    size = max(np.ptp(xs), np.ptp(ys)) if len(xs) else rng.uniform(0.1, 0.3) * min(h, w)
    axes = (max(2, int(size * rng.uniform(0.3, 0.6))), max(2, int(size * rng.uniform(0.3, 0.6))))
    centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
    out = np.zeros((h, w), dtype=np.uint8)
    cv2.ellipse(out, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, thickness=-1)
    return out.astype(bool)


def _click_in(region: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """The region's deepest point (half the time) or a random point at least half as deep."""
    depth = region_depth(region)
    if rng.random() < 0.5:
        y, x = divmod(int(np.argmax(depth)), region.shape[1])
        return x, y
    ys, xs = np.nonzero(depth >= 0.5 * depth.max())
    pick = int(rng.integers(0, len(xs)))
    return int(xs[pick]), int(ys[pick])


class PromptSimulator:
    """Draws a prompt for every frame of a batch of training clips (see the module docstring)."""

    def __init__(self, seed: int = 0, rough_mask_mix: dict[str, float] | None = None,
                 click_counts: dict[int, float] | None = None):
        self.rng = np.random.default_rng(seed)
        mix = rough_mask_mix or ROUGH_MASK_MIX
        counts = click_counts or CLICK_COUNTS
        self._kinds, self._kind_p = list(mix), np.array(list(mix.values())) / sum(mix.values())
        self._counts, self._count_p = list(counts), np.array(list(counts.values())) / sum(counts.values())

    def frame_prompt(self, clip: np.ndarray, t: int) -> FramePrompt:
        """A random prompt for frame t of one clip's true masks, bool (T, H, W)."""
        truth = clip[t]
        kind = self._kinds[self.rng.choice(len(self._kinds), p=self._kind_p)]
        rough: np.ndarray | None
        if kind == "neighbour" and len(clip) > 1:
            other = int(self.rng.choice([i for i in range(len(clip)) if i != t]))
            rough = clip[other].copy()
        elif kind in ("deformed", "neighbour"):
            rough = _deformed(truth, self.rng)
        elif kind == "exact":
            rough = truth.copy()
        elif kind == "wrong":
            rough = _wrong(truth, self.rng)
        elif kind == "empty":
            rough = np.zeros_like(truth)
        else:
            rough = None
        start = np.zeros_like(truth) if rough is None else rough
        count = self._counts[self.rng.choice(len(self._counts), p=self._count_p)]
        positive, negative = self._clicks_on_errors(start, truth, count)
        return FramePrompt(positive, negative, rough)

    def corrective_prompt(self, truth: np.ndarray, prediction: np.ndarray) -> FramePrompt:
        """What the expert does to the model's own prediction: keep it as the rough mask and click 1 to 3 times
        on its largest remaining errors (as RITM trains: on the errors the model really makes)."""
        positive, negative = self._clicks_on_errors(prediction, truth, int(self.rng.integers(1, 4)))
        return FramePrompt(positive, negative, prediction)

    def _clicks_on_errors(self, start: np.ndarray, truth: np.ndarray, count: int
                          ) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
        """Up to `count` clicks, each in the largest error region left once the earlier clicks were answered
        perfectly (the region added or removed): (positive points, negative points)."""
        positive: list[tuple[int, int]] = []
        negative: list[tuple[int, int]] = []
        current = start.copy()
        for _ in range(count):
            regions = error_regions(current, truth)
            if not regions:
                break
            region, is_positive = regions[0]
            (positive if is_positive else negative).append(_click_in(region, self.rng))
            current = (current | region) if is_positive else (current & ~region)
        return tuple(positive), tuple(negative)

    def corrective(self, masks: np.ndarray, predictions: np.ndarray, prompts: np.ndarray,
                   fraction: float = 0.5) -> np.ndarray:
        """`prompts` (B, T, P, H, W) with a `fraction` of the frames re-prompted from the model's predictions
        bool (B, T, H, W) by `corrective_prompt`."""
        out = prompts.copy()
        b, t, h, w = masks.shape
        for i in range(b):
            for j in range(t):
                if self.rng.random() < fraction:
                    out[i, j] = render_prompt(self.corrective_prompt(masks[i, j], predictions[i, j]), (h, w), (h, w))
        return out

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        """masks bool (B, T, H, W) -> prompt maps float32 (B, T, PROMPT_CHANNELS, H, W) at the masks' size."""
        b, t, h, w = masks.shape
        out = np.empty((b, t, PROMPT_CHANNELS, h, w), dtype=np.float32)
        for i in range(b):
            for j in range(t):
                out[i, j] = render_prompt(self.frame_prompt(masks[i], j), (h, w), (h, w))
        return out
