"""A prompt-capable Vivim bound to one video, for interactive work: answer a click in a fraction of a second,
re-propose the frames nobody has touched, and adapt to the frames a human has labelled, all in memory.

    session = InteractiveVideo(model, read_frame, num_frames, native_size=(H, W), device="cpu")
    prob = session.predict_frame(10, {10: FramePrompt(positive=[(120, 80)], rough_mask=mask)})  # (H, W)
    for index, prob in session.predict_frames(range(num_frames), prompts): ...
    session.adapt({3: mask3, 40: mask40}, seconds=20)       # a bounded fine-tune on the labelled frames

The video is cut into the same overlapping clips as `iter_predict` (`clip_schedule`). The first encoder
stages see images only (`Vivim.image_features`), so their features are computed once per clip, cached (LRU,
bounded in bytes) and reused for every click, every re-proposal and every adaptation step; only the rest of the
model runs again. Adaptation trains that rest (the later stages, the decoder and the prompt layers) with the
first stages fixed and every layer in inference mode (no dropout, batch-norm statistics kept): a handful of
labelled frames cannot estimate new statistics, and the fixed features are what makes the cache valid.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..losses.segmentation import structure_loss
from ..model.vivim import PROMPT_ENTRY_STAGES
from ..prompts import FramePrompt, render_prompt
from .predict import PredictionError, _check_and_resize, clip_schedule, clip_weights
from .prompt_simulation import PromptSimulator

DEFAULT_CACHE_BYTES = 1 << 30


class FeatureCache:
    """Image-only features per clip, least recently used first out once over `max_bytes`. Thread-safe; shared
    by the models of one video whose image-only stages are the same (a serving model and its trainee)."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES):
        self.max_bytes = max_bytes
        self._items: OrderedDict[int, list[torch.Tensor]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, clip: int) -> list[torch.Tensor] | None:
        with self._lock:
            if clip in self._items:
                self._items.move_to_end(clip)
                return self._items[clip]
        return None

    def put(self, clip: int, features: list[torch.Tensor]) -> None:
        with self._lock:
            if clip in self._items:
                return
            self._items[clip] = features
            self._bytes += sum(f.numel() * f.element_size() for f in features)
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= sum(f.numel() * f.element_size() for f in dropped)

    @property
    def bytes(self) -> int:
        return self._bytes


