"""Whole-video proposal, as the Studio and `vivim-core predict` run it: decode a video file, predict every
frame, receive per-frame probability maps on the host. Decoding is included in the time."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from ..model import build_model
from .common import synchronize


def make_test_video(folder: Path, frames: int, size: int, seed: int = 0) -> Path:
    """A synthetic ultrasound video file of `frames` frames (generated in pieces to bound memory)."""
    import cv2
    import numpy as np

    from ..data.synthetic import make_ultrasound_video

    path = folder / f"synthetic_{frames}x{size}.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (size, size))
    try:
        for start in range(0, frames, 100):
            piece, _ = make_ultrasound_video(min(100, frames - start), size, size, seed=seed + start)
            for frame in piece:
                writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    finally:
        writer.release()
    return path


def bench_video(variant: str, device: torch.device, frames: int = 1000, size: int = 256, clip_length: int = 5,
                batch_size: int = 16, weights_bf16: bool = True) -> dict:
    from ..data import find_prediction_inputs
    from ..engine.predict import iter_predict

    model = build_model(variant).eval().to(device)
    if weights_bf16 and device.type == "cuda":
        model = model.to(torch.bfloat16)
    with tempfile.TemporaryDirectory() as tmp:
        path = make_test_video(Path(tmp), frames, size)
        video = find_prediction_inputs(path)[0]

        def run() -> int:
            count = 0
            for _, prob in iter_predict(model, video.frames(), num_frames=video.num_frames, clip_length=clip_length,
                                        size=(size, size), batch_size=batch_size, device=device):
                count += prob.shape[0] > 0
            return count

        warm = find_prediction_inputs(path)[0]  # warm-up on the first 100 frames (kernels, cuDNN plans)
        for _ in iter_predict(model, warm.frames(), num_frames=min(100, warm.num_frames), size=(size, size),
                              batch_size=batch_size, device=device):
            pass
        synchronize(device)
        start = time.perf_counter()
        produced = run()
        synchronize(device)
        seconds = time.perf_counter() - start
    return {"variant": variant, "frames": produced, "size": f"{size}x{size}", "clip_length": clip_length,
            "batch_clips": batch_size, "weights": "bf16" if weights_bf16 and device.type == "cuda" else "fp32",
            "seconds": seconds, "frames_per_s": produced / seconds}
