"""Light decoder heads: the SegFormer all-MLP mask head and the boundary head on stage-1 features."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class MLPDecoder(nn.Module):
    """SegFormer head: per-stage linear to `dim`, upsample all to stride 4, concatenate (deepest stage
    first, as SegFormer does), 1x1 fuse + BN + ReLU, dropout, 1x1 to `num_classes` logits.

    forward([(N, C_i, H_i, W_i) for each stage]) -> (N, num_classes, H_1, W_1).

    Computed in an equivalent, cheaper order: the fuse conv is linear and per pixel, so it commutes with
    bilinear upsampling; each stage's linear and its slice of the fuse weight are composed into one 1x1
    conv applied at the stage's own resolution, and the upsampled results are summed (no concatenation of
    4 x dim channels at stride 4). The parameters keep SegFormer's layout, so its weights load unchanged.
    """

    def __init__(self, in_dims: tuple[int, ...], dim: int, num_classes: int, dropout: float):
        super().__init__()
        self.linear_c = nn.ModuleList(nn.Linear(c, dim) for c in in_dims)
        self.linear_fuse = nn.Conv2d(dim * len(in_dims), dim, 1, bias=False)
        self.batch_norm = nn.BatchNorm2d(dim)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Conv2d(dim, num_classes, 1)

    def forward(self, features: list[Tensor]) -> Tensor:
        return self.forward_with_hidden(features)[0]

    def forward_with_hidden(self, features: list[Tensor]) -> tuple[Tensor, Tensor]:
        """(logits (N, num_classes, H_1, W_1), the fused features the classifier reads (N, dim, H_1, W_1))."""
        size = features[0].shape[-2:]
        dim = self.linear_fuse.out_channels
        stages = len(features)
        fuse = self.linear_fuse.weight.reshape(dim, stages, dim)  # slot j holds stage stages-1-j
        total = None
        for i, (feature, linear) in enumerate(zip(features, self.linear_c)):
            slot = fuse[:, stages - 1 - i]  # (dim, dim)
            weight = (slot @ linear.weight)[:, :, None, None]  # (dim, C_i, 1, 1)
            x = F.conv2d(feature, weight, slot @ linear.bias)
            if x.shape[-2:] != size:
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            total = x if total is None else total + x
        x = self.dropout(F.relu(self.batch_norm(total)))
        return self.classifier(x), x


class BoundaryHead(nn.Module):
    """Three conv layers on the stage-1 features (paper): 3x3 conv-BN-ReLU twice, then 1x1 to one logit.

    forward((N, C_1, H_1, W_1)) -> (N, 1, H_1, W_1).
    """

    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_dim, dim, 3, padding=1, bias=False),
            nn.BatchNorm2d(dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, padding=1, bias=False),
            nn.BatchNorm2d(dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, 1, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
