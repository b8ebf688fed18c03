"""`TrainConfig`: every setting of a training or fine-tuning run (frozen; stored as JSON in the run folder).

Torch-free, so the CLI can build and validate it before importing torch. Defaults are the paper's
(Adam, lr 1e-4 cosine to 1e-6, batch 4 clips x 5 frames, 256x256, 100 epochs, loss weights 1 / 0.3 / 0.3);
`finetune_config()` gives the few-frame fine-tuning defaults.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

from ..checkpoint_header import MAX_CLIP_LENGTH, MAX_TRAIN_SIDE
from ..config import ABLATION_USES_BOUNDARY_LOSS, ABLATIONS
from ..errors import VivimError
from ..file_safety import safe_name

VAL_MODES = ("auto", "videos", "frames", "train", "none")
# Fields a resumed run may change (how long / how often), everything else must match the stored config.
RESUMABLE_OVERRIDES = {"epochs", "max_steps", "max_minutes", "early_stop_patience", "eval_every", "num_workers",
                       "device", "log_every"}


class TrainConfigError(VivimError, ValueError):
    """A training setting that cannot work (the message names the setting and a valid value)."""


# Each field's type (a stored config.json is read back on --resume and must not be trusted blindly).
_INTS = ("freeze_stages", "epochs", "batch_size", "clip_length", "clip_stride", "warmup_steps", "num_workers",
         "seed", "log_every")
_OPTIONAL_INTS = ("max_steps", "clips_per_video", "eval_every", "early_stop_patience")
_NUMBERS = ("lr", "min_lr", "weight_decay", "seg_weight", "affine_weight", "boundary_weight", "val_fraction")
_OPTIONAL_NUMBERS = ("max_minutes", "grad_clip")
_BOOLS = ("augment", "amp")
_TEXTS = ("variant", "ablation", "split", "val_mode", "device")
_OPTIONAL_TEXTS = ("init_segformer", "affine_prior")
_UPPER_BOUNDS = {"epochs": 10**6, "max_steps": 10**9, "batch_size": 4096, "clip_length": MAX_CLIP_LENGTH,
                 "clip_stride": 1000, "clips_per_video": 10**6, "warmup_steps": 10**9, "num_workers": 256,
                 "eval_every": 10**9, "early_stop_patience": 10**6, "log_every": 10**9, "freeze_stages": 4}


def _check_types(config: "TrainConfig") -> None:
    def fail(name: str, wanted: str) -> None:
        raise TrainConfigError(f"{name} {getattr(config, name)!r}: must be {wanted}")

    def is_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def is_number(value: Any) -> bool:
        return (is_int(value) or isinstance(value, float)) and math.isfinite(value)

    for name in _INTS + _OPTIONAL_INTS:
        value = getattr(config, name)
        if not (is_int(value) or (value is None and name in _OPTIONAL_INTS)):
            fail(name, "an integer")
    for name in _NUMBERS + _OPTIONAL_NUMBERS:
        value = getattr(config, name)
        if not (is_number(value) or (value is None and name in _OPTIONAL_NUMBERS)):
            fail(name, "a finite number")
    for name in _BOOLS:
        if not isinstance(getattr(config, name), bool):
            fail(name, "true or false")
    if config.boundary_loss is not None and not isinstance(config.boundary_loss, bool):
        fail("boundary_loss", "true, false or null")
    for name in _TEXTS + _OPTIONAL_TEXTS:
        value = getattr(config, name)
        if not ((isinstance(value, str) and len(value) <= 4096) or (value is None and name in _OPTIONAL_TEXTS)):
            fail(name, "a text")
    if not isinstance(config.size, (tuple, list)) or not all(is_int(v) for v in config.size):
        fail("size", "[height, width], two integers")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a run. `boundary_loss=None` follows the ablation (on only for `full`)."""

    # model
    variant: str = "vivim-tiny"
    ablation: str = "full"  # basic | c1 | c2 | c3 | full (model switches + whether the boundary loss is on)
    init_segformer: str | None = None  # local Hugging Face SegFormer checkpoint for the encoder/decoder
    freeze_stages: int = 0  # encoder stages kept fixed, from the input side (0..4): less to learn, faster steps
    prompt_inputs: bool = False  # give the model click / rough-mask inputs (a checkpoint without them gets them)
    # schedule
    epochs: int = 100
    max_steps: int | None = None  # when set, the run stops after this many optimizer steps (overrides epochs)
    max_minutes: float | None = None  # wall-clock budget; the run stops (and keeps best/last) when spent
    batch_size: int = 4  # clips per optimizer step (per process under DDP)
    clip_length: int = 5
    clip_stride: int = 1  # frame step inside a training clip
    clips_per_video: int | None = None  # None: every window; k: k evenly spaced windows per video
    size: tuple[int, int] = (256, 256)  # (height, width), multiples of 32
    lr: float = 1e-4
    min_lr: float = 1e-6  # cosine schedule from lr down to min_lr over the run
    warmup_steps: int = 0
    weight_decay: float = 0.0  # > 0: decoupled (AdamW) on weight matrices only, never on norms, biases, Mamba A/D
    grad_clip: float | None = 1.0  # max global gradient norm (None: off)
    # loss
    seg_weight: float = 1.0
    affine_weight: float = 0.3
    boundary_weight: float = 0.3
    boundary_loss: bool | None = None
    affine_prior: str | None = None  # None: the bundled resources/affine_prior.safetensors
    supervised_frames: str = "all"  # all | centre (the official code scores only each clip's centre frame)
    weighted_bce: bool = True  # False: the official code's structure loss, whose BCE ignores the boundary weight
    # data
    split: str = "Train"  # VTUS split folder read for training (ROOT/<split>, ROOT/<split>_GT)
    augment: bool = True
    val_mode: str = "auto"  # auto | videos | frames | train | none | split:<Name> (ROOT/<Name>, ROOT/<Name>_GT)
    val_fraction: float = 0.2
    num_workers: int = 2
    # evaluation and selection
    eval_every: int | None = None  # steps between evaluations; None: once per epoch
    early_stop_patience: int | None = None  # evaluations without a better validation Dice before stopping
    # runtime
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bf16 autocast on CUDA (ignored on the CPU)
    log_every: int = 10  # steps between 'train' progress reports carrying running means

    def __post_init__(self) -> None:
        _check_types(self)
        if self.ablation not in ABLATIONS:
            raise TrainConfigError(f"unknown ablation {self.ablation!r}; choose one of {', '.join(ABLATIONS)}")
        size = tuple(self.size)
        object.__setattr__(self, "size", size)
        if len(size) != 2 or any(s < 32 or s % 32 or s > MAX_TRAIN_SIDE for s in size):
            raise TrainConfigError(f"size {self.size} must be (height, width), each a positive multiple of 32 up to "
                                   f"{MAX_TRAIN_SIDE}")
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "clip_length": self.clip_length,
                    "clip_stride": self.clip_stride, "log_every": self.log_every}
        for name, value in positive.items():
            if value < 1:
                raise TrainConfigError(f"{name} must be >= 1 (got {value})")
        for name, high in _UPPER_BOUNDS.items():
            value = getattr(self, name)
            if value is not None and value > high:
                raise TrainConfigError(f"{name} must be at most {high:,} (got {value:,})")
        safe_name(self.split, "split")
        if self.val_mode.startswith("split:"):
            safe_name(self.val_mode[len("split:"):], "validation split")
        for name in ("max_steps", "eval_every", "early_stop_patience", "clips_per_video"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise TrainConfigError(f"{name} must be >= 1 or None (got {value})")
        if not 0 < self.min_lr <= self.lr:
            raise TrainConfigError(f"need 0 < min_lr <= lr (got lr={self.lr}, min_lr={self.min_lr})")
        if not 0 <= self.val_fraction < 1:
            raise TrainConfigError(f"val_fraction must be in [0, 1) (got {self.val_fraction})")
        if self.val_mode not in VAL_MODES and not self.val_mode.startswith("split:"):
            raise TrainConfigError(f"val_mode {self.val_mode!r}: use one of {', '.join(VAL_MODES)} or split:<Name>")
        if min(self.seg_weight, self.affine_weight, self.boundary_weight, self.weight_decay) < 0:
            raise TrainConfigError("loss weights and weight_decay must be >= 0")
        if self.device.split(":")[0] not in ("auto", "cpu", "cuda"):
            raise TrainConfigError(f"device {self.device!r}: use auto, cpu or cuda")
        if not 0 <= self.freeze_stages <= 4:
            raise TrainConfigError(f"freeze_stages must be 0..4, the encoder's stages (got {self.freeze_stages})")
        if self.supervised_frames not in ("all", "centre"):
            raise TrainConfigError(f"supervised_frames {self.supervised_frames!r}: use all or centre")
        if self.num_workers < 0 or self.warmup_steps < 0:
            raise TrainConfigError("num_workers and warmup_steps must be >= 0")

    @property
    def uses_boundary_loss(self) -> bool:
        return ABLATION_USES_BOUNDARY_LOSS[self.ablation] if self.boundary_loss is None else bool(self.boundary_loss)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["size"] = list(self.size)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        if not isinstance(data, Mapping):
            raise TrainConfigError(f"the training settings must be a JSON object, not {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainConfigError(f"unknown training setting(s) {[str(u)[:40] for u in unknown[:5]]}")
        values = dict(data)
        if isinstance(values.get("size"), list):
            values["size"] = tuple(values["size"])
        return cls(**values)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def finetune_config(**overrides: Any) -> TrainConfig:
    """Few-frame fine-tuning defaults (a Studio export with a handful of accepted frames must just work):
    augmentation on, the first 2 encoder stages frozen, 100 steps of 2 clips, lr 2e-4 cosine to 1e-6, validation
    on the accepted frames themselves (no augmentation) every 25 steps, early stop after 4 evaluations without a
    better Dice, no data-loader worker processes (the data is tiny; workers cost more to start than they save).

    Chosen by a sweep on the real sample video with benchmarks/learning_loop.py (5 accepted frames): a slightly
    higher Dice on the other frames than 300 steps at lr 5e-5 with nothing frozen, at a third of the cost (frozen
    stages: no backpropagation through the high-resolution stages)."""
    defaults = dict(max_steps=100, batch_size=2, lr=2e-4, min_lr=1e-6, freeze_stages=2, augment=True,
                    val_mode="train", eval_every=25, early_stop_patience=4, num_workers=0, clips_per_video=8)
    defaults.update(overrides)
    return TrainConfig(**defaults)
