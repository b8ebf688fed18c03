"""The layers through which prompts (clicks and a rough mask, rendered by `vivim_core.prompts`) steer Vivim.

Prompts enter after the second encoder stage, so the two high-resolution stages see images only: their
features can be computed once per frame and reused for every click and every adaptation step
(`Vivim.image_features` / `Vivim.decode`). From there they reach the model twice:

* `PromptStem` turns the prompt maps into stride-8 features added to the second stage's output, so the
  third and fourth stages (their Temporal Mamba blocks included) carry a click on one frame across the clip;
* `PromptRefiner` computes a stride-4 correction from the decoder's features, the prompt maps at stride 4
  and the logits themselves, so a click moves the boundary near it at fine resolution.

The correction is added to the model's own logits, or, on a frame that comes with a rough mask, to that mask
(`rough_mask_logits`, at full resolution): a rough mask is kept as it is unless the model has learnt why to
change it. A model trained on synthetic videos only then never replaces what the expert settled on a real
frame with its own guess; it learns to correct it as it adapts to real frames.

Both layers end in zero-initialised convolutions: a model given prompt inputs computes exactly what it
computed before until it is trained with prompts (`add_prompt_inputs`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


ROUGH_MASK_LOGIT = 4.0  # a rough mask enters as logits of +-4 (p = 0.98 / 0.02): corrections must outweigh it


def rough_mask_logits(prompts: Tensor) -> tuple[Tensor, Tensor]:
    """(logits of the rough mask (N, 1, H, W), whether it is given (N, 1, H, W) in {0, 1}) from prompt maps."""
    return ROUGH_MASK_LOGIT * (2.0 * prompts[:, 2:3] - 1.0), prompts[:, 3:4]


def _zero(conv: nn.Conv2d) -> nn.Conv2d:
    nn.init.zeros_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


class PromptStem(nn.Module):
    """(N, P, H, W) prompt maps -> (N, C, H/8, W/8) features to add to the stride-8 encoder features."""

    def __init__(self, prompt_channels: int, dim: int, hidden: int = 32):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(prompt_channels, hidden // 2, 3, 2, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden // 2, hidden, 3, 2, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, 2, 1), nn.ReLU(inplace=True),
            _zero(nn.Conv2d(hidden, dim, 1)),
        )

    def forward(self, prompts: Tensor) -> Tensor:
        return self.layers(prompts)


class PromptRefiner(nn.Module):
    """A correction of the stride-4 mask logits.

    forward(decoder features (N, D, h, w), logits (N, 1, h, w), prompts (N, P, H, W)) -> correction (N, 1, h, w).
    """

    def __init__(self, decoder_dim: int, prompt_channels: int, hidden: int = 64):
        super().__init__()
        self.reduce = nn.Conv2d(decoder_dim, hidden, 1)
        self.layers = nn.Sequential(
            nn.Conv2d(hidden + prompt_channels + 1, hidden, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, 1, 1), nn.ReLU(inplace=True),
            _zero(nn.Conv2d(hidden, 1, 1)),
        )

    def forward(self, features: Tensor, logits: Tensor, prompts: Tensor) -> Tensor:
        # Area pooling keeps a click's disk visible at stride 4 (a nearest-neighbour subsample could miss it).
        small = F.adaptive_avg_pool2d(prompts, features.shape[-2:]) if prompts.shape[-2:] != features.shape[-2:] \
            else prompts
        x = torch.cat([self.reduce(features), small.to(features.dtype), logits], dim=1)
        return self.layers(x)
