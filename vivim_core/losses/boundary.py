"""Boundary ground truth (Sobel on the mask) and the boundary BCE term.

The boundary target is the set of pixels where the Sobel gradient of the binary mask is non-zero: a band
two pixels wide (one on each side of the lesion contour) at any resolution. The frame border is not a
boundary (replicate padding), so a lesion cut by the image edge has no edge along the border.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

_SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))


def sobel_kernels(dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """The two 3x3 Sobel kernels as a conv weight (2, 1, 3, 3): d/dx, d/dy."""
    gx = torch.tensor(_SOBEL_X, dtype=dtype, device=device)
    return torch.stack([gx, gx.t()]).unsqueeze(1)


def sobel_boundary(masks: Tensor) -> Tensor:
    """Boundary ground truth of binary masks: (..., 1, H, W) in {0, 1} -> same shape, float {0, 1}."""
    shape = masks.shape
    maps = (masks.reshape(-1, 1, *shape[-2:]) > 0.5).float()
    padded = F.pad(maps, (1, 1, 1, 1), mode="replicate")
    gradient = F.conv2d(padded, sobel_kernels(maps.dtype, maps.device))
    return (gradient.abs().sum(dim=1, keepdim=True) > 0).float().reshape(shape)


def boundary_bce(boundary_logits: Tensor, boundary_target: Tensor, pos_weight: float | None = None) -> Tensor:
    """Pixel BCE between boundary logits and the Sobel boundary target (same shapes), mean over pixels.

    pos_weight: optional up-weighting of the (rare) boundary pixels; None = plain BCE, as in the paper.
    """
    logits = boundary_logits.float()
    weight = None if pos_weight is None else torch.tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits, boundary_target.to(logits.dtype), pos_weight=weight)
