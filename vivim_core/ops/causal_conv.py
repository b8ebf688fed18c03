"""Causal depthwise conv1d in plain PyTorch (the `causal_conv1d` package's function, unfused).

x: (batch, dim, L); weight: (dim, width); bias: (dim,) or None. Output (batch, dim, L):
out[:, c, t] = bias[c] + sum_k weight[c, k] * x[:, c, t - (width - 1) + k], zero before the start.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

ACTIVATIONS = (None, "silu", "swish")


def check_conv_args(x: Tensor, weight: Tensor, bias: Tensor | None, activation: str | None) -> None:
    if x.dim() != 3:
        raise ValueError(f"causal_conv1d: x must be (batch, dim, L), got shape {tuple(x.shape)}")
    if weight.dim() != 2 or weight.shape[0] != x.shape[1]:
        raise ValueError(f"causal_conv1d: weight must be (dim={x.shape[1]}, width), got {tuple(weight.shape)}")
    if bias is not None and bias.shape != (x.shape[1],):
        raise ValueError(f"causal_conv1d: bias must be ({x.shape[1]},), got {tuple(bias.shape)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"causal_conv1d: activation must be one of {ACTIVATIONS}, got {activation!r}")


def causal_conv1d_torch(x: Tensor, weight: Tensor, bias: Tensor | None = None, activation: str | None = None) -> Tensor:
    check_conv_args(x, weight, bias, activation)
    width = weight.shape[1]
    out = F.conv1d(x, weight.unsqueeze(1).to(x.dtype), None if bias is None else bias.to(x.dtype),
                   padding=width - 1, groups=x.shape[1])[..., : x.shape[-1]]
    return F.silu(out) if activation in ("silu", "swish") else out
