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
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import VivimError

SCAN_BRANCHES = ("forward", "backward", "spatial")
# Where each encoder stage applies its LayerNorm: after its Temporal Mamba blocks (ours), after its transformer
# blocks and before the Temporal Mamba blocks (where the official code's disabled line stands), or never (the
# released official model). See `vivim_core.official`.
STAGE_NORMS = ("after_temporal", "before_temporal", "none")
# The boundary head: three conv layers (ours) or one 1x1 conv (the official `edgeocr_cls_head`).
BOUNDARY_HEADS = ("three_layer", "conv1x1")
PROMPT_CHANNELS = 4  # positive clicks, negative clicks, rough mask, rough-mask-present (vivim_core.prompts)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# Bounds of every field. A checkpoint's config is untrusted input: these keep a file from asking for absurd
# shapes or terabytes of memory. They are far above any useful Vivim (vivim-b3: widths <= 512, 18 blocks).
MAX_STAGES = 6
MAX_PARAMETERS = 2_000_000_000
MAX_ACTIVATION_BYTES_PER_FRAME = 8 * 2**30  # the widest activation of one 256x256 frame, float32
MAX_VARIANT_LENGTH = 64
_INT_BOUNDS = {"in_channels": (1, 16), "num_classes": (1, 1024), "d_state": (1, 256), "d_conv": (1, 16),
               "expand": (1, 16), "dsf_ratio": (1, 64), "decoder_dim": (1, 8192), "boundary_head_dim": (1, 4096)}
_STAGE_BOUNDS = {"embed_dims": (1, 8192), "transformer_depths": (0, 256), "num_heads": (1, 256),
                 "sequence_reduction_ratios": (1, 64), "mlp_ratios": (1, 64), "temporal_depths": (0, 256)}
_RATE_FIELDS = ("drop_path_rate", "decoder_dropout")  # probabilities in [0, 1)
_NORMALISATION_FIELDS = ("input_mean", "input_std")


