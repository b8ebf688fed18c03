"""Teaching a checkpoint to take prompts, cheaply: its image-only stages stay fixed, so their features are computed
once per clip (`InteractiveVideo`'s cache) and each step runs only the rest of the model.

    model = train_prompt_inputs(load_model("vivim-tiny-thyroid.safetensors"), videos, steps=1500)

`videos` are (frames uint8 (T, H, W, 3), masks bool (T, H, W)) pairs (synthetic ones for the bundled checkpoints).
Every step draws a clip, gives each of its frames a prompt from `PromptSimulator` (half of the steps re-prompting
half of the frames from the model's own errors, as RITM trains) and minimises the structure loss on every frame.
Each video is cached as it is and mirrored left-right (flip augmentation without recomputing features per step).
The whole-video path (`vivim-core finetune --prompts`) trains the same layers with full augmentation, at several
times the cost per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..losses.segmentation import structure_loss
from ..model import add_prompt_inputs
from .interactive import InteractiveVideo
from .prompt_simulation import CORRECTIVE_STEPS, PromptSimulator


def train_prompt_inputs(model: torch.nn.Module, videos: Sequence[tuple[np.ndarray, np.ndarray]], *, steps: int,
                        lr: float = 3e-4, min_lr: float = 1e-6, size: tuple[int, int] = (256, 256),
                        clip_length: int = 5, device: str | torch.device = "cpu", seed: int = 0,
                        max_seconds: float | None = None,
                        progress: Callable[[int, int, float], None] | None = None) -> dict[str, Any]:
    """Train `model`'s prompt inputs (added when it has none) and the layers after its image-only stages in
    place, on `videos`; returns {"model", "steps", "seconds", "loss"} (loss: mean of the last 50 steps)."""
    model = add_prompt_inputs(model).to(device)
    rng = np.random.default_rng(seed)
    simulator = PromptSimulator(seed)
    sources: list[tuple[InteractiveVideo, np.ndarray]] = []
    for frames, masks in videos:
        for mirrored in (False, True):
            f = np.ascontiguousarray(frames[:, :, ::-1]) if mirrored else frames
            m = np.ascontiguousarray(masks[:, :, ::-1]) if mirrored else masks
            video = InteractiveVideo(model, lambda i, f=f: f[i], len(f), native_size=f.shape[1:3], size=size,
                                     clip_length=clip_length, overlap=0, device=device, cache_bytes=1 << 40)
            sources.append((video, _at_size(m, size)))
    trainable = sources[0][0].trainable_parameters()
    optimizer = torch.optim.Adam(trainable, lr=lr)
    model.eval()  # fixed statistics and no dropout (see interactive.py); the image-only stages never change
    started, losses = time.perf_counter(), []
    done = 0
    for done in range(1, steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = min_lr + 0.5 * (lr - min_lr) * (1 + np.cos(np.pi * (done - 1) / max(1, steps - 1)))
        video, masks = sources[int(rng.integers(len(sources)))]
        clip = int(rng.integers(len(video.schedule)))
        truth = masks[video.schedule[clip]]  # (T, h, w) bool
        prompts = simulator(truth[None])  # (1, T, P, h, w)
        if rng.random() < CORRECTIVE_STEPS:
            with torch.no_grad():
                predicted = video.clip_logits(clip, torch.from_numpy(prompts).to(video.device)) >= 0
            prompts = simulator.corrective(truth[None], predicted.cpu().numpy()[None], prompts)
        logits = video.clip_logits(clip, torch.from_numpy(prompts).to(video.device))
        target = torch.from_numpy(truth.astype(np.float32)).to(video.device)
        loss = structure_loss(logits[:, None], target[:, None])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(done, steps, float(np.mean(losses[-50:])))
        if max_seconds is not None and time.perf_counter() - started > max_seconds:
            break
    return {"model": model, "steps": done, "seconds": time.perf_counter() - started,
            "loss": float(np.mean(losses[-50:])) if losses else None}


def _at_size(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    if masks.shape[1:] == tuple(size):
        return masks.astype(bool)
    return np.stack([cv2.resize(m.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_AREA) >= 0.5
                     for m in masks])
