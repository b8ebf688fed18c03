"""Small building blocks shared by the encoder, the temporal blocks and the decoder."""

from __future__ import annotations

import math

from torch import Tensor, nn


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch of a sample with probability `p` while training."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def init_weights(model: nn.Module, keep: tuple[type[nn.Module], ...] = ()) -> None:
    """The one weight initialisation of Vivim (SegFormer's), skipping the subtrees of `keep` module types.

    Linear: truncated normal (std 0.02), zero bias. Norms: weight 1, bias 0.
    Conv1d/2d/3d: normal with std sqrt(2 / fan_out) (fan_out divided by groups), zero bias.
    Modules of the `keep` types (the Mamba mixers) keep their own initialisation (Mamba's dt and A init).
    """
    kept = {id(m) for k in model.modules() if isinstance(k, keep) for m in k.modules()}
    for module in model.modules():
        if id(module) in kept:
            continue
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.LayerNorm, nn.BatchNorm2d, nn.GroupNorm)):
            if module.weight is not None:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            fan_out = math.prod(module.kernel_size) * module.out_channels // module.groups
            nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def tokens_to_map(tokens: Tensor, height: int, width: int) -> Tensor:
    """(N, H*W, C) -> (N, C, H, W)."""
    n, _, c = tokens.shape
    return tokens.transpose(1, 2).reshape(n, c, height, width)


def map_to_tokens(x: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, H*W, C)."""
    return x.flatten(2).transpose(1, 2)


def stochastic_depth_rates(total: int, max_rate: float) -> list[float]:
    """Linearly increasing drop-path rates over `total` blocks, from 0 to max_rate."""
    if total <= 1:
        return [0.0] * total
    return [max_rate * i / (total - 1) for i in range(total)]
