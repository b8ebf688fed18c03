"""Training clips: T frames of one video (with a frame stride), resized, augmented, normalised, as tensors.

    dataset = ClipDataset(find_vtus_videos(root, "Train"), clip_length=5, size=(256, 256),
                          augment=Augmentation(seed=0))
    item = dataset[0]   # {"frames": (T, 3, H, W) float32, "masks": (T, 1, H, W) float32 in {0, 1},
                        #  "video_id": str, "frame_indices": (T,) int64}

Clips: every window of T frames `stride` apart that fits in the video (start 0, 1, 2, ...); a video shorter
than one window gives one clip whose indices are clamped to the last frame (edge frames repeat), so a
folder with a few annotated frames still trains. `clips_per_video=k` keeps k evenly spaced windows per video
(repeating windows when a video has fewer), which balances long and short videos.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..config import IMAGENET_MEAN, IMAGENET_STD
from .layouts import VideoRecord
from .readers import DataError, read_frame, read_mask
from .transforms import Augmentation, resize_frames, resize_masks

__all__ = ["ClipDataset", "Augmentation", "frames_to_tensor", "clip_indices", "clip_starts"]


def clip_indices(start: int, num_frames: int, clip_length: int, stride: int = 1) -> list[int]:
    """Frame indices of the clip that starts at `start`: start, start + stride, ... clamped to [0, N-1]."""
    return [min(max(start + k * stride, 0), num_frames - 1) for k in range(clip_length)]


def clip_starts(num_frames: int, clip_length: int, stride: int = 1, clips_per_video: int | None = None) -> list[int]:
    """Start frames of the clips of a video of `num_frames` frames (see the module docstring)."""
    span = (clip_length - 1) * stride + 1
    starts = list(range(max(num_frames - span, 0) + 1))
    if clips_per_video is None:
        return starts
    picks = np.linspace(0, len(starts) - 1, clips_per_video).round().astype(int)
    return [starts[i] for i in picks]


def frames_to_tensor(frames: np.ndarray, mean: Sequence[float] = IMAGENET_MEAN,
                     std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """uint8 (T, H, W, 3) RGB -> float32 (T, 3, H, W), scaled to [0, 1] then normalised by mean/std per channel."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise DataError(f"frames_to_tensor needs uint8 RGB frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return tensor.sub_(mean_t).div_(std_t)


class ClipDataset(torch.utils.data.Dataset):
    """Clips of annotated videos for training (see the module docstring for the sampling).

    `size` = (H, W) of the training input (frames: area/bilinear, masks: nearest). `augment`: an
    `Augmentation` or None. With `augment.seed` set, item i of epoch e is augmented identically on every run
    and in every DataLoader worker (call `set_epoch` each epoch to vary it); without a seed each item draws
    from torch's RNG, which DataLoader seeds differently per worker.
    """

    def __init__(self, videos: Sequence[VideoRecord], clip_length: int = 5, stride: int = 1,
                 size: tuple[int, int] = (256, 256), augment: Augmentation | None = None,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 clips_per_video: int | None = None):
        if clip_length < 1 or stride < 1:
            raise DataError(f"clip_length and stride must be >= 1 (got {clip_length}, {stride})")
        if clips_per_video is not None and clips_per_video < 1:
            raise DataError(f"clips_per_video must be >= 1 or None (got {clips_per_video})")
        if len(size) != 2 or min(size) < 1:
            raise DataError(f"size must be (height, width) with positive values (got {size})")
        if not videos:
            raise DataError("ClipDataset got no videos: the dataset folder holds no annotated video")
        for video in videos:
            if not video.mask_paths:
                raise DataError(f"video {video.video_id!r} ({video.frame_paths[0].parent}) has no masks; training "
                                f"needs a mask for every frame")
            if len(video.mask_paths) != len(video.frame_paths):
                raise DataError(f"video {video.video_id!r}: {len(video.frame_paths)} frames but "
                                f"{len(video.mask_paths)} masks")
        self.videos = list(videos)
        self.clip_length, self.stride, self.size = clip_length, stride, (int(size[0]), int(size[1]))
        self.augment, self.mean, self.std = augment, tuple(mean), tuple(std)
        self.epoch = 0
        self.clips = [(v, start) for v, video in enumerate(self.videos)
                      for start in clip_starts(len(video), clip_length, stride, clips_per_video)]

    def __len__(self) -> int:
        return len(self.clips)

    def set_epoch(self, epoch: int) -> None:
        """Vary the (seeded) augmentation from one epoch to the next."""
        self.epoch = int(epoch)

    def frame_indices(self, index: int) -> list[int]:
        """Indices (into the video's frames) of clip `index`."""
        video_index, start = self.clips[index]
        return clip_indices(start, len(self.videos[video_index]), self.clip_length, self.stride)

    def load_clip(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Clip `index` at training size, not augmented: frames uint8 (T, H, W, 3), masks bool (T, H, W)."""
        video = self.videos[self.clips[index][0]]
        frames, masks = [], []
        for i in self.frame_indices(index):
            frame, mask = read_frame(video.frame_paths[i]), read_mask(video.mask_paths[i])
            if mask.shape != frame.shape[:2]:
                raise DataError(f"{video.mask_paths[i]}: mask is {mask.shape[1]}x{mask.shape[0]} but its frame "
                                f"{video.frame_paths[i]} is {frame.shape[1]}x{frame.shape[0]}; masks must have "
                                f"their frame's size")
            frames.append(resize_frames(frame[None], self.size)[0])
            masks.append(resize_masks(mask[None], self.size)[0])
        return np.stack(frames), np.stack(masks)

    def _rng(self, index: int) -> np.random.Generator:
        if self.augment is not None and self.augment.seed is not None:
            return np.random.default_rng([self.augment.seed, self.epoch, index])
        return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"clip {index} out of range ({len(self)} clips)")
        index %= len(self)
        frames, masks = self.load_clip(index)
        if self.augment is not None:
            frames, masks = self.augment(frames, masks, self._rng(index))
        return {
            "frames": frames_to_tensor(frames, self.mean, self.std),
            "masks": torch.from_numpy(masks.astype(np.float32)).unsqueeze(1),
            "video_id": self.videos[self.clips[index][0]].video_id,
            "frame_indices": torch.tensor(self.frame_indices(index), dtype=torch.long),
        }
