"""Fused Triton kernel: GELU(depthwise 3x3x3 conv + bias) on a channels-last clip (inference only).

One program computes a (BLOCK_W, BLOCK_C) tile of one output row (b, t, h): it accumulates the 27 taps in
float32, each tap one coalesced load of a (BLOCK_W, BLOCK_C) input tile (zero outside the clip), then adds
the bias, applies the exact (erf) GELU and stores in the input dtype. Imported only on CUDA.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor


@triton.jit
def _dwconv3d_gelu_kernel(
    x_ptr, w_ptr, bias_ptr, out_ptr, frames, height, width, channels,
    HAS_BIAS: tl.constexpr, BLOCK_W: tl.constexpr, BLOCK_C: tl.constexpr,
):
    row = tl.program_id(0)  # (b, t, h) flattened
    w0 = tl.program_id(1) * BLOCK_W
    c0 = tl.program_id(2) * BLOCK_C
    h = row % height
    t = (row // height) % frames
    b = row // (height * frames)
    ws = w0 + tl.arange(0, BLOCK_W)
    cs = c0 + tl.arange(0, BLOCK_C)
    c_ok = cs < channels
    acc = tl.zeros([BLOCK_W, BLOCK_C], dtype=tl.float32)
    for dt in range(3):
        tt = t + dt - 1
        for dh in range(3):
            hh = h + dh - 1
            inside = (tt >= 0) & (tt < frames) & (hh >= 0) & (hh < height)
            limit = tl.where(inside, width, 0)  # a row outside the clip masks every column
            base = x_ptr + ((b * frames + tt) * height + hh) * width * channels
            for dw in range(3):
                wws = ws + dw - 1
                mask = ((wws >= 0) & (wws < limit))[:, None] & c_ok[None, :]
                tile = tl.load(base + wws[:, None] * channels + cs[None, :], mask=mask, other=0.0)
                tap = tl.load(w_ptr + cs * 27 + (dt * 9 + dh * 3 + dw), mask=c_ok, other=0.0)
                acc += tile.to(tl.float32) * tap.to(tl.float32)[None, :]
    if HAS_BIAS:
        acc += tl.load(bias_ptr + cs, mask=c_ok, other=0.0).to(tl.float32)[None, :]
    acc = 0.5 * acc * (1.0 + tl.erf(acc * 0.7071067811865476))
    out_mask = (ws < width)[:, None] & c_ok[None, :]
    tl.store(out_ptr + (row * width + ws[:, None]) * channels + cs[None, :], acc.to(out_ptr.dtype.element_ty),
             mask=out_mask)


# The kernel's tile, (BLOCK_W, BLOCK_C) at most (block_w, block_c), and warps a program. Narrow and deep in channels
# won at every vivim-b3 stage on an H100: 16 x 128 took 0.294 / 0.150 / 0.097 / 0.052 ms against 0.408 / 0.208 /
# 0.181 / 0.107 for 32 x 64 (benchmarks/mamba_block_kernels.py, benchmarks/results/h100_mamba_block_kernels_v2.log).
DSF_TUNING = {"block_w": 16, "block_c": 128, "warps": 4}


def depthwise_conv3d_gelu_triton(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """x: (B, T, H, W, C) CUDA tensor -> GELU(depthwise conv3d(x) + bias), same shape and dtype."""
    b, t, h, w, c = x.shape
    x = x.contiguous()
    weight = weight.reshape(c, 27).contiguous()
    out = torch.empty_like(x)
    block_w = min(DSF_TUNING["block_w"], triton.next_power_of_2(w))
    block_c = min(DSF_TUNING["block_c"], triton.next_power_of_2(c))
    grid = (b * t * h, triton.cdiv(w, block_w), triton.cdiv(c, block_c))
    _dwconv3d_gelu_kernel[grid](x, weight, bias if bias is not None else weight, out, t, h, w, c,
                                HAS_BIAS=bias is not None, BLOCK_W=block_w, BLOCK_C=block_c,
                                num_warps=DSF_TUNING["warps"])
    return out


# torch.compile: the fused kernel as an opaque custom op, so the graph around it is not broken.
@torch.library.custom_op("vivim::dwconv3d_gelu_triton", mutates_args=())
def dwconv3d_gelu_triton_op(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """`depthwise_conv3d_gelu_triton` as `torch.ops.vivim.dwconv3d_gelu_triton` (inference only)."""
    return depthwise_conv3d_gelu_triton(x, weight, bias)


@dwconv3d_gelu_triton_op.register_fake
def _(x, weight, bias):
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)
