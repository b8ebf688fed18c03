"""Clicks and boxes for checkpoints without prompt inputs: GrabCut seeded by the prompt.

A checkpoint trained before prompts existed (or by another site) cannot be steered by clicks, yet the expert's
Prompt tool must still work with it. This module answers a `FramePrompt` from the image alone:

    mask = grabcut_prompt(frame, FramePrompt(positive=[(120, 80)], rough_mask=current), prior=proposal)

Seeds (OpenCV's GrabCut labels): a positive click is a small disk of sure lesion inside a larger disk of
probable lesion, a negative click a disk of sure background, the rough mask (or the model's proposal, `prior`)
probable lesion, a box's inscribed ellipse probable lesion with sure background outside the box. GrabCut then
fits colour models to the seeds and cuts along image edges, in a window around the seeds (the rest of the frame
keeps its rough mask), at most `WORK_SIDE` pixels on its longer side for a quick answer on a CPU.

Where GrabCut finds no edge to follow (it keeps under `COLLAPSED` of the seeded lesion: speckled, low-contrast
ultrasound), the seeds are the answer: a positive click then adds a lesion-sized disk, a smart brush stamp.
The answer always honours the clicks: positive disks are lesion, negative disks are not, and lesion regions
that neither touch a positive click nor overlap the rough mask are dropped. NumPy and OpenCV only.
"""

from __future__ import annotations

import cv2
import numpy as np

from .prompts import FramePrompt, box_mask

WORK_SIDE = 320  # the GrabCut window is resized to at most this many pixels on its longer side
ITERATIONS = 4
COLLAPSED = 0.25  # a cut smaller than this share of its lesion seeds is not trusted
LEAK_RADII = 4  # a lesion region reaching farther than this many reach radii from its click has leaked


def reach_radius(shape: tuple[int, int]) -> int:
    """How far a click acts, in frame pixels: 8 % of the smaller side (20 px at 256x256), at least 8."""
    return max(8, int(round(0.08 * min(shape))))


def _disk(shape: tuple[int, int], point: tuple[float, float], radius: int) -> np.ndarray:
    out = np.zeros(shape, dtype=np.uint8)
    cv2.circle(out, (int(round(point[0])), int(round(point[1]))), max(1, radius), 1, thickness=-1)
    return out.astype(bool)


