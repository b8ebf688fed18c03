"""Training data of a run: find the annotated videos, split train / validation, build the loaders.

Validation modes (`TrainConfig.val_mode`):
  videos      a seeded `val_fraction` of the videos validate (at least one; needs >= 2 videos)
  frames      the last `val_fraction` of each video's frames validate (at least one clip's worth), the rest train
  train       the training frames themselves, without augmentation (few-frame fine-tuning: "did it learn the
              accepted frames?"; not a generalisation estimate)
  none        no validation: best = last
  split:NAME  the videos of ROOT/NAME with masks in ROOT/NAME_GT
  auto        videos when there are >= 2 videos, else frames when the video is long enough (>= 3 clips), else
              train; none when val_fraction is 0
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.clips import ClipDataset
from ..data.layouts import VideoRecord, find_polyp_videos, find_vtus_videos, validate_video
from ..data.readers import DataError
from ..data.transforms import Augmentation
from .distributed import DistributedContext
from .train_config import TrainConfig


def find_training_videos(root: str | Path, split: str = "Train") -> list[VideoRecord]:
    """Annotated videos under ROOT: the VTUS layout (ROOT/<split>, ROOT/<split>_GT) or the polyp layout
    (ROOT/<dataset>/Frame, ROOT/<dataset>/GT). Every video is checked (sizes, binary masks) up front."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"--data {root}: folder not found (expected the VTUS layout ROOT/{split}/<video_id>/NNNN.jpg "
                        f"with ROOT/{split}_GT, or a polyp dataset ROOT/<dataset>/Frame and GT)")
    if (root / split).is_dir():
        videos = find_vtus_videos(root, split)
    elif (root / "Frame").is_dir() or any((d / "Frame").is_dir() for d in root.iterdir() if d.is_dir()):
        videos = find_polyp_videos(root)
    else:
        videos = find_vtus_videos(root, split)  # raises the VTUS layout error, naming what ROOT holds
    for video in videos:
        validate_video(video)
    return videos


def _subset(video: VideoRecord, start: int, stop: int) -> VideoRecord:
    return replace(video, frame_paths=video.frame_paths[start:stop], mask_paths=video.mask_paths[start:stop])


def split_videos(videos: list[VideoRecord], config: TrainConfig,
                 root: str | Path) -> tuple[list[VideoRecord], list[VideoRecord], str]:
    """(train videos, validation videos, the mode used). See the module docstring."""
    mode = config.val_mode
    if mode == "auto":
        if config.val_fraction == 0:
            mode = "none"
        elif len(videos) >= 2:
            mode = "videos"
        elif len(videos[0]) >= 3 * config.clip_length:
            mode = "frames"
        else:
            mode = "train"
    if mode == "none":
        return videos, [], mode
    if mode == "train":
        return videos, list(videos), mode
    if mode.startswith("split:"):
        return videos, find_vtus_videos(root, mode.split(":", 1)[1]), mode
    if mode == "videos":
        if len(videos) < 2:
            raise DataError(f"val_mode 'videos' needs at least 2 videos, {root} has {len(videos)}; use val_mode "
                            f"'frames' or 'train'")
        order = np.random.default_rng(config.seed).permutation(len(videos))
        count = min(max(1, round(config.val_fraction * len(videos))), len(videos) - 1)
        val_ids = set(order[:count].tolist())
        return ([v for i, v in enumerate(videos) if i not in val_ids],
                [v for i, v in enumerate(videos) if i in val_ids], mode)
    # frames: a contiguous tail of each video, so that no training clip overlaps a validation clip
    train, val = [], []
    for video in videos:
        count = max(config.clip_length, math.ceil(config.val_fraction * len(video)))
        if len(video) - count < 1:
            raise DataError(f"video {video.video_id!r} has {len(video)} frames: too few to hold out {count} for "
                            f"validation; use val_mode 'train' or 'none'")
        train.append(_subset(video, 0, len(video) - count))
        val.append(_subset(video, len(video) - count, len(video)))
    return train, val, mode


def split_record(train: list[VideoRecord], val: list[VideoRecord], mode: str, root: str | Path) -> dict[str, Any]:
    """What `split.json` stores: the mode and, per video, the frame file names of each side."""
    def listing(videos: list[VideoRecord]) -> dict[str, list[str]]:
        return {v.video_id: [p.name for p in v.frame_paths] for v in videos}

    return {"data": str(Path(root).resolve()), "val_mode": mode, "train": listing(train), "val": listing(val)}


def build_datasets(train: list[VideoRecord], val: list[VideoRecord], config: TrainConfig,
                   mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[ClipDataset, ClipDataset | None]:
    augment = Augmentation(seed=config.seed) if config.augment else None
    train_set = ClipDataset(train, config.clip_length, config.clip_stride, config.size, augment, mean, std,
                            clips_per_video=config.clips_per_video)
    val_set = ClipDataset(val, config.clip_length, config.clip_stride, config.size, None, mean, std) if val else None
    return train_set, val_set


class EpochSampler(torch.utils.data.Sampler):
    """A seeded shuffle per epoch, sharded over DDP processes (torch's DistributedSampler: padded so that every
    process gets the same number of clips), that can start part-way into an epoch (resume)."""

    def __init__(self, dataset_length: int, context: DistributedContext, seed: int, shuffle: bool = True):
        self.sampler = torch.utils.data.DistributedSampler(range(dataset_length), num_replicas=context.world_size,
                                                           rank=context.rank, shuffle=shuffle, seed=seed)
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.sampler.set_epoch(epoch)
        self.skip = skip

    def __iter__(self):
        return iter(list(self.sampler)[self.skip:])

    def __len__(self) -> int:
        return len(self.sampler) - self.skip


def make_loader(dataset: ClipDataset, sampler: torch.utils.data.Sampler, config: TrainConfig,
                device: torch.device) -> torch.utils.data.DataLoader:
    workers = config.num_workers
    return torch.utils.data.DataLoader(
        dataset, batch_size=config.batch_size, sampler=sampler, num_workers=workers,
        pin_memory=device.type == "cuda", drop_last=False, persistent_workers=False,
        prefetch_factor=2 if workers else None, collate_fn=collate_clips)


def collate_clips(items: list[dict]) -> dict[str, Any]:
    """Stack clip items: frames (B, T, 3, H, W), masks (B, T, 1, H, W), video_id list, frame_indices (B, T)."""
    return {"frames": torch.stack([i["frames"] for i in items]), "masks": torch.stack([i["masks"] for i in items]),
            "video_id": [i["video_id"] for i in items],
            "frame_indices": torch.stack([i["frame_indices"] for i in items])}
