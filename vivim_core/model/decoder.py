"""Light decoder heads: the SegFormer all-MLP mask head and the boundary head on stage-1 features."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MLPDecoder(nn.Module):
    """SegFormer head: per-stage linear to `dim`, upsample all to stride 4, concatenate (deepest stage
    first, as SegFormer does), 1x1 fuse + BN + ReLU, dropout, 1x1 to `num_classes` logits.

    forward([(N, C_i, H_i, W_i) for each stage]) -> (N, num_classes, H_1, W_1).
    """

    def __init__(self, in_dims: tuple[int, ...], dim: int, num_classes: int, dropout: float):
        super().__init__()
        self.linear_c = nn.ModuleList(nn.Linear(c, dim) for c in in_dims)
        self.linear_fuse = nn.Conv2d(dim * len(in_dims), dim, 1, bias=False)
        self.batch_norm = nn.BatchNorm2d(dim)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Conv2d(dim, num_classes, 1)

    def forward(self, features: list[Tensor]) -> Tensor:
        size = features[0].shape[-2:]
        unified = []
        for feature, linear in zip(features, self.linear_c):
            n, _, h, w = feature.shape
            x = linear(feature.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(n, -1, h, w)
            if (h, w) != size:
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            unified.append(x)
        x = self.linear_fuse(torch.cat(unified[::-1], dim=1))
        x = self.dropout(F.relu(self.batch_norm(x)))
        return self.classifier(x)


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
