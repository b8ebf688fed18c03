"""Causal depthwise conv1d (+ SiLU) on token-major input in Triton: (batch, L, C) -> (batch, L, C).

Each program computes a (BLOCK_L, BLOCK_C) tile of the output from the WIDTH shifted tiles of the input it
needs, loaded along C (contiguous, coalesced); taps, bias and SiLU are applied in registers; one pass over
memory. Eager inference on CUDA uses it (cuDNN would want channel-major data, or route depthwise convs to a
kernel that returns channel-major output); under torch.compile the shift form is fused by Inductor instead.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor


@triton.jit
def _causal_conv_tokens_kernel(x_ptr, w_ptr, bias_ptr, out_ptr, length, channels, s_x_b, s_x_l, s_o_b, s_o_l,
                               WIDTH: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_C: tl.constexpr,
                               HAS_BIAS: tl.constexpr, SILU: tl.constexpr):
    steps = tl.program_id(0) * BLOCK_L + tl.arange(0, BLOCK_L)
    chans = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    batch = tl.program_id(2)
    chan_ok = chans < channels
    acc = tl.zeros((BLOCK_L, BLOCK_C), dtype=tl.float32)
    for k in tl.static_range(WIDTH):
        src = steps - (WIDTH - 1) + k  # tap k reads step t - (WIDTH - 1) + k; before the start: zero
        ok = ((src >= 0) & (src < length))[:, None] & chan_ok[None, :]
        x = tl.load(x_ptr + batch * s_x_b + src[:, None] * s_x_l + chans[None, :], mask=ok, other=0.0)
        tap = tl.load(w_ptr + chans * WIDTH + k, mask=chan_ok, other=0.0)
        acc += x.to(tl.float32) * tap.to(tl.float32)[None, :]
    if HAS_BIAS:
        acc += tl.load(bias_ptr + chans, mask=chan_ok, other=0.0).to(tl.float32)[None, :]
    if SILU:
        acc = acc / (1.0 + tl.exp(-acc))
    out_ok = (steps < length)[:, None] & chan_ok[None, :]
    tl.store(out_ptr + batch * s_o_b + steps[:, None] * s_o_l + chans[None, :], acc.to(out_ptr.dtype.element_ty),
             mask=out_ok)


def causal_conv1d_tokens_triton(x: Tensor, weight: Tensor, bias: Tensor | None, silu: bool) -> Tensor:
    """x: (batch, L, C) with C contiguous; weight (C, width); bias (C,) or None -> (batch, L, C) contiguous."""
    if x.stride(-1) != 1:
        x = x.contiguous()
    batch, length, channels = x.shape
    out = torch.empty(batch, length, channels, device=x.device, dtype=x.dtype)
    weight = weight.contiguous()
    block_l, block_c = 32, min(128, triton.next_power_of_2(channels))
    grid = (triton.cdiv(length, block_l), triton.cdiv(channels, block_c), batch)
    _causal_conv_tokens_kernel[grid](
        x, weight, bias if bias is not None else weight, out, length, channels, x.stride(0), x.stride(1),
        out.stride(0), out.stride(1), WIDTH=weight.shape[1], BLOCK_L=block_l, BLOCK_C=block_c,
        HAS_BIAS=bias is not None, SILU=silu, num_warps=4,
    )
    return out
