"""Segmentation loss: the weighted BCE + weighted IoU "structure loss" of the reference code (PraNet's).

Pixels near the lesion boundary weigh more: weight = 1 + 5 * |avgpool31(gt) - gt|, which is about 1 far from
the boundary and up to about 3.5 on it (the pooled mask is the local lesion fraction).

The weight applies to both terms as the formula intends (`weighted_bce=True`). The official Vivim code's copy
passes `reduce='none'` to `binary_cross_entropy_with_logits`, a deprecated argument that PyTorch reads as
"reduce to the mean": its BCE is the plain mean and the weighting divides out. `weighted_bce=False` reproduces it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _as_maps(x: Tensor) -> Tensor:
    """(..., 1, H, W) -> (N, 1, H, W) (folds batch and time)."""
    if x.dim() < 3:
        raise ValueError(f"expected maps shaped (..., 1, H, W), got {tuple(x.shape)}")
    return x.reshape(-1, 1, *x.shape[-2:])


def boundary_weight(masks: Tensor, kernel_size: int = 31, strength: float = 5.0) -> Tensor:
    """1 + strength * |avgpool_k(gt) - gt| for masks (N, 1, H, W) in {0, 1} -> (N, 1, H, W).

    Zero padding counts in the average (count_include_pad), exactly as the reference does.
    """
    pooled = F.avg_pool2d(masks, kernel_size, stride=1, padding=kernel_size // 2)
    return 1.0 + strength * (pooled - masks).abs()


def structure_loss(mask_logits: Tensor, masks: Tensor, kernel_size: int = 31, weighted_bce: bool = True) -> Tensor:
    """Weighted BCE + weighted IoU, averaged over frames (`weighted_bce=False`: the BCE is the plain mean over all
    pixels of all frames, as in the official code).

    mask_logits: (..., 1, H, W) raw logits (e.g. (B, T, 1, H, W)); masks: the same shape, {0, 1}.
    Returns a scalar. Computed in float32 whatever the autocast dtype (the IoU ratio needs the range).
    """
    logits = _as_maps(mask_logits).float()
    target = _as_maps(masks).to(logits.dtype)
    if logits.shape != target.shape:
        raise ValueError(f"mask logits {tuple(mask_logits.shape)} and masks {tuple(masks.shape)} differ in shape")
    weight = boundary_weight(target, kernel_size)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if weighted_bce:
        bce = (weight * bce).sum(dim=(2, 3)) / weight.sum(dim=(2, 3))
    else:
        bce = bce.mean()
    prob = torch.sigmoid(logits)
    intersection = (prob * target * weight).sum(dim=(2, 3))
    union = ((prob + target) * weight).sum(dim=(2, 3))
    weighted_iou = 1.0 - (intersection + 1.0) / (union - intersection + 1.0)
    return (bce + weighted_iou).mean()