class InteractiveVideo:
    """See the module docstring. `read_frame(i)` returns uint8 (H, W, 3) RGB at `native_size` (H, W)."""

    def __init__(self, model: torch.nn.Module, read_frame: Callable[[int], np.ndarray], num_frames: int, *,
                 native_size: tuple[int, int], size: tuple[int, int] = (256, 256), clip_length: int = 5,
                 overlap: int = 2, device: str | torch.device = "cpu", cache_bytes: int = DEFAULT_CACHE_BYTES,
                 seed: int = 0, cache: FeatureCache | None = None):
        if not getattr(model.config, "prompt_channels", 0):
            raise PredictionError("this checkpoint has no prompt inputs; interactive prompts need a prompt-capable "
                                  "checkpoint (the bundled ones are; `vivim-core finetune --prompts` adds them)")
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.read_frame = read_frame
        self.num_frames = num_frames
        self.native_size = tuple(native_size)
        self.size = tuple(size)
        self.clip_length = clip_length
        self.schedule = clip_schedule(num_frames, clip_length, overlap)
        self.weights = clip_weights(clip_length)
        self.clips_of: list[list[int]] = [[] for _ in range(num_frames)]
        for c, indices in enumerate(self.schedule):
            for i in set(indices):
                self.clips_of[i].append(c)
        self.cache = cache if cache is not None else FeatureCache(cache_bytes)
        self._overlap = overlap
        self._seed = seed
        self._dtype = next(model.parameters()).dtype
        mean = torch.tensor(model.config.input_mean, dtype=torch.float32).view(1, 3, 1, 1) * 255
        std = torch.tensor(model.config.input_std, dtype=torch.float32).view(1, 3, 1, 1) * 255
        self._mean, self._std = mean.to(self.device), std.to(self.device)
        self._optimizer: torch.optim.Optimizer | None = None
        self._simulator = PromptSimulator(seed)
        self._rng = np.random.default_rng(seed)
        self.adapted_steps = 0

    def sharing_cache(self, model: torch.nn.Module) -> "InteractiveVideo":
        """Another model on the same video and feature cache: its image-only stages must equal this model's
        (a copy being adapted: adaptation never changes them)."""
        return InteractiveVideo(model, self.read_frame, self.num_frames, native_size=self.native_size,
                                size=self.size, clip_length=self.clip_length, overlap=self._overlap,
                                device=self.device, seed=self._seed + 1, cache=self.cache)

    # ---- features --------------------------------------------------------------------------------------------
    def _autocast(self):
        if self.device.type == "cuda" and self._dtype == torch.float32:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _clip_input(self, clip: int) -> torch.Tensor:
        frames = np.stack([_check_and_resize(self.read_frame(i), i, self.size, self.native_size)
                           for i in self.schedule[clip]])
        pixels = torch.from_numpy(frames).to(self.device).permute(0, 3, 1, 2).float()
        return ((pixels - self._mean) / self._std).to(self._dtype)[None]  # (1, T, 3, h, w)

    def clip_features(self, clip: int) -> list[torch.Tensor]:
        """The image-only features of clip `clip` (cached)."""
        features = self.cache.get(clip)
        if features is None:
            with torch.no_grad(), self._autocast():
                features = [f.detach() for f in self.model.image_features(self._clip_input(clip))]
            self.cache.put(clip, features)
        return features

    def _clip_prompts(self, clip: int, prompts: Mapping[int, FramePrompt | None]) -> torch.Tensor | None:
        if not any(prompts.get(i) is not None for i in self.schedule[clip]):
            return None
        maps = np.stack([render_prompt(prompts.get(i), self.native_size, self.size) for i in self.schedule[clip]])
        return torch.from_numpy(maps).to(self.device)[None]

    def clip_logits(self, clip: int, prompts: Mapping[int, FramePrompt | None] | torch.Tensor | None
                    ) -> torch.Tensor:
        """Mask logits (T, h, w) of one clip at the model size; prompts per frame index, or already rendered
        (1, T, P, h, w)."""
        if prompts is None or torch.is_tensor(prompts):
            output = self.model.decode(self.clip_features(clip), self.clip_length, self.size, prompts)
            return output.mask_logits[0, :, 0]
        output = self.model.decode(self.clip_features(clip), self.clip_length, self.size,
                                   self._clip_prompts(clip, prompts))
        return output.mask_logits[0, :, 0]

    # ---- prediction ------------------------------------------------------------------------------------------
    def _to_native(self, probs: torch.Tensor) -> np.ndarray:
        if tuple(probs.shape[-2:]) != self.native_size:
            probs = F.interpolate(probs[:, None], size=self.native_size, mode="bilinear", align_corners=False)[:, 0]
        return probs.clamp_(0, 1).float().cpu().numpy()

    def centre_clip(self, frame: int) -> int:
        """The clip in which `frame` sits closest to the centre (the most context on both sides)."""
        def distance(c: int) -> float:
            positions = [k for k, i in enumerate(self.schedule[c]) if i == frame]
            return min(abs(k - (self.clip_length - 1) / 2) for k in positions)
        return min(self.clips_of[frame], key=distance)

    @torch.no_grad()
    def predict_frame(self, frame: int, prompts: Mapping[int, FramePrompt | None]) -> np.ndarray:
        """Probability float32 (H, W) of one frame, from the one clip that centres it (fast: for a click)."""
        clip = self.centre_clip(frame)
        with self._autocast():
            logits = self.clip_logits(clip, prompts)
        position = self.schedule[clip].index(frame)
        return self._to_native(torch.sigmoid(logits[position:position + 1].float()))[0]

    @torch.no_grad()
    def predict_frames(self, frames: Iterable[int], prompts: Mapping[int, FramePrompt | None],
                       cancel: Callable[[], bool] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(index, probability float32 (H, W)) for each requested frame, in order, blended over every clip that
        covers it with the weights of `iter_predict`."""
        wanted = sorted(set(int(i) for i in frames))
        clips = sorted({c for i in wanted for c in self.clips_of[i]})
        sums: dict[int, torch.Tensor] = {}
        norms: dict[int, float] = {}
        remaining = {i: len(self.clips_of[i]) for i in wanted}
        for clip in clips:
            if cancel is not None and cancel():
                return
            with self._autocast():
                probs = torch.sigmoid(self.clip_logits(clip, prompts).float())
            seen = set()
            ready = []
            for position, i in enumerate(self.schedule[clip]):
                if i in seen or i not in remaining:
                    continue
                seen.add(i)
                weight = float(self.weights[position])
                sums[i] = probs[position] * weight + sums.get(i, 0)
                norms[i] = norms.get(i, 0.0) + weight
                remaining[i] -= 1
                if remaining[i] == 0:
                    ready.append(i)
            for i in sorted(ready):
                yield i, self._to_native((sums.pop(i) / norms.pop(i))[None])[0]

    # ---- adaptation ------------------------------------------------------------------------------------------
    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """The parameters after the image-only stages: what adaptation changes."""
        fixed = {id(p) for stage in self.model.stages[:PROMPT_ENTRY_STAGES] for p in stage.parameters()}
        fixed |= {id(p) for p in self.model.boundary_head.parameters()}
        return [p for p in self.model.parameters() if id(p) not in fixed]

    def _training_prompts(self, clip: int, labels: Mapping[int, np.ndarray], target: int
                          ) -> dict[int, FramePrompt]:
        """Prompts for one training clip: the target frame gets a simulated prompt from its label; the other
        labelled frames of the clip show their label as an accepted frame would, half of the time."""
        prompts: dict[int, FramePrompt] = {}
        for i in set(self.schedule[clip]):
            if i not in labels:
                continue
            if i == target:
                small = np.stack([_resize_mask(labels[target], self.size)])
                simulated = self._simulator.frame_prompt(small, 0)
                prompts[i] = _prompt_to_native(simulated, self.size, self.native_size)
            elif self._rng.random() < 0.5:
                prompts[i] = FramePrompt(rough_mask=labels[i])
        return prompts

    def adapt(self, labels: Mapping[int, np.ndarray], *, steps: int | None = None, seconds: float | None = None,
              lr: float = 2e-4, clips_per_step: int = 2, cancel: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Fine-tune on the labelled frames (index -> bool (H, W) mask at native size) for `steps` optimizer
        steps or `seconds`, whichever ends first (at least one step). Warm: each call continues the last
        (same optimizer state). Returns {"steps", "seconds", "loss"}."""
        if not labels:
            return {"steps": 0, "seconds": 0.0, "loss": None}
        if steps is None and seconds is None:
            raise ValueError("give steps or seconds")
        started = time.perf_counter()
        parameters = self.trainable_parameters()
        if self._optimizer is None:
            self._optimizer = torch.optim.Adam(parameters, lr=lr)
        for group in self._optimizer.param_groups:
            group["lr"] = lr
        targets = {i: torch.from_numpy(_resize_mask(m, self.size).astype(np.float32)).to(self.device)
                   for i, m in labels.items()}
        frames = sorted(labels)
        done, losses = 0, []
        self.model.eval()  # see the module docstring: fixed statistics, no dropout
        while True:
            self._optimizer.zero_grad(set_to_none=True)
            total = 0.0
            for _ in range(clips_per_step):
                target = frames[int(self._rng.integers(len(frames)))]
                clip = self.clips_of[target][int(self._rng.integers(len(self.clips_of[target])))]
                prompts = self._training_prompts(clip, labels, target)
                with self._autocast():
                    logits = self.clip_logits(clip, prompts)  # (T, h, w)
                positions = [k for k, i in enumerate(self.schedule[clip]) if i in targets]
                predicted = logits[positions][:, None]
                truth = torch.stack([targets[self.schedule[clip][k]] for k in positions])[:, None]
                loss = structure_loss(predicted, truth) / clips_per_step
                loss.backward()
                total += float(loss.detach())
            self._optimizer.step()
            done += 1
            losses.append(total)
            elapsed = time.perf_counter() - started
            if (steps is not None and done >= steps) or (seconds is not None and elapsed >= seconds) or (
                    cancel is not None and cancel()):
                break
        self.adapted_steps += done
        return {"steps": done, "seconds": time.perf_counter() - started, "loss": float(np.mean(losses[-5:]))}


def _resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    mask = np.asarray(mask, dtype=bool)
    if mask.shape == tuple(size):
        return mask
    return cv2.resize(mask.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_AREA) >= 0.5


def _prompt_to_native(prompt: FramePrompt, size: tuple[int, int], native: tuple[int, int]) -> FramePrompt:
    """A prompt drawn at the model size, in native pixel coordinates."""
    if tuple(size) == tuple(native):
        return prompt
    sy, sx = native[0] / size[0], native[1] / size[1]
    scale = lambda points: tuple(((x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5) for x, y in points)  # noqa: E731
    rough = None if prompt.rough_mask is None else _resize_mask(prompt.rough_mask, native)
    return FramePrompt(scale(prompt.positive), scale(prompt.negative), rough)
