"""Propagating a mask to the next frame with dense optical flow (OpenCV DIS or Farneback)."""

from __future__ import annotations

import cv2
import numpy as np

from .lesions import present_ids

METHODS = ("dis", "farneback")


def _gray(frame: np.ndarray, scale: float) -> np.ndarray:
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    if scale != 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return gray


def backward_flow(previous: np.ndarray, current: np.ndarray, method: str = "dis", max_side: int = 640
                  ) -> np.ndarray:
    """Flow float32 (H, W, 2) from `current` back to `previous` (uint8 (H, W, 3) RGB frames): pixel (x, y) of
    `current` came from (x + flow[y, x, 0], y + flow[y, x, 1]) of `previous`. Computed at most `max_side`
    pixels wide/high (flow is smooth; this keeps 1080p fast) and scaled back to full resolution."""
    if method not in METHODS:
        raise ValueError(f"unknown optical flow method {method!r}; choose one of {', '.join(METHODS)}")
    h, w = current.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    prev_g, cur_g = _gray(previous, scale), _gray(current, scale)
    if method == "dis":
        flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(cur_g, prev_g, None)
    else:
        flow = cv2.calcOpticalFlowFarneback(cur_g, prev_g, None, pyr_scale=0.5, levels=4, winsize=21,
                                            iterations=3, poly_n=5, poly_sigma=1.1, flags=0)
    if scale != 1.0:
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) / scale
    return flow


def _sampling_maps(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return grid_x + flow[..., 0], grid_y + flow[..., 1]


def _warp(mask: np.ndarray, maps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    warped = cv2.remap(mask.astype(np.float32), maps[0], maps[1], interpolation=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return warped >= 0.5


def warp_mask(mask: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """bool (H, W) mask of the previous frame carried to the current one along a `backward_flow`."""
    return _warp(mask, _sampling_maps(flow))


def warp_labels(labels: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """uint8 (H, W) label map carried along a `backward_flow`: each lesion warped as a mask (as `warp_mask`),
    keeping its id; where two would meet (a pixel exactly half of each) the lower id keeps it."""
    maps = _sampling_maps(flow)
    out = np.zeros(labels.shape, np.uint8)
    for lesion in present_ids(labels):
        out[_warp(labels == lesion, maps) & (out == 0)] = lesion
    return out


def propagate_mask(previous: np.ndarray, current: np.ndarray, mask: np.ndarray, method: str = "dis"
                   ) -> np.ndarray:
    """The mask of frame `previous` moved onto frame `current` (both uint8 (H, W, 3) RGB)."""
    if not mask.any():
        return np.zeros_like(mask, dtype=bool)
    return warp_mask(mask, backward_flow(previous, current, method))


def propagate_labels(previous: np.ndarray, current: np.ndarray, labels: np.ndarray, method: str = "dis"
                     ) -> np.ndarray:
    """The label map uint8 (H, W) of frame `previous` moved onto frame `current`, each lesion keeping its id."""
    if not labels.any():
        return np.zeros_like(labels, dtype=np.uint8)
    return warp_labels(labels, backward_flow(previous, current, method))
