"""The causal depthwise conv1d (+ SiLU) kernel on token-major input, in one or several scan orders (Triton).

    x (batch, L, C) tokens in (T, H, W) order -> (batch, L, k*C): channels [i*C, (i+1)*C) hold the causal conv
    of x read in branch i's scan order (forward, backward or spatial, `scan_orders.ORDER_CODES`), in that order.

Each program computes a (BLOCK_L, BLOCK_C) tile of one branch's output from the WIDTH tiles of the input it
needs: tap k at scan position p reads the token at position p - (WIDTH - 1) + k of the branch's order, a row
of C contiguous values (coalesced whatever the order); taps, bias and SiLU are applied in float32 registers.
So the copies of x into each scan order and the convolution are one pass over memory: the input is read
about once from DRAM (the taps' overlapping rows come from cache) and the output written once. With a single
forward branch this is the plain token-major conv of `causal.causal_conv1d_tokens`. Imported only on CUDA.
"""

from __future__ import annotations

from typing import Sequence

import torch
import triton
import triton.language as tl
from torch import Tensor

from ..scan_orders import ORDER_CODES


@triton.jit
def _token_at(position, order: tl.constexpr, length, frames):
    """Token index at `position` of a scan order (codes of `scan_orders.ORDER_CODES`)."""
    if order == 0:  # forward
        return position
    elif order == 1:  # backward
        return length - 1 - position
    else:  # spatial: position = pixel * frames + frame
        return (position % frames) * (length // frames) + position // frames


@triton.jit
def _conv_one_order(x_ptr, w_ptr, bias_ptr, steps, chans, branch, length, frames, channels, s_x_l,
                    ORDER: tl.constexpr, WIDTH: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_C: tl.constexpr,
                    HAS_BIAS: tl.constexpr, SILU: tl.constexpr):
    """One branch's (BLOCK_L, BLOCK_C) float32 output tile at its scan positions `steps`, channels `chans`
    (x_ptr already at the batch)."""
    chan_ok = chans < channels
    acc = tl.zeros((BLOCK_L, BLOCK_C), dtype=tl.float32)
    for k in tl.static_range(WIDTH):
        src = steps - (WIDTH - 1) + k  # tap k reads scan position t - (WIDTH - 1) + k; before the start: zero
        ok = ((src >= 0) & (src < length))[:, None] & chan_ok[None, :]
        token = _token_at(src, ORDER, length, frames)
        x = tl.load(x_ptr + token[:, None] * s_x_l + chans[None, :], mask=ok, other=0.0)
        tap = tl.load(w_ptr + (branch * channels + chans) * WIDTH + k, mask=chan_ok, other=0.0)
        acc += x.to(tl.float32) * tap.to(tl.float32)[None, :]
    if HAS_BIAS:
        acc += tl.load(bias_ptr + branch * channels + chans, mask=chan_ok, other=0.0).to(tl.float32)[None, :]
    if SILU:
        acc = acc / (1.0 + tl.exp(-acc))
    return acc


@triton.jit
def _causal_conv_orders_kernel(x_ptr, w_ptr, bias_ptr, out_ptr, length, frames, channels, s_x_b, s_x_l,
                               s_o_b, s_o_l, BRANCHES: tl.constexpr, ORDER0: tl.constexpr, ORDER1: tl.constexpr,
                               ORDER2: tl.constexpr, WIDTH: tl.constexpr, BLOCK_L: tl.constexpr,
                               BLOCK_C: tl.constexpr, HAS_BIAS: tl.constexpr, SILU: tl.constexpr):
    steps = tl.program_id(0) * BLOCK_L + tl.arange(0, BLOCK_L)
    chans = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    batch = tl.program_id(2) // BRANCHES
    branch = tl.program_id(2) % BRANCHES
    x_ptr += batch * s_x_b
    # The branch is known per program; its order is a compile-time constant inside each case.
    if branch == 0:
        acc = _conv_one_order(x_ptr, w_ptr, bias_ptr, steps, chans, branch, length, frames, channels, s_x_l,
                              ORDER0, WIDTH, BLOCK_L, BLOCK_C, HAS_BIAS, SILU)
    elif branch == 1:
        acc = _conv_one_order(x_ptr, w_ptr, bias_ptr, steps, chans, branch, length, frames, channels, s_x_l,
                              ORDER1, WIDTH, BLOCK_L, BLOCK_C, HAS_BIAS, SILU)
    else:
        acc = _conv_one_order(x_ptr, w_ptr, bias_ptr, steps, chans, branch, length, frames, channels, s_x_l,
                              ORDER2, WIDTH, BLOCK_L, BLOCK_C, HAS_BIAS, SILU)
    out_ok = (steps < length)[:, None] & (chans < channels)[None, :]
    out = out_ptr + batch * s_o_b + steps[:, None] * s_o_l + branch * channels + chans[None, :]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=out_ok)


def causal_conv1d_orders_triton(x: Tensor, weight: Tensor, bias: Tensor | None, silu: bool,
                                orders: Sequence[int] = (0,), frames: int = 1) -> Tensor:
    """x: (batch, L, C) with C contiguous, tokens in (T, H, W) order of a clip of `frames` frames; weight
    (k*C, width), bias (k*C,) or None; orders: k <= 3 codes of `scan_orders.ORDER_CODES` -> (batch, L, k*C)
    contiguous, branch i's causal conv (+ SiLU) in its scan order in channels [i*C, (i+1)*C)."""
    if not 1 <= len(orders) <= 3 or not set(orders) <= set(ORDER_CODES.values()):
        raise ValueError(f"causal_conv1d_orders_triton takes 1 to 3 scan-order codes of {ORDER_CODES}, got {orders}")
    if x.stride(-1) != 1:
        x = x.contiguous()
    batch, length, channels = x.shape
    if length % frames:
        raise ValueError(f"a clip of {frames} frames cannot have {length} tokens")
    out = torch.empty(batch, length, len(orders) * channels, device=x.device, dtype=x.dtype)
    weight = weight.contiguous()
    codes = list(orders) + [0] * (3 - len(orders))
    block_l, block_c = 32, min(128, triton.next_power_of_2(channels))
    grid = (triton.cdiv(length, block_l), triton.cdiv(channels, block_c), batch * len(orders))
    _causal_conv_orders_kernel[grid](
        x, weight, bias if bias is not None else weight, out, length, frames, channels, x.stride(0), x.stride(1),
        out.stride(0), out.stride(1), BRANCHES=len(orders), ORDER0=codes[0], ORDER1=codes[1],
        ORDER2=codes[2], WIDTH=weight.shape[1], BLOCK_L=block_l, BLOCK_C=block_c, HAS_BIAS=bias is not None,
        SILU=silu, num_warps=4,
    )
    return out
