"""Video and frame readers, dataset layouts, clip sampling, augmentation, synthetic videos.

    from vivim_core.data import find_vtus_videos, ClipDataset, Augmentation
    videos = find_vtus_videos("data/vtus", split="Train")      # list[VideoRecord]
    dataset = ClipDataset(videos, clip_length=5, size=(256, 256), augment=Augmentation(seed=0))

Names load lazily, so importing this package does not import torch (only `clips` needs it).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "DataError": "readers", "read_frame": "readers", "read_mask": "readers", "write_frame": "readers",
    "write_mask": "readers", "image_size": "readers", "list_images": "readers", "natural_key": "readers",
    "VideoFileReader": "readers", "IMAGE_SUFFIXES": "readers", "VIDEO_SUFFIXES": "readers",
    "VideoRecord": "layouts", "PredictionInput": "layouts", "find_vtus_videos": "layouts",
    "find_polyp_videos": "layouts", "find_prediction_inputs": "layouts", "validate_video": "layouts",
    "pair_frames_and_masks": "layouts",
    "Augmentation": "transforms", "resize_frames": "transforms", "resize_masks": "transforms",
    "ClipDataset": "clips", "frames_to_tensor": "clips", "clip_indices": "clips", "clip_starts": "clips",
    "make_ultrasound_video": "synthetic", "make_endoscopy_video": "synthetic", "make_video": "synthetic",
    "write_vtus_dataset": "synthetic", "write_polyp_dataset": "synthetic", "write_video_file": "synthetic",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
