"""Per-frame parts of the hierarchical encoder (SegFormer / Mix Transformer), run on (B*T) frames.

Names follow Hugging Face's `modeling_segformer.py` where it helps map SegFormer weights
(`vivim_core.model.segformer_weights`): patch_embed.proj / .layer_norm, attention.query / key / value /
sr / sr_norm / proj, mlp.dense1 / dwconv / dense2.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .layers import DropPath, map_to_tokens, tokens_to_map


class OverlapPatchEmbed(nn.Module):
    """Overlapping patch embedding: strided conv + LayerNorm. (N, C_in, H, W) -> (N, H'*W', C), H', W'."""

    def __init__(self, in_channels: int, dim: int, patch_size: int, stride: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride, padding=patch_size // 2)
        self.layer_norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> tuple[Tensor, int, int]:
        x = self.proj(x)
        height, width = x.shape[-2:]
        return self.layer_norm(map_to_tokens(x)), height, width


class EfficientSelfAttention(nn.Module):
    """Multi-head self-attention whose keys/values come from a sequence reduced by a strided conv.

    Cost O(N * N / r^2) for N tokens and reduction ratio r (SegFormer, PVT).
    """

    def __init__(self, dim: int, num_heads: int, sequence_reduction_ratio: int):
        super().__init__()
        self.num_heads = num_heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.sequence_reduction_ratio = sequence_reduction_ratio
        if sequence_reduction_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sequence_reduction_ratio, sequence_reduction_ratio)
            self.sr_norm = nn.LayerNorm(dim)

    def _heads(self, x: Tensor) -> Tensor:
        n, length, dim = x.shape
        return x.view(n, length, self.num_heads, dim // self.num_heads).transpose(1, 2)

    def forward(self, x: Tensor, height: int, width: int) -> Tensor:
        """x: (N, H*W, C) -> (N, H*W, C)."""
        context = x
        if self.sequence_reduction_ratio > 1:
            context = self.sr_norm(map_to_tokens(self.sr(tokens_to_map(x, height, width))))
        q, k, v = self._heads(self.query(x)), self._heads(self.key(context)), self._heads(self.value(context))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).flatten(2))


class MixFFN(nn.Module):
    """Mix-FFN: Linear -> 3x3 depthwise conv -> GELU -> Linear. (N, H*W, C) -> (N, H*W, C)."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.dense1 = nn.Linear(dim, hidden_dim)
        self.dwconv = nn.Conv2d(hidden_dim, hidden_dim, 3, 1, 1, groups=hidden_dim)
        self.dense2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor, height: int, width: int) -> Tensor:
        x = self.dense1(x)
        x = map_to_tokens(self.dwconv(tokens_to_map(x, height, width)))
        return self.dense2(F.gelu(x))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attention(LN(x)); x + MixFFN(LN(x)). Runs on each frame independently."""

    def __init__(self, dim: int, num_heads: int, sequence_reduction_ratio: int, mlp_ratio: int, drop_path: float):
        super().__init__()
        self.layer_norm_1 = nn.LayerNorm(dim)
        self.attention = EfficientSelfAttention(dim, num_heads, sequence_reduction_ratio)
        self.drop_path = DropPath(drop_path)
        self.layer_norm_2 = nn.LayerNorm(dim)
        self.mlp = MixFFN(dim, dim * mlp_ratio)

    def forward(self, x: Tensor, height: int, width: int) -> Tensor:
        """x: (B*T, H*W, C) -> (B*T, H*W, C)."""
        x = x + self.drop_path(self.attention(self.layer_norm_1(x), height, width))
        return x + self.drop_path(self.mlp(self.layer_norm_2(x), height, width))
