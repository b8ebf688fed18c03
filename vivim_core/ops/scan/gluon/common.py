"""Gluon pieces shared by the Gluon scan kernels (`one_pass`, `one_pass_tma`), and whether Gluon is here at all.

Gluon is Triton's explicit-layout dialect (`triton.experimental.gluon`, Triton >= 3.5; its Hopper TMA API in 3.6).
It is experimental, so everything here is guarded: where it does not import, `available()` is False and the
policy never picks a Gluon kernel.

The element-wise helpers and the recurrence's combine are the Triton kernels' own (`..triton.common`), compiled as
Gluon with `gluon.jit(fn.fn)`. The exchange across a warp is written in PTX (`warp_scan_two`): Triton's
`tl.associative_scan` across threads costs barriers and a wait on the carried state that this avoids.
"""

from __future__ import annotations

import functools

import torch

try:  # Gluon is experimental: absent from older Triton releases, and its API still moves between releases
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
except Exception:  # noqa: BLE001 - any import failure means "not available"
    gluon = None
    gl = None

try:
    from triton.experimental.gluon.language.nvidia.hopper import mbarrier, tma
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor
except Exception:  # noqa: BLE001 - no Gluon or no Hopper support in this Triton
    mbarrier = tma = TensorDescriptor = None


def available() -> bool:
    """Whether Gluon imported (its kernels also need a CUDA device of compute capability >= 8)."""
    return gluon is not None


def tma_available() -> bool:
    """Whether Gluon's Hopper TMA API imported (the TMA kernel also needs compute capability 9.x)."""
    return gluon is not None and tma is not None


@functools.lru_cache(maxsize=None)
def capability(device: torch.device) -> tuple[int, int]:
    """A CUDA device's compute capability, asked once (the query costs ~5 us of host time a scan call)."""
    return torch.cuda.get_device_capability(device)


if gluon is not None:
    from ..triton import common as triton_common

    ex2 = gluon.jit(triton_common.exp2_approx.fn)
    softplus = gluon.jit(triton_common.softplus_approx.fn)
    combine = gluon.jit(triton_common.recurrence_combine.fn)
    skip_and_bias = gluon.jit(triton_common.skip_and_bias.fn)

    @gluon.jit
    def rcp(x):
        """1 / x on the special-function unit (one instruction; a division costs ~10)."""
        return gl.inline_asm_elementwise("rcp.approx.ftz.f32 $0, $1;", "=r,r", [x], dtype=gl.float32,
                                         is_pure=True, pack=1)

    # Inclusive scan of (decay, state) pairs across a warp's 32 lanes for two independent sequences at once (two
    # states), their shuffles interleaved (a chain of 5 dependent shuffles per sequence would otherwise stall on
    # each), then the exclusive value (the combine of the lanes before this one; (1, 0) in lane 0).
    # Outputs $0-$3 inclusive (p, x of the first, p, x of the second), $4-$7 exclusive; inputs $8-$11.
    # `shfl.sync.up` sets `ok` when the source lane exists, so lanes below the offset keep their value.
    _LEVEL_TWO = """
    shfl.sync.up.b32 tp0|ok, $0, {k}, 0, 0xffffffff;
    shfl.sync.up.b32 tx0, $1, {k}, 0, 0xffffffff;
    shfl.sync.up.b32 tp1, $2, {k}, 0, 0xffffffff;
    shfl.sync.up.b32 tx1, $3, {k}, 0, 0xffffffff;
    @ok fma.rn.f32 $1, $0, tx0, $1;
    @ok mul.f32 $0, tp0, $0;
    @ok fma.rn.f32 $3, $2, tx1, $3;
    @ok mul.f32 $2, tp1, $2;"""
    _WARP_SCAN_TWO_ASM = gl.constexpr(
        "{\n.reg .pred ok;\n.reg .b32 tp0, tx0, tp1, tx1;\nmov.b32 $0, $8;\nmov.b32 $1, $9;\nmov.b32 $2, $10;\n"
        "mov.b32 $3, $11;" + "".join(_LEVEL_TWO.format(k=k) for k in (1, 2, 4, 8, 16)) + """
    shfl.sync.up.b32 tp0|ok, $0, 1, 0, 0xffffffff;
    shfl.sync.up.b32 tx0, $1, 1, 0, 0xffffffff;
    shfl.sync.up.b32 tp1, $2, 1, 0, 0xffffffff;
    shfl.sync.up.b32 tx1, $3, 1, 0, 0xffffffff;
    selp.b32 $4, tp0, 0x3F800000, ok;
    selp.b32 $5, tx0, 0, ok;
    selp.b32 $6, tp1, 0x3F800000, ok;
    selp.b32 $7, tx1, 0, ok;
}""")

    @gluon.jit
    def warp_scan_two(p0, x0, p1, x1):
        """Two sequences of (decay, state) pairs, element i in thread i -> their inclusive scans within each warp
        (p0, x0, p1, x1), then their exclusive ones."""
        return gl.inline_asm_elementwise(_WARP_SCAN_TWO_ASM, "=r,=r,=r,=r,=r,=r,=r,=r,r,r,r,r", [p0, x0, p1, x1],
                                         dtype=(gl.float32,) * 8, is_pure=True, pack=1)

    @gluon.jit
    def fold_warp_totals(exchange, state0, state1, warp, totals: gl.constexpr, per_thread: gl.constexpr,
                         WARPS: gl.constexpr, THREAD_DIM: gl.constexpr):
        """Two states carried across a chunk's warps in order: warp k's (p, x) totals of each state are lane 31's
        (2, 2) entry of `exchange` along THREAD_DIM (its threads' dimension), read in the `totals` layout.
        state0, state1: the states entering the chunk, in the per_thread layout. Returns the states entering
        each thread's warp and those at the chunk's end."""
        warp0 = state0
        warp1 = state1
        for k in gl.static_range(WARPS):
            pair0, pair1 = gl.split(exchange.slice(32 * k + 31, 1, dim=THREAD_DIM).load(totals))  # (p, x) each
            p_0, x_0 = gl.split(pair0)
            p_1, x_1 = gl.split(pair1)
            state0 = gl.convert_layout(p_0, per_thread) * state0 + gl.convert_layout(x_0, per_thread)
            state1 = gl.convert_layout(p_1, per_thread) * state1 + gl.convert_layout(x_1, per_thread)
            warp0 = gl.where(warp == k + 1, state0, warp0)
            warp1 = gl.where(warp == k + 1, state1, warp1)
        return warp0, warp1, state0, state1


def by_element_size(setting, element_size: int):
    """A per-dtype launch setting, {4: float32 value, 2: 16-bit value}, for inputs of this element size."""
    return setting.get(element_size, setting[4])
