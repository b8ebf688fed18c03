"""Fused Triton kernels: GELU(depthwise 3x3x3 conv + bias) on a channels-last clip (inference only).

`dwconv3d_gelu_generic`: one program computes a (BLOCK_W, BLOCK_C) tile of one output row (b, t, h): it
accumulates the 27 taps in float32, each tap one coalesced load of a (BLOCK_W, BLOCK_C) input tile (zero outside
the clip), then adds the bias, applies the exact (erf) GELU and stores in the input dtype.

`dwconv3d_gelu_bf16`: for bfloat16 clips with an even number of channels. The generic kernel is bound by
instruction issue, not memory: ~200 instructions an output for its 27 multiply-adds, spent widening each bf16
value, on every tap's masks and addresses, and on moving each tap's weights into the tile's layout. This one
* reads channels in pairs as int32 and widens each half with one bit operation (a bf16 is the upper 16 bits of
  the float32 of the same value): even channels `v << 16`, odd channels `v & 0xFFFF0000`;
* takes the weights as float32, even and odd channels apart, loaded straight into the tile's layout;
* computes R_ROWS output rows a program.
It wins on large frames only (`dwconv3d.BF16_MIN_PLANE` decides). Imported only on CUDA.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor


@triton.jit
def _gelu(x):
    """The exact (erf) GELU, in float32."""
    return 0.5 * x * (1.0 + tl.erf(x * 0.7071067811865476))


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
    acc = _gelu(acc)
    out_mask = (ws < width)[:, None] & c_ok[None, :]
    tl.store(out_ptr + (row * width + ws[:, None]) * channels + cs[None, :], acc.to(out_ptr.dtype.element_ty),
             mask=out_mask)


@triton.jit
def _dwconv3d_gelu_bf16_kernel(
    x_ptr, w_ptr, bias_ptr, out_ptr, frames, height, width, pairs,
    HAS_BIAS: tl.constexpr, R_ROWS: tl.constexpr, BLOCK_W: tl.constexpr, BLOCK_P: tl.constexpr,
):
    """x_ptr, out_ptr: the clip as int32 channel pairs, (B, T, H, W, pairs); w_ptr: float32 (27, 2, pairs), tap
    k's even channels at [k, 0] and odd ones at [k, 1]; bias_ptr: float32 (2, pairs). A program computes output
    rows h0 .. h0 + R_ROWS - 1 of one (b, t), BLOCK_W columns, BLOCK_P pairs (2 BLOCK_P channels)."""
    blocks_h = tl.cdiv(height, R_ROWS)
    block = tl.program_id(0)  # (b, t, block of rows) flattened
    w0 = tl.program_id(1) * BLOCK_W
    p0 = tl.program_id(2) * BLOCK_P
    hs = (block % blocks_h) * R_ROWS + tl.arange(0, R_ROWS)  # (R,)
    t = (block // blocks_h) % frames
    b = block // (blocks_h * frames)
    ws = w0 + tl.arange(0, BLOCK_W)
    ps = p0 + tl.arange(0, BLOCK_P)
    p_ok = ps < pairs
    even = tl.zeros([R_ROWS, BLOCK_W, BLOCK_P], dtype=tl.float32)
    odd = tl.zeros([R_ROWS, BLOCK_W, BLOCK_P], dtype=tl.float32)
    for dt in range(3):
        tt = t + dt - 1
        t_ok = (tt >= 0) & (tt < frames)
        for dh in tl.static_range(3):
            hh = hs + dh - 1
            limit = tl.where(t_ok & (hh >= 0) & (hh < height), width, 0)  # a row outside the clip masks it all
            row_start = ((b * frames + tt) * height + hh) * width  # (R,) first token of each input row
            for dw in tl.static_range(3):
                wws = ws + dw - 1
                inside = (wws[None, :] >= 0) & (wws[None, :] < limit[:, None])  # (R, W)
                tokens = row_start[:, None] + wws[None, :]
                v = tl.load(x_ptr + tokens[:, :, None] * pairs + ps[None, None, :],
                            mask=inside[:, :, None] & p_ok[None, None, :], other=0)
                taps = w_ptr + ((dt * 9 + dh * 3 + dw) * 2) * pairs + ps
                tap_even = tl.load(taps, mask=p_ok, other=0.0)
                tap_odd = tl.load(taps + pairs, mask=p_ok, other=0.0)
                even += (v << 16).to(tl.float32, bitcast=True) * tap_even[None, None, :]
                odd += (v & -65536).to(tl.float32, bitcast=True) * tap_odd[None, None, :]
    if HAS_BIAS:
        even += tl.load(bias_ptr + ps, mask=p_ok, other=0.0)[None, None, :]
        odd += tl.load(bias_ptr + pairs + ps, mask=p_ok, other=0.0)[None, None, :]
    low = _gelu(even).to(tl.bfloat16).to(tl.int16, bitcast=True).to(tl.int32) & 0xFFFF
    high = _gelu(odd).to(tl.bfloat16).to(tl.int16, bitcast=True).to(tl.int32) << 16
    out_rows = (((b * frames + t) * height + hs) * width)[:, None] + ws[None, :]
    out_ok = ((hs < height)[:, None] & (ws < width)[None, :])[:, :, None] & p_ok[None, None, :]
    tl.store(out_ptr + out_rows[:, :, None] * pairs + ps[None, None, :], low | high, mask=out_ok)


# Launch parameters (chosen with benchmarks/tune_dwconv3d.py at vivim-b3's four stages). Generic kernel: its tile,
# (BLOCK_W, BLOCK_C) at most, and warps a program. bf16 kernel: R_ROWS x BLOCK_W x BLOCK_P channel pairs at most, and
# warps a program.
GENERIC_TILE = {"block_w": 16, "block_c": 128, "warps": 4}
BF16_TILE = {"rows": 2, "block_w": 16, "block_p": 64, "warps": 4}


def dwconv3d_gelu_generic(x: Tensor, weight: Tensor, bias: Tensor | None, *, block_w: int = GENERIC_TILE["block_w"],
                          block_c: int = GENERIC_TILE["block_c"], warps: int = GENERIC_TILE["warps"]) -> Tensor:
    """x: (B, T, H, W, C) CUDA tensor -> GELU(depthwise conv3d(x) + bias), same shape and dtype."""
    b, t, h, w, c = x.shape
    x = x.contiguous()
    weight = weight.reshape(c, 27).contiguous()
    out = torch.empty_like(x)
    block_w = min(block_w, triton.next_power_of_2(w))
    block_c = min(block_c, triton.next_power_of_2(c))
    grid = (b * t * h, triton.cdiv(w, block_w), triton.cdiv(c, block_c))
    _dwconv3d_gelu_kernel[grid](x, weight, bias if bias is not None else weight, out, t, h, w, c,
                                HAS_BIAS=bias is not None, BLOCK_W=block_w, BLOCK_C=block_c, num_warps=warps)
    return out


def dwconv3d_gelu_bf16(x: Tensor, weight: Tensor, bias: Tensor | None, *, rows: int = BF16_TILE["rows"],
                       block_w: int = BF16_TILE["block_w"], block_p: int = BF16_TILE["block_p"],
                       warps: int = BF16_TILE["warps"]) -> Tensor:
    """`dwconv3d_gelu_generic` for a bf16 clip with an even number of channels."""
    b, t, h, w, c = x.shape
    if x.dtype != torch.bfloat16 or c % 2:
        raise ValueError(f"the bf16 DSF kernel takes bfloat16 clips with an even number of channels, got {x.dtype}, {c}")
    x = x.contiguous()
    pairs = c // 2
    taps = weight.reshape(pairs, 2, 27).permute(2, 1, 0).float().contiguous()  # (27, 2, pairs): [k, parity, pair]
    bias_pairs = bias.float().reshape(pairs, 2).t().contiguous() if bias is not None else taps  # (2, pairs)
    out = torch.empty_like(x)
    rows = min(rows, triton.next_power_of_2(h))
    block_w = min(block_w, triton.next_power_of_2(w))
    block_p = min(block_p, triton.next_power_of_2(pairs))
    grid = (b * t * triton.cdiv(h, rows), triton.cdiv(w, block_w), triton.cdiv(pairs, block_p))
    _dwconv3d_gelu_bf16_kernel[grid](x.view(torch.int32), taps, bias_pairs, out.view(torch.int32), t, h, w, pairs,
                                     HAS_BIAS=bias is not None, R_ROWS=rows, BLOCK_W=block_w, BLOCK_P=block_p,
                                     num_warps=warps)
    return out
