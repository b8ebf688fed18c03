"""Synthetic videos and datasets for tests and demos (numpy + OpenCV only, deterministic by seed).

    frames, masks = make_ultrasound_video(num_frames=30, height=256, width=256, seed=0)
    root = write_vtus_dataset(tmp_path / "vtus", num_videos=2, frames_per_video=12, size=(64, 64))
    root = write_polyp_dataset(tmp_path / "polyp", dataset="SynthPolyp")
    write_video_file(tmp_path / "clip.mp4", frames)
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .readers import DataError, write_frame, write_mask
from .synthetic_endoscopy import make_endoscopy_video
from .synthetic_ultrasound import make_ultrasound_video

__all__ = ["make_ultrasound_video", "make_endoscopy_video", "make_video", "write_vtus_dataset",
           "write_polyp_dataset", "write_video_file"]

GENERATORS = {"ultrasound": make_ultrasound_video, "endoscopy": make_endoscopy_video}


def make_video(kind: str, num_frames: int, height: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`make_ultrasound_video` or `make_endoscopy_video` by name ("ultrasound" | "endoscopy")."""
    if kind not in GENERATORS:
        raise DataError(f"unknown synthetic video kind {kind!r}; choose one of {', '.join(GENERATORS)}")
    return GENERATORS[kind](num_frames=num_frames, height=height, width=width, seed=seed)


def _video_seed(seed: int, index: int) -> int:
    """Independent, reproducible per-video seeds (video i of seed s never equals video j of seed s')."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def write_vtus_dataset(root: Path | str, num_videos: int = 2, frames_per_video: int = 12,
                       size: tuple[int, int] = (64, 64), split: str = "Train", seed: int = 0,
                       kind: str = "ultrasound") -> Path:
    """Write synthetic videos in the VTUS layout and return ROOT:
    `ROOT/<split>/<video_id>/NNNN.jpg` and `ROOT/<split>_GT/<video_id>/NNNN.png` (ids 0001, 0002, ...;
    frame numbers 1-based, 4 digits; masks 8-bit {0, 255}). `size` is (height, width)."""
    root = Path(root)
    for index in range(num_videos):
        video_id = f"{index + 1:04d}"
        frames, masks = make_video(kind, frames_per_video, size[0], size[1], _video_seed(seed, index))
        for number, (frame, mask) in enumerate(zip(frames, masks), start=1):
            write_frame(root / split / video_id / f"{number:04d}.jpg", frame)
            write_mask(root / f"{split}_GT" / video_id / f"{number:04d}.png", mask)
    return root


def write_polyp_dataset(root: Path | str, num_videos: int = 2, frames_per_video: int = 12,
                        size: tuple[int, int] = (64, 64), dataset: str = "SynthPolyp", seed: int = 0,
                        kind: str = "endoscopy") -> Path:
    """Write synthetic videos in the polyp (PNS-Net / VPS) layout and return ROOT:
    `ROOT/<dataset>/Frame/case<k>/<n>.jpg` and `ROOT/<dataset>/GT/case<k>/<n>.png`, with unpadded frame numbers
    (1.jpg ... 12.jpg) as in the public datasets, so that readers must sort them as integers."""
    root = Path(root)
    for index in range(num_videos):
        case = f"case{index + 1}"
        frames, masks = make_video(kind, frames_per_video, size[0], size[1], _video_seed(seed, 1000 + index))
        for number, (frame, mask) in enumerate(zip(frames, masks), start=1):
            write_frame(root / dataset / "Frame" / case / f"{number}.jpg", frame)
            write_mask(root / dataset / "GT" / case / f"{number}.png", mask)
    return root


def write_video_file(path: Path | str, frames: np.ndarray, fps: float = 25) -> Path:
    """Encode uint8 (T, H, W, 3) RGB frames as a video and return the path written.

    MP4 (mp4v) when OpenCV's build can encode it; otherwise an AVI (Motion-JPEG) beside it, `path` with the
    suffix .avi. Raises `DataError` when neither works.
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise DataError(f"{path}: write_video_file needs uint8 frames (T, H, W, 3) with T >= 1, got "
                        f"{frames.dtype} {frames.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames.shape[1:3]
    attempts = [(path, "mp4v")] if path.suffix.lower() in (".mp4", ".m4v", ".mov") else []
    attempts.append((path.with_suffix(".avi"), "MJPG"))
    for target, codec in attempts:
        writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*codec), float(fps), (width, height))
        if not writer.isOpened():
            continue
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        if target.is_file() and target.stat().st_size > 0:
            return target
    raise DataError(f"{path}: OpenCV could not encode a video here (neither mp4v nor MJPG); write the frames "
                    f"as images instead")
