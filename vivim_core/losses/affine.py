"""The affine boundary constraint (InverseForm-inspired; paper section "Boundary-aware Constraint").

The boundary map (sigmoid of the boundary logits) and the Sobel ground-truth edges are cut into P x P
patches. For every patch that holds ground-truth boundary, the frozen prior regresses the affine transform
that maps the ground-truth edge patch onto the predicted boundary patch; the loss is the mean Frobenius
distance of those transforms from the identity:

    L_affine = 1/N_p * sum_i || theta_i - I ||_F

Two defects of the reference code are avoided: its boundary losses are switched off, and it takes a
softmax over a single channel (always 1, so no gradient). Here the boundary probability is a sigmoid, and
the gradient flows through the frozen prior into the boundary head and the encoder.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .affine_prior import AffinePrior, identity_affine


def to_patches(maps: Tensor, patch_size: int) -> Tensor:
    """(N, 1, H, W) -> (N * H/P * W/P, P, P) non-overlapping patches (H and W padded with 0 to multiples of P)."""
    n, _, h, w = maps.shape
    pad_h, pad_w = (-h) % patch_size, (-w) % patch_size
    if pad_h or pad_w:
        maps = F.pad(maps, (0, pad_w, 0, pad_h))
    h, w = h + pad_h, w + pad_w
    patches = maps.reshape(n, h // patch_size, patch_size, w // patch_size, patch_size)
    return patches.permute(0, 1, 3, 2, 4).reshape(-1, patch_size, patch_size)


class AffineBoundaryLoss(nn.Module):
    """L_affine with a frozen `AffinePrior` (kept in eval mode and out of every optimizer).

    forward(boundary_prob (..., 1, H, W) in [0, 1], boundary_target (..., 1, H, W) in {0, 1}) -> scalar.
    Patches with fewer than `min_edge_pixels` ground-truth boundary pixels are skipped (no edge: the
    transform is undefined); when no patch qualifies the loss is 0 (still attached to the graph).
    """

    def __init__(self, prior: AffinePrior, min_edge_pixels: int = 4):
        super().__init__()
        self.prior = prior.eval().requires_grad_(False)
        self.min_edge_pixels = int(min_edge_pixels)

    def train(self, mode: bool = True) -> "AffineBoundaryLoss":
        super().train(mode)
        self.prior.eval()  # frozen, whatever the caller does
        return self

    def forward(self, boundary_prob: Tensor, boundary_target: Tensor) -> Tensor:
        p = self.prior.patch_size
        pred = to_patches(boundary_prob.reshape(-1, 1, *boundary_prob.shape[-2:]).float(), p)
        gt = to_patches(boundary_target.reshape(-1, 1, *boundary_target.shape[-2:]).float(), p)
        keep = gt.sum(dim=(1, 2)) >= self.min_edge_pixels
        if not bool(keep.any()):
            return boundary_prob.sum() * 0.0
        dtype = self.prior.head.weight.dtype
        theta = self.prior(gt[keep].to(dtype), pred[keep].to(dtype)).float()
        identity = identity_affine(theta.shape[0], theta.dtype, theta.device)
        # sqrt(x + eps): the Frobenius norm with a finite gradient at a perfect match
        return ((theta - identity).square().sum(dim=(1, 2)) + 1e-8).sqrt().mean()
