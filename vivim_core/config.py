"""Model configuration: one frozen dataclass and a registry of named variants.

Nothing here imports torch, so the CLI can list variants and print `--help` instantly.

The paper's ablations are config switches (see `ABLATIONS`):

=========  ============================================  ==============================
name       temporal Mamba blocks                         boundary loss (training side)
=========  ============================================  ==============================
basic      none (plain SegFormer-style transformer)      off
c1         forward scan only                             off
c2         forward + backward scans                      off
c3         forward + backward + spatial scans            off
full       forward + backward + spatial scans            on
=========  ============================================  ==============================

The boundary loss is a training option (`vivim_core.engine.train_config.TrainConfig`); the boundary *head*
always exists so every variant has the same outputs.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import VivimError

SCAN_BRANCHES = ("forward", "backward", "spatial")
PROMPT_CHANNELS = 4  # positive clicks, negative clicks, rough mask, rough-mask-present (vivim_core.prompts)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ConfigError(VivimError, ValueError):
    """A model configuration that cannot be built (unknown variant, bad field, inconsistent shapes)."""


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a Vivim model. Stored as JSON in every checkpoint.

    Per-stage tuples have one entry per encoder stage (strides 4, 8, 16, 32).
    """

    variant: str = "custom"
    in_channels: int = 3
    num_classes: int = 1
    # Hierarchical encoder (SegFormer / MiT naming).
    embed_dims: tuple[int, ...] = (64, 128, 320, 512)
    transformer_depths: tuple[int, ...] = (3, 4, 18, 3)
    num_heads: tuple[int, ...] = (1, 2, 5, 8)
    sequence_reduction_ratios: tuple[int, ...] = (8, 4, 2, 1)
    mlp_ratios: tuple[int, ...] = (4, 4, 4, 4)
    # Temporal Mamba blocks after the transformer blocks of each stage.
    temporal_depths: tuple[int, ...] = (2, 2, 2, 2)
    scan_branches: tuple[str, ...] = SCAN_BRANCHES
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dsf_ratio: int = 4
    # Decoder.
    decoder_dim: int = 768
    boundary_head_dim: int = 64
    # Prompt inputs (clicks and a rough mask, see `vivim_core.prompts`); 0: an image-only model.
    prompt_channels: int = 0
    # Regularisation.
    drop_path_rate: float = 0.1
    decoder_dropout: float = 0.1
    # Input normalisation the model expects (applied by the data pipeline, stored for inference).
    input_mean: tuple[float, ...] = IMAGENET_MEAN
    input_std: tuple[float, ...] = IMAGENET_STD

    def __post_init__(self) -> None:
        n = len(self.embed_dims)
        per_stage = {
            "transformer_depths": self.transformer_depths,
            "num_heads": self.num_heads,
            "sequence_reduction_ratios": self.sequence_reduction_ratios,
            "mlp_ratios": self.mlp_ratios,
            "temporal_depths": self.temporal_depths,
        }
        for name, value in per_stage.items():
            if len(value) != n:
                raise ConfigError(f"{name} has {len(value)} entries but embed_dims has {n}; give one per stage")
        for dim, heads in zip(self.embed_dims, self.num_heads):
            if dim % heads:
                raise ConfigError(f"embed dim {dim} is not divisible by its {heads} attention heads")
        unknown = [b for b in self.scan_branches if b not in SCAN_BRANCHES]
        if unknown:
            raise ConfigError(f"unknown scan branch(es) {unknown}; choose from {SCAN_BRANCHES}")
        if len(set(self.scan_branches)) != len(self.scan_branches):
            raise ConfigError(f"scan_branches lists a branch twice: {self.scan_branches}")
        if self.in_channels < 1 or self.num_classes < 1:
            raise ConfigError("in_channels and num_classes must be at least 1")
        if self.prompt_channels not in (0, PROMPT_CHANNELS):
            raise ConfigError(f"prompt_channels must be 0 (no prompt inputs) or {PROMPT_CHANNELS}, "
                              f"got {self.prompt_channels}")
        if self.prompt_channels and self.num_stages < 3:
            raise ConfigError("prompt inputs enter after the second encoder stage: they need at least 3 stages")

    @property
    def num_stages(self) -> int:
        return len(self.embed_dims)

    @property
    def has_temporal_mamba(self) -> bool:
        return bool(self.scan_branches) and any(d > 0 for d in self.temporal_depths)

    @property
    def output_stride(self) -> int:
        """Input H and W must be divisible by this (4 * 2**(stages-1))."""
        return 4 * 2 ** (self.num_stages - 1)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unknown model config field(s) {unknown}; this vivim-core knows {sorted(known)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"model config is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError("model config JSON must be an object")
        return cls.from_dict(data)

    def replace(self, **overrides: Any) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown model config field(s) {unknown}; valid fields: {sorted(known)}")
        return dataclasses.replace(self, **overrides)


@dataclass(frozen=True)
class VariantInfo:
    config: ModelConfig
    description: str
    aliases: tuple[str, ...] = field(default_factory=tuple)


def _variant(name: str, description: str, **fields: Any) -> VariantInfo:
    return VariantInfo(ModelConfig(variant=name, **fields), description)


VARIANTS: dict[str, VariantInfo] = {
    v.config.variant: v
    for v in (
        _variant(
            "vivim-tiny",
            "MiT-B0 widths, 1 Temporal Mamba block per stage: trains and infers on a laptop CPU",
            embed_dims=(32, 64, 160, 256),
            transformer_depths=(2, 2, 2, 2),
            num_heads=(1, 2, 5, 8),
            temporal_depths=(1, 1, 1, 1),
            decoder_dim=256,
            boundary_head_dim=32,
        ),
        _variant(
            "vivim-b1",
            "MiT-B1 widths, 2 Temporal Mamba blocks per stage: a mid-size workstation model",
            embed_dims=(64, 128, 320, 512),
            transformer_depths=(2, 2, 2, 2),
            temporal_depths=(2, 2, 2, 2),
            decoder_dim=256,
        ),
        _variant(
            "vivim-b3",
            "the paper's model: MiT-B3 widths (64,128,320,512), depths (3,4,18,3), 2 Temporal Mamba "
            "blocks per stage, decoder width 768",
        ),
    )
}

# The paper's ablation switches (Table III). Apply with `build_model(variant, **ABLATIONS[name])`.
ABLATIONS: dict[str, dict[str, Any]] = {
    "basic": {"scan_branches": ()},
    "c1": {"scan_branches": ("forward",)},
    "c2": {"scan_branches": ("forward", "backward")},
    "c3": {"scan_branches": SCAN_BRANCHES},
    "full": {"scan_branches": SCAN_BRANCHES},
}
# Whether the ablation trains with the boundary-aware losses (read by the training code).
ABLATION_USES_BOUNDARY_LOSS = {"basic": False, "c1": False, "c2": False, "c3": False, "full": True}


def variant_names() -> list[str]:
    return sorted(VARIANTS)


def get_config(variant: str | ModelConfig, **overrides: Any) -> ModelConfig:
    """The config of a named variant (or a config as given), with field overrides applied.

    Raises ConfigError naming the known variants when `variant` is unknown.
    """
    if isinstance(variant, ModelConfig):
        base = variant
    else:
        name = variant.lower()
        if name not in VARIANTS:
            raise ConfigError(f"unknown variant {variant!r}; known variants: {', '.join(variant_names())}")
        base = VARIANTS[name].config
    return base.replace(**overrides) if overrides else base
