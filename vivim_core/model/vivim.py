"""Vivim: hierarchical encoder with Temporal Mamba blocks, SegFormer MLP decoder, boundary head.

    clip (B, T, 3, H, W), ImageNet-normalised  ->  VivimOutput(mask_logits, boundary_logits),
    both (B, T, 1, H, W) (num_classes channels for the mask). H and W must be divisible by 32.

A model with prompt inputs (`config.prompt_channels`) also takes prompts (B, T, P, H, W) rendered by
`vivim_core.prompts` (None: no prompt on any frame). They enter after `PROMPT_ENTRY_STAGES` stages
(`prompt_layers`), so `image_features` (the first stages, images only) can be computed once per frame and
`decode` re-run for every new click.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig, get_config
from .decoder import BoundaryHead, MLPDecoder
from .encoder import OverlapPatchEmbed, TransformerBlock
from .layers import init_weights, stochastic_depth_rates, tokens_to_map
from .prompt_layers import PromptRefiner, PromptStem, rough_mask_logits
from .temporal_mamba import SpatioTemporalMamba, TemporalMambaBlock

PROMPT_ENTRY_STAGES = 2  # prompts are added to the output of this many encoder stages


class VivimOutput(NamedTuple):
    mask_logits: Tensor  # (B, T, num_classes, H, W)
    boundary_logits: Tensor  # (B, T, 1, H, W)


class EncoderStage(nn.Module):
    """Patch embedding -> per-frame transformer blocks -> Temporal Mamba blocks over the clip -> LayerNorm.

    forward((B*T, C_in, H_in, W_in), T) -> (B*T, C, H, W), H = H_in / stride.
    """

    def __init__(self, config: ModelConfig, index: int, in_dim: int, drop_paths: list[float],
                 temporal_drop_paths: list[float]):
        super().__init__()
        dim = config.embed_dims[index]
        patch, stride = (7, 4) if index == 0 else (3, 2)
        self.patch_embed = OverlapPatchEmbed(in_dim, dim, patch, stride)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, config.num_heads[index], config.sequence_reduction_ratios[index],
                             config.mlp_ratios[index], rate)
            for rate in drop_paths
        )
        temporal = config.temporal_depths[index] if config.scan_branches else 0
        self.temporal_blocks = nn.ModuleList(
            TemporalMambaBlock(dim, config.scan_branches, config.d_state, config.d_conv, config.expand,
                               config.dsf_ratio, rate)
            for rate in temporal_drop_paths[:temporal]
        )
        self.layer_norm = nn.LayerNorm(dim)

    def forward(self, frames: Tensor, clip_length: int, added: Tensor | None = None) -> Tensor:
        """added: (B*T, C_in, H_in, W_in) features summed with the input first (the prompt features)."""
        if added is not None:
            frames = frames + added.to(frames.dtype)
        tokens, height, width = self.patch_embed(frames)  # (B*T, H*W, C)
        for block in self.blocks:
            tokens = block(tokens, height, width)
        if len(self.temporal_blocks):
            bt, hw, c = tokens.shape
            clip = tokens.reshape(bt // clip_length, clip_length * hw, c)  # (B, T*H*W, C), (T, H, W) order
            for block in self.temporal_blocks:
                clip = block(clip, (clip_length, height, width))
            tokens = clip.reshape(bt, hw, c)
        return tokens_to_map(self.layer_norm(tokens), height, width)


class Vivim(nn.Module):
    """The Vivim video segmentation model, built from a `ModelConfig`."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        rates = iter(stochastic_depth_rates(sum(config.transformer_depths), config.drop_path_rate))
        temporal_rates = iter(stochastic_depth_rates(sum(config.temporal_depths), config.drop_path_rate))
        stages, in_dim = [], config.in_channels
        for i, dim in enumerate(config.embed_dims):
            stages.append(EncoderStage(
                config, i, in_dim,
                [next(rates) for _ in range(config.transformer_depths[i])],
                [next(temporal_rates) for _ in range(config.temporal_depths[i])],
            ))
            in_dim = dim
        self.stages = nn.ModuleList(stages)
        self.decoder = MLPDecoder(config.embed_dims, config.decoder_dim, config.num_classes, config.decoder_dropout)
        self.boundary_head = BoundaryHead(config.embed_dims[0], config.boundary_head_dim)
        if config.prompt_channels:
            self.prompt_stem = PromptStem(config.prompt_channels, config.embed_dims[PROMPT_ENTRY_STAGES - 1])
            self.prompt_refiner = PromptRefiner(config.decoder_dim, config.prompt_channels)
        init_weights(self, keep=(SpatioTemporalMamba, PromptStem, PromptRefiner))
        # Output layers start near zero (as SegFormer/mmseg do): the fan-out init of a 1x1 conv to one channel
        # has std 1.4 and starts training from saturated +-20 logits (a loss of ~16 instead of ~1.4).
        for head in (self.decoder.classifier, self.boundary_head.layers[-1]):
            nn.init.normal_(head.weight, std=0.01)
            nn.init.zeros_(head.bias)

    def check_input(self, clip: Tensor, prompts: Tensor | None = None) -> None:
        """Raise ValueError explaining what is wrong with a clip's (and its prompts') shape."""
        if clip.dim() != 5:
            raise ValueError(f"Vivim expects a clip of shape (B, T, {self.config.in_channels}, H, W); "
                             f"got a tensor of shape {tuple(clip.shape)}")
        _, t, c, h, w = clip.shape
        stride = self.config.output_stride
        if c != self.config.in_channels:
            raise ValueError(f"Vivim ({self.config.variant}) expects {self.config.in_channels} channels per frame, "
                             f"got {c} (clip shape {tuple(clip.shape)})")
        if t < 1:
            raise ValueError("Vivim needs at least one frame per clip (T >= 1)")
        if h % stride or w % stride or h == 0 or w == 0:
            raise ValueError(f"frame size {h}x{w} is not divisible by {stride}; resize or pad frames to a multiple "
                             f"of {stride} (e.g. {max(stride, round(h / stride) * stride)}x"
                             f"{max(stride, round(w / stride) * stride)})")
        if prompts is not None:
            expected = (*clip.shape[:2], self.config.prompt_channels, h, w)
            if not self.config.prompt_channels:
                raise ValueError(f"this {self.config.variant} model has no prompt inputs; pass prompts=None")
            if tuple(prompts.shape) != expected:
                raise ValueError(f"prompts must have shape {expected} for this clip, got {tuple(prompts.shape)}")

    @property
    def accepts_prompts(self) -> bool:
        return bool(self.config.prompt_channels)

    def image_features(self, clip: Tensor) -> list[Tensor]:
        """The first PROMPT_ENTRY_STAGES stages' features, which depend on the images only:
        [(B*T, C_i, H/2^(i+2), W/2^(i+2))]. Feed them to `decode` with any prompts."""
        self.check_input(clip)
        b, t, c, h, w = clip.shape
        x = clip.reshape(b * t, c, h, w)
        features = []
        for stage in self.stages[:PROMPT_ENTRY_STAGES]:
            x = stage(x, t)
            features.append(x)
        return features

    def decode(self, image_features: list[Tensor], clip_length: int, size: tuple[int, int],
               prompts: Tensor | None = None) -> VivimOutput:
        """The rest of the model from `image_features` of (B, clip_length) frames of `size` (H, W), with
        prompts (B, T, P, H, W) or None."""
        features = list(image_features)
        h, w = size
        flat_prompts = None
        if self.config.prompt_channels:
            bt = features[0].shape[0]
            if prompts is None:
                flat_prompts = features[0].new_zeros((bt, self.config.prompt_channels, h, w))
            else:
                flat_prompts = prompts.reshape(bt, self.config.prompt_channels, h, w).to(features[0].dtype)
        x = features[-1]
        for i, stage in enumerate(self.stages[PROMPT_ENTRY_STAGES:]):
            added = self.prompt_stem(flat_prompts) if (i == 0 and flat_prompts is not None) else None
            x = stage(x, clip_length, added)
            features.append(x)
        logits, hidden = self.decoder.forward_with_hidden(features)
        if flat_prompts is None:
            mask = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        else:  # the correction applies to the rough mask where one is given, else to the model's own logits
            correction = self.prompt_refiner(hidden, logits, flat_prompts)
            mask = F.interpolate(torch.cat([logits + correction, correction]), size=(h, w), mode="bilinear",
                                 align_corners=False)
            own, corrected_rough = mask.chunk(2)
            rough, given = rough_mask_logits(flat_prompts.to(mask.dtype))
            mask = own + given * (rough + corrected_rough - own)
        boundary = F.interpolate(self.boundary_head(features[0]), size=(h, w), mode="bilinear", align_corners=False)
        b = mask.shape[0] // clip_length
        return VivimOutput(mask.reshape(b, clip_length, -1, h, w), boundary.reshape(b, clip_length, 1, h, w))

    def forward_features(self, clip: Tensor) -> list[Tensor]:
        """Encoder features per stage (no prompts): [(B*T, C_i, H/2^(i+2), W/2^(i+2))]."""
        features = self.image_features(clip)
        x = features[-1]
        for stage in self.stages[PROMPT_ENTRY_STAGES:]:
            x = stage(x, clip.shape[1])
            features.append(x)
        return features

    def forward(self, clip: Tensor, prompts: Tensor | None = None) -> VivimOutput:
        self.check_input(clip, prompts)
        return self.decode(self.image_features(clip), clip.shape[1], clip.shape[-2:], prompts)


def build_model(variant: str | ModelConfig = "vivim-tiny", **overrides: Any) -> Vivim:
    """A freshly initialised Vivim of a named variant (see `vivim_core.config.VARIANTS`), with config overrides.

    >>> model = build_model("vivim-b3", scan_branches=("forward",))   # the paper's C1 ablation
    """
    return Vivim(get_config(variant, **overrides))


def add_prompt_inputs(model: Vivim) -> Vivim:
    """A copy of `model` with prompt inputs (`PROMPT_CHANNELS`), computing exactly the same function until it
    is trained with prompts (the new layers start at zero). A model that has them is returned as it is."""
    if model.config.prompt_channels:
        return model
    from ..config import PROMPT_CHANNELS

    prompted = Vivim(model.config.replace(prompt_channels=PROMPT_CHANNELS))
    missing, unexpected = prompted.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not name.startswith(("prompt_stem.", "prompt_refiner.")) for name in missing):
        raise RuntimeError(f"prompt inputs could not be added: missing {missing}, unexpected {unexpected}")
    parameter = next(model.parameters())
    return prompted.to(device=parameter.device, dtype=parameter.dtype).train(model.training)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
