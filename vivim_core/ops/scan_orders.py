"""The orders in which ST-Mamba's scan branches read a clip's tokens, and the moves between them.

A clip of shape (T, H, W) is one sequence of L = T*H*W tokens in (T, H, W) order. Each scan branch reads it in
its own order:

    forward   the (T, H, W) order itself
    backward  the same sequence reversed
    spatial   (H, W, T) order: each pixel's T frames are consecutive (any T >= 1)

The Triton kernel that convolves x in every branch's order (`conv.causal_triton`) computes the token
at each position of an order itself, from the codes of `ORDER_CODES`.
"""

from __future__ import annotations

import math

from torch import Tensor

ORDER_CODES = {"forward": 0, "backward": 1, "spatial": 2}


def to_scan_order(x: Tensor, branch: str, clip_shape: tuple[int, int, int], dim: int = 2) -> Tensor:
    """x with its sequence axis `dim` (L tokens in (T, H, W) order) put in the branch's scan order: (B, D, L)
    with dim=2 (channel-major, the default) or (B, L, D) with dim=1 (token-major)."""
    return _reorder(x, branch, clip_shape[0], math.prod(clip_shape[1:]), dim)


def from_scan_order(y: Tensor, branch: str, clip_shape: tuple[int, int, int], dim: int = 2) -> Tensor:
    """Inverse of `to_scan_order`."""
    return _reorder(y, branch, math.prod(clip_shape[1:]), clip_shape[0], dim)


def _reorder(x: Tensor, branch: str, outer: int, inner: int, dim: int) -> Tensor:
    """Forward: unchanged; backward: reversed; spatial: the sequence axis read as (outer, inner), transposed."""
    if branch not in ORDER_CODES:
        raise ValueError(f"unknown scan branch {branch!r}; expected one of {tuple(ORDER_CODES)}")
    if branch == "forward":
        return x
    if branch == "backward":
        return x.flip(dim)
    return x.unflatten(dim, (outer, inner)).transpose(dim, dim + 1).flatten(dim, dim + 1)