def _seed_labels(prompt: FramePrompt, rough: np.ndarray | None, shape: tuple[int, int]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GrabCut labels (H, W) uint8 for the whole frame, and the sure-lesion / sure-background masks."""
    h, w = shape
    sure_radius = max(3, int(round(0.012 * min(h, w))))
    labels = np.full(shape, cv2.GC_PR_BGD, dtype=np.uint8)
    sure_fg = np.zeros(shape, dtype=bool)
    sure_bg = np.zeros(shape, dtype=bool)
    if prompt.box is not None:
        x0, y0, x1, y1 = prompt.box
        inside = np.zeros(shape, dtype=bool)
        inside[max(0, int(y0)):min(h, int(np.ceil(y1)) + 1), max(0, int(x0)):min(w, int(np.ceil(x1)) + 1)] = True
        sure_bg |= ~inside
    if rough is not None:
        labels[rough] = cv2.GC_PR_FGD
    for point in prompt.positive:
        labels[_disk(shape, point, reach_radius(shape)) & (labels == cv2.GC_PR_BGD)] = cv2.GC_PR_FGD
        sure_fg |= _disk(shape, point, sure_radius)
    for point in prompt.negative:
        sure_bg |= _disk(shape, point, sure_radius)
    sure_bg &= ~sure_fg  # a click of each kind on one spot: lesion wins
    labels[sure_bg] = cv2.GC_BGD
    labels[sure_fg] = cv2.GC_FGD
    return labels, sure_fg, sure_bg


def _window(labels: np.ndarray) -> tuple[slice, slice] | None:
    """The seeds' bounding box grown by half its size (and 16 px) on each side, or None without lesion seeds."""
    rows, cols = np.nonzero((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD))
    if rows.size == 0:
        return None
    h, w = labels.shape
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    grow_y = (bottom - top) // 2 + 16
    grow_x = (right - left) // 2 + 16
    return (slice(max(0, top - grow_y), min(h, bottom + grow_y)), slice(max(0, left - grow_x), min(w, right + grow_x)))


def _grabcut(image: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    """Lesion bool mask of the window, or None when GrabCut cannot run (seeds of one kind only)."""
    has_fg = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)).any()
    has_bg = np.isin(labels, (cv2.GC_BGD, cv2.GC_PR_BGD)).any()
    if not (has_fg and has_bg):
        return None
    h, w = labels.shape
    scale = min(1.0, WORK_SIDE / max(h, w))
    small_size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    work_image = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA) if scale < 1 else image
    work_labels = cv2.resize(labels, small_size, interpolation=cv2.INTER_NEAREST) if scale < 1 else labels.copy()
    background = np.zeros((1, 65), np.float64)
    foreground = np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(np.ascontiguousarray(work_image), work_labels, None, background, foreground, ITERATIONS,
                    cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # degenerate colour models (a flat window): no cut
        return None
    lesion = np.isin(work_labels, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    if scale < 1:
        lesion = cv2.resize(lesion, (w, h), interpolation=cv2.INTER_NEAREST)
    return lesion.astype(bool)


def _keep_anchored(mask: np.ndarray, sure_fg: np.ndarray, rough: np.ndarray | None) -> np.ndarray:
    """Only the regions of `mask` that hold a positive click or overlap the rough mask."""
    count, regions = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    anchors = sure_fg if rough is None else (sure_fg | rough)
    keep = np.unique(regions[anchors & mask])
    return np.isin(regions, keep[keep > 0])


def _component_at(mask: np.ndarray, point: tuple[float, float]) -> np.ndarray:
    """The 8-connected region of `mask` holding `point` (empty when the point is outside the mask)."""
    x, y = int(round(point[0])), int(round(point[1]))
    h, w = mask.shape
    if not (0 <= y < h and 0 <= x < w and mask[y, x]):
        return np.zeros_like(mask)
    _, regions = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return regions == regions[y, x]


def _local(cut: np.ndarray, point: tuple[float, float], radius: int, wanted: bool) -> np.ndarray:
    """What a click changes: the lesion region of the cut that holds a positive click, the cut's background
    within a negative click's reach disk; or the whole disk when that region is under COLLAPSED of the disk (no edge to
    follow there)."""
    reach = _disk(cut.shape, point, radius)
    # a lesion grows to its edge; background is only taken back near the click (removing a whole background
    # region would take the lesion with it wherever the cut leaks)
    region = _component_at(cut, point) if wanted else reach & ~cut
    leaked = wanted and (region & ~_disk(cut.shape, point, LEAK_RADII * radius)).any()
    return region if region.sum() >= COLLAPSED * reach.sum() and not leaked else reach


def grabcut_prompt(image: np.ndarray, prompt: FramePrompt, prior: np.ndarray | None = None) -> np.ndarray:
    """The frame's lesion mask bool (H, W) from `prompt` on `image` uint8 (H, W, 3) (or (H, W) grey).

    `prior` bool (H, W), the model's proposal, stands in for the rough mask when the prompt has none. Clicks
    act locally: a positive click adds the region the cut calls lesion around it, a negative click removes what
    it calls background within the click's `reach_radius`; the rest of the rough mask is kept as it is."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.dtype != np.uint8:
        raise ValueError(f"grabcut_prompt needs a uint8 image, not {image.dtype}")
    shape = image.shape[:2]
    if prompt.rough_mask is not None:
        rough = prompt.rough_mask
    elif prompt.box is not None:
        rough = box_mask(prompt.box, shape)  # a box starts the frame's mask afresh
    else:
        rough = prior
    rough = None if rough is None else np.asarray(rough, dtype=bool)
    labels, sure_fg, sure_bg = _seed_labels(prompt, rough, shape)
    cut = None
    window = _window(labels)
    if window is not None:
        window_cut = _grabcut(image[window], labels[window])
        if window_cut is not None:
            cut = np.zeros(shape, dtype=bool)
            cut[window] = window_cut
    result = np.zeros(shape, dtype=bool) if rough is None else rough.copy()
    if prompt.box is not None and prompt.rough_mask is None and cut is not None:
        inside_box = rough & ~sure_bg
        if (cut & inside_box).sum() >= COLLAPSED * inside_box.sum():
            result = cut & ~sure_bg
    radius = reach_radius(shape)
    for point in prompt.positive:
        result |= _disk(shape, point, radius) if cut is None else _local(cut, point, radius, wanted=True)
    for point in prompt.negative:
        result &= ~(_disk(shape, point, radius) if cut is None else _local(cut, point, radius, wanted=False))
    result = _keep_anchored(result, sure_fg, None if rough is None else rough & ~sure_bg)
    result |= sure_fg
    result &= ~sure_bg
    return result