class ConfigError(VivimError, ValueError):
    """A model configuration that cannot be built (unknown variant, bad field, inconsistent shapes)."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)


def _check_schema(config: "ModelConfig") -> None:
    """Types and ranges of every field (ConfigError naming the field), before anything uses a value."""
    variant = config.variant
    if not isinstance(variant, str) or not 0 < len(variant) <= MAX_VARIANT_LENGTH or not variant.isprintable():
        raise ConfigError(f"variant {variant!r}: give a name of 1 to {MAX_VARIANT_LENGTH} printable characters")
    for name, (low, high) in _INT_BOUNDS.items():
        value = getattr(config, name)
        if not _is_int(value) or not low <= value <= high:
            raise ConfigError(f"{name} {value!r}: must be an integer from {low} to {high}")
    for name, (low, high) in _STAGE_BOUNDS.items():
        values = getattr(config, name)
        if not isinstance(values, tuple) or not 1 <= len(values) <= MAX_STAGES:
            raise ConfigError(f"{name} {values!r}: must be a list of 1 to {MAX_STAGES} integers, one per stage "
                              f"(more stages than {MAX_STAGES} are refused)")
        if not all(_is_int(v) and low <= v <= high for v in values):
            raise ConfigError(f"{name} {list(values)!r}: each entry must be an integer from {low} to {high}")
    for name in _RATE_FIELDS:
        value = getattr(config, name)
        if not _is_number(value) or not 0 <= value < 1:
            raise ConfigError(f"{name} {value!r}: must be a number in [0, 1)")
    for name in _NORMALISATION_FIELDS:
        values = getattr(config, name)
        if not isinstance(values, tuple) or not all(_is_number(v) and abs(v) <= 1e3 for v in values):
            raise ConfigError(f"{name} {values!r}: must be a list of finite numbers, one per input channel")
    if not all(v > 0 for v in config.input_std):
        raise ConfigError(f"input_std {list(config.input_std)!r}: every entry must be > 0")
    if not isinstance(config.scan_branches, tuple) or not all(isinstance(b, str) for b in config.scan_branches):
        raise ConfigError(f"scan_branches {config.scan_branches!r}: must be a list of names from {SCAN_BRANCHES}")


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
    boundary_head: str = "three_layer"  # one of BOUNDARY_HEADS
    boundary_head_dim: int = 64  # hidden width of the three-layer head
    stage_norm: str = "after_temporal"  # one of STAGE_NORMS
    # Prompt inputs (clicks and a rough mask, see `vivim_core.prompts`); 0: an image-only model.
    prompt_channels: int = 0
    # Regularisation.
    drop_path_rate: float = 0.1
    decoder_dropout: float = 0.1
    # Input normalisation the model expects (applied by the data pipeline, stored for inference).
    input_mean: tuple[float, ...] = IMAGENET_MEAN
    input_std: tuple[float, ...] = IMAGENET_STD

    def __post_init__(self) -> None:
        _check_schema(self)
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
        if self.prompt_channels not in (0, PROMPT_CHANNELS):
            raise ConfigError(f"prompt_channels must be 0 (no prompt inputs) or {PROMPT_CHANNELS}, "
                              f"got {self.prompt_channels}")
        if self.prompt_channels and self.num_stages < 3:
            raise ConfigError("prompt inputs enter after the second encoder stage: they need at least 3 stages")
        if self.stage_norm not in STAGE_NORMS:
            raise ConfigError(f"stage_norm {self.stage_norm!r}: choose one of {STAGE_NORMS}")
        if self.boundary_head not in BOUNDARY_HEADS:
            raise ConfigError(f"boundary_head {self.boundary_head!r}: choose one of {BOUNDARY_HEADS}")
        for name in ("input_mean", "input_std"):
            if len(getattr(self, name)) != self.in_channels:
                raise ConfigError(f"{name} has {len(getattr(self, name))} entries for {self.in_channels} input "
                                  f"channels; give one per channel")
        parameters = estimated_parameters(self)
        if parameters > MAX_PARAMETERS:
            raise ConfigError(f"this model would have {parameters:,} parameters, more than the {MAX_PARAMETERS:,} "
                              f"accepted (vivim-b3 has about 60 million): a config this large is a mistake or an "
                              f"altered file")
        activation = activation_bytes_per_frame(self)
        if activation > MAX_ACTIVATION_BYTES_PER_FRAME:
            raise ConfigError(f"this model would need about {activation / 2**30:.0f} GiB of activation memory for "
                              f"one 256x256 frame, more than the {MAX_ACTIVATION_BYTES_PER_FRAME / 2**30:.0f} GiB "
                              f"accepted (vivim-b3 needs well under 0.1 GiB): a config this wide is a mistake or "
                              f"an altered file")

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


def estimated_parameters(config: ModelConfig) -> int:
    """The number of parameters of a Vivim of this config, computed from the shapes alone (no torch, nothing
    allocated); equal to counting a built model's parameters (tests check it)."""
    total, in_dim = 0, config.in_channels
    temporal_on = bool(config.scan_branches)
    for i, dim in enumerate(config.embed_dims):
        patch = 7 if i == 0 else 3
        total += in_dim * dim * patch * patch + dim + 2 * dim  # patch embedding conv + its LayerNorm
        ratio, hidden = config.sequence_reduction_ratios[i], dim * config.mlp_ratios[i]
        block = 2 * dim + 4 * (dim * dim + dim) + 2 * dim  # two LayerNorms, query/key/value/proj
        block += (dim * dim * ratio * ratio + dim + 2 * dim) if ratio > 1 else 0  # sequence reduction conv + norm
        block += dim * hidden + hidden + 10 * hidden + hidden * dim + dim  # Mix-FFN: dense, 3x3 depthwise, dense
        total += config.transformer_depths[i] * block
        if temporal_on:
            inner, rank = config.expand * dim, -(-dim // 16)
            branch = inner * (config.d_conv + 1) + inner * (rank + 2 * config.d_state) + rank * inner + inner
            branch += inner * config.d_state + inner  # A_log, D
            mamba = dim * 2 * inner + len(config.scan_branches) * branch + inner * dim
            dsf_hidden = dim * config.dsf_ratio
            dsf = dim * dsf_hidden + dsf_hidden + 28 * dsf_hidden + dsf_hidden * dim + dim
            total += config.temporal_depths[i] * (4 * dim + mamba + dsf)
        total += 2 * dim  # the stage's LayerNorm
        in_dim = dim
    decoder = config.decoder_dim
    total += sum(c * decoder + decoder for c in config.embed_dims) + decoder * decoder * config.num_stages
    total += 2 * decoder + decoder * config.num_classes + config.num_classes
    head = config.boundary_head_dim
    total += config.embed_dims[0] * head * 9 + 2 * head + head * head * 9 + 2 * head + head + 1
    return total


def activation_bytes_per_frame(config: ModelConfig, height: int = 256, width: int = 256) -> int:
    """A rough size (float32 bytes) of the widest single activation one frame of height x width produces:
    the Mix-FFN and DSF hidden maps, the attention matrix, the Mamba scan's states, the decoder's maps. Used to
    refuse configs that could never run, not to plan memory."""
    widest = (height // 4) * (width // 4) * (config.decoder_dim + config.boundary_head_dim)
    for i, dim in enumerate(config.embed_dims):
        tokens = max(1, (height // (4 * 2 ** i)) * (width // (4 * 2 ** i)))
        ratio = config.sequence_reduction_ratios[i]
        attention = config.num_heads[i] * tokens * max(1, tokens // (ratio * ratio))
        channels = dim * max(config.mlp_ratios[i], config.dsf_ratio, 2 * config.expand * config.d_state)
        widest = max(widest, tokens * channels, attention)
    return 4 * widest


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

