"""The training objective: L = w_seg * L_seg + w_affine * L_affine + w_bce * L_bce_boundary (1, 0.3, 0.3).

    criterion = VivimLoss(LossWeights(), prior=load_affine_prior())
    terms = criterion(output.mask_logits, output.boundary_logits, masks)   # masks (B, T, 1, H, W)
    terms.total.backward(); terms.as_floats()  # {'loss': ..., 'seg': ..., 'affine': ..., 'boundary': ...}

`boundary_loss=False` (ablations basic, c1-c3) keeps only L_seg; the boundary head then gets no gradient.
`supervised_frames="centre"` scores only each clip's centre frame (position T // 2), as the official code trains;
"all" (ours) scores every frame. `weighted_bce=False` is the official code's unweighted BCE (`structure_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .affine import AffineBoundaryLoss
from .affine_prior import AffinePrior
from .boundary import boundary_bce, sobel_boundary
from .segmentation import structure_loss

SUPERVISED_FRAMES = ("all", "centre")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the three terms (the paper's lambda_1 = lambda_2 = 0.3)."""

    seg: float = 1.0
    affine: float = 0.3
    boundary: float = 0.3


class LossTerms(NamedTuple):
    total: Tensor  # the weighted sum (backpropagate this)
    seg: Tensor  # unweighted terms, detached
    affine: Tensor
    boundary: Tensor

    def as_floats(self) -> dict[str, float]:
        return {"loss": float(self.total.detach()), "seg": float(self.seg), "affine": float(self.affine),
                "boundary": float(self.boundary)}


class VivimLoss(nn.Module):
    """The weighted sum of the structure loss and the two boundary-aware terms.

    forward(mask_logits (B, T, 1, H, W), boundary_logits (B, T, 1, H, W), masks (B, T, 1, H, W) {0, 1}).
    `prior` is needed when `boundary_loss` and `weights.affine > 0`.
    """

    def __init__(self, weights: LossWeights = LossWeights(), prior: AffinePrior | None = None,
                 boundary_loss: bool = True, boundary_pos_weight: float | None = None,
                 supervised_frames: str = "all", weighted_bce: bool = True):
        super().__init__()
        if supervised_frames not in SUPERVISED_FRAMES:
            raise ValueError(f"supervised_frames {supervised_frames!r}: choose one of {SUPERVISED_FRAMES}")
        self.supervised_frames = supervised_frames
        self.weighted_bce = bool(weighted_bce)
        self.weights = weights
        self.boundary_loss = bool(boundary_loss)
        self.boundary_pos_weight = boundary_pos_weight
        self.use_affine = self.boundary_loss and weights.affine > 0
        if self.use_affine and prior is None:
            raise ValueError("VivimLoss needs the affine prior when the affine term is on (load_affine_prior())")
        self.affine = AffineBoundaryLoss(prior) if self.use_affine else None

    def forward(self, mask_logits: Tensor, boundary_logits: Tensor, masks: Tensor) -> LossTerms:
        if self.supervised_frames == "centre":  # (B, T, ...) -> (B, 1, ...)
            centre = slice(mask_logits.shape[1] // 2, mask_logits.shape[1] // 2 + 1)
            mask_logits, boundary_logits, masks = mask_logits[:, centre], boundary_logits[:, centre], masks[:, centre]
        seg = structure_loss(mask_logits, masks, weighted_bce=self.weighted_bce)
        zero = seg.new_zeros(())
        if not self.boundary_loss:
            return LossTerms(self.weights.seg * seg, seg.detach(), zero, zero)
        target = sobel_boundary(masks)
        bce = boundary_bce(boundary_logits, target, self.boundary_pos_weight)
        affine = self.affine(torch.sigmoid(boundary_logits.float()), target) if self.use_affine else zero
        total = self.weights.seg * seg + self.weights.boundary * bce
        if self.use_affine:
            total = total + self.weights.affine * affine
        return LossTerms(total, seg.detach(), affine.detach(), bce.detach())
