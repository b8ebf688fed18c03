"""Resizing and training augmentation of clips (numpy + OpenCV; torch-free).

Masks are resized with nearest neighbour and rotated with nearest neighbour and a zero border, so they stay
binary; geometric transforms are drawn once per clip and applied to every frame and mask, colour jitter is
drawn per frame and touches frames only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (T, H, W, 3) -> uint8 (T, h, w, 3) for `size` = (h, w): area averaging when shrinking (no aliasing
    of the speckle), bilinear when enlarging. Returns the input itself when the size already matches."""
    height, width = size
    if frames.shape[1:3] == (height, width):
        return frames
    shrinking = height * width < frames.shape[1] * frames.shape[2]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return np.stack([cv2.resize(frame, (width, height), interpolation=interpolation) for frame in frames])


def resize_masks(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Binary masks (T, H, W) (bool or uint8) -> (T, h, w) of the same dtype, nearest neighbour (stays binary)."""
    height, width = size
    if masks.shape[1:3] == (height, width):
        return masks
    as_bytes = masks.view(np.uint8) if masks.dtype == bool else masks
    resized = np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_NEAREST) for m in as_bytes])
    return resized.astype(bool) if masks.dtype == bool else resized


@dataclass
class Augmentation:
    """The reference code's clip augmentation, without its mask corruption (it adds salt-and-pepper noise to
    the ground truth; we never alter mask labels).

    Per clip: horizontal flip (probability `hflip_p`), vertical flip (`vflip_p`; off by default: it puts the
    skin at the bottom of an ultrasound image), rotation by a uniform angle in +-`max_rotation` degrees with
    probability `rotation_p` (zero border; the lesion may leave the frame, its mask with it).
    Per frame: brightness, contrast and saturation factors drawn in [1 - j, 1 + j].
    `seed` makes a stand-alone Augmentation reproducible; `ClipDataset` passes its own per-item generator.
    """

    hflip_p: float = 0.5
    vflip_p: float = 0.0
    rotation_p: float = 0.5
    max_rotation: float = 15.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    seed: int | None = None

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def __call__(self, frames: np.ndarray, masks: np.ndarray,
                 rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """frames uint8 (T, H, W, 3), masks bool or uint8 (T, H, W) -> augmented copies, same shapes and dtypes."""
        rng = self._rng if rng is None else rng
        frames, masks = self.geometric(frames, masks, rng)
        return self.colour(frames, rng), masks

    def geometric(self, frames: np.ndarray, masks: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One flip/rotation drawn for the whole clip, applied to every frame and mask."""
        if rng.random() < self.hflip_p:
            frames, masks = frames[:, :, ::-1], masks[:, :, ::-1]
        if rng.random() < self.vflip_p:
            frames, masks = frames[:, ::-1], masks[:, ::-1]
        frames, masks = np.ascontiguousarray(frames), np.ascontiguousarray(masks)
        if self.max_rotation > 0 and rng.random() < self.rotation_p:
            angle = rng.uniform(-self.max_rotation, self.max_rotation)
            height, width = frames.shape[1:3]
            matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), angle, 1.0)
            frames = np.stack([cv2.warpAffine(f, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                              borderMode=cv2.BORDER_CONSTANT, borderValue=0) for f in frames])
            as_bytes = masks.view(np.uint8) if masks.dtype == bool else masks
            rotated = np.stack([cv2.warpAffine(m, matrix, (width, height), flags=cv2.INTER_NEAREST,
                                               borderMode=cv2.BORDER_CONSTANT, borderValue=0) for m in as_bytes])
            masks = rotated.astype(bool) if masks.dtype == bool else rotated
        return frames, masks

    def colour(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Brightness, contrast and saturation jitter, drawn independently for each frame: uint8 (T, H, W, 3)."""
        out = np.empty_like(frames)
        for index, frame in enumerate(frames):
            image = frame.astype(np.float32)
            grey = image @ np.float32([0.299, 0.587, 0.114])
            factors = [1 + rng.uniform(-j, j) if j > 0 else 1.0
                       for j in (self.brightness, self.contrast, self.saturation)]
            brightness, contrast, saturation = factors
            image = grey[:, :, None] + saturation * (image - grey[:, :, None])
            mean = float(grey.mean())
            image = (mean + contrast * (image - mean)) * brightness
            out[index] = np.clip(image + 0.5, 0, 255).astype(np.uint8)
        return out
