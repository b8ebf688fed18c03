"""Inference selective scan in one pass, the states of a row spread over warps: no barrier inside the state loop.

`scan_triton_onepass` spreads a row's chunk over all the program's threads (4 warps), so the scan across
threads and the hand-over from thread i-1 each cross warps: shared memory and a barrier per state, per chunk.
That kernel is latency-bound (H200, b4 d128 L20480 N16 fp32: 0.235 ms of GPU time, ~1,450 cycles per state
and chunk against ~550 of issue).

Here a program scans one row with SPLIT warps, and warp w owns the states [w N/SPLIT, (w+1) N/SPLIT). Per chunk
of 32 x ITEMS steps (lane i owns ITEMS consecutive steps), for each of its states a warp does what the one-pass
kernel does, but within the warp: up-sweep inside each lane, an inclusive `tl.associative_scan` over the 32 lanes
and a `tl.gather` from lane i-1 (both shuffles, no shared memory), down-sweep inside each lane. The warps meet
once per chunk, to add up their states' contributions to y (`tl.sum` across warps), then gate and store.

Every warp computes softplus(dt) for the whole chunk (2 SFU operations per step, against 1 per state update for
the exps): SPLIT = 2 costs 1/8 of an SFU operation more per update, SPLIT = 4 a quarter.

Measured on an H200 (benchmarks/tune_one_pass.py, results/h200_tune_warps.log, GPU time per call): at b4 d128
L20480 N16 fp32 0.307 ms against 0.241 for `scan_triton_onepass` (bf16 0.259 against 0.225); at vivim-b3's
stage-1 call laid out channel-major (b8 d384, 3 groups) 1.41-1.86 ms fp32 against 1.27, bf16 1.28-1.52 against
1.0. So it is not the automatic choice (`TUNING['inference_kernel'] = "warps"` selects it). Why, from Nsight
Compute (results/h200_ncu_warps_vs_one_pass.log): 512 rows x 2 warps leave ~2 warps a scheduler, and with the
next chunk's inputs loaded ahead the registers (~240 at 16 steps a lane) allow no more; warps then stall on
global loads (long scoreboard, 2.8 cycles per issued instruction) and on the shuffles and exps (short
scoreboard, 1.7). It issues 18 % fewer instructions than the one-pass kernel (83.5 M against 102 M).

Forward only, no gradients; per-step inputs and the output have unit stride along L (coalesced loads).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from ._triton_common import recurrence_combine, skip_and_bias
from .scan_triton_onepass import _down_sweep, _load_columns, _up_sweep
from .scan_triton_rows import _columns, _silu_gate, _softplus, _tile

# Launch parameters (benchmarks/tune_one_pass.py, results/h200_tune_warps.log): steps per lane (a multiple of 4)
# and warps per row (the states are split between them; fewer where N is not a multiple). 16 x 2 was the fastest
# at b4 d128 L20480 N16 (fp32 0.307 ms of GPU time; 8 x 4: 0.54, 16 x 1: 0.47).
WARPS_TUNING = {"items": 16, "split": 2}


def split_for(n_state: int) -> int:
    """Warps per row: WARPS_TUNING['split'] halved until it divides N."""
    split = WARPS_TUNING["split"]
    while n_state % split:
        split //= 2
    return split


@triton.jit
def _valid(start, offsets, length, ITEMS: tl.constexpr):
    """Per group of 4 steps of the lanes' ITEMS: which lie before the end (for masks)."""
    valid = ()
    for k in tl.static_range(ITEMS // 4):
        valid = valid + (start + offsets + 4 * k < length,)
    return valid


@triton.jit
def _state_inputs(A_row, s_A_n, carry_row, B_row, s_B_n, C_row, s_C_n, n, start, length, lane0, offsets,
                  ITEMS: tl.constexpr, EVEN: tl.constexpr):
    """For each thread's state n ((THREADS,), one per warp) in the chunk at `start`: A_n log2(e), the state
    carried into the chunk (lane 0's), and the B_n and C_n columns."""
    A2 = tl.load(A_row + n * s_A_n).to(tl.float32) * 1.4426950408889634  # exp -> exp2
    carry = tl.load(carry_row + n, mask=lane0, other=0.0)
    valid = _valid(start, offsets, length, ITEMS)
    B = _load_columns(B_row + start + n[:, None] * s_B_n, offsets, valid, ITEMS, EVEN)
    C = _load_columns(C_row + start + n[:, None] * s_C_n, offsets, valid, ITEMS, EVEN)
    return A2, carry, B, C


@triton.jit
def _chunk_inputs(dl_row, u_row, z_row, start, length, offsets, out_offsets, ITEMS: tl.constexpr,
                  EVEN: tl.constexpr, HAS_Z: tl.constexpr):
    """The raw dt and u tiles of the chunk at `start` ((THREADS, 4) each, ITEMS / 4 of them: every warp reads
    the row's), and its z tiles as the gate reads them ((32, 4) each)."""
    valid = _valid(start, offsets, length, ITEMS)
    out_valid = _valid(start, out_offsets, length, ITEMS)
    dts = ()
    us = ()
    zs = ()
    for k in tl.static_range(ITEMS // 4):
        if EVEN:
            dts = dts + (tl.load(dl_row + start + offsets + 4 * k),)
            us = us + (tl.load(u_row + start + offsets + 4 * k),)
            if HAS_Z:
                zs = zs + (tl.load(z_row + start + out_offsets + 4 * k),)
        else:
            dts = dts + (tl.load(dl_row + start + offsets + 4 * k, mask=valid[k], other=0.0),)
            us = us + (tl.load(u_row + start + offsets + 4 * k, mask=valid[k], other=0.0),)
            if HAS_Z:
                zs = zs + (tl.load(z_row + start + out_offsets + 4 * k, mask=out_valid[k], other=0.0),)
    return dts, us, zs


@triton.jit
def _within_warps(values, SPLIT: tl.constexpr):
    """(THREADS,) -> (SPLIT, 32): warp, lane (the same registers)."""
    return tl.reshape(values, (SPLIT, 32))


@triton.jit
def _warps_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, out_ptr, carry_ptr,
    dim, length, channels_per_group,
    s_u_b, s_u_d, s_dl_b, s_dl_d, s_A_d, s_A_n, s_B_b, s_B_g, s_B_n, s_C_b, s_C_g, s_C_n,
    s_z_b, s_z_d, s_o_b, s_o_d,
    N_STATE: tl.constexpr, ITEMS: tl.constexpr, SPLIT: tl.constexpr, SOFTPLUS: tl.constexpr,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, EVEN: tl.constexpr,
):
    """One program per (batch, channel) row, SPLIT warps; thread t is lane t % 32 of warp t // 32.
    EVEN: L is a multiple of 32 x ITEMS (no masks). carry_ptr: (rows, N) float32 scratch, each state's slot
    written and read by lane 0 of the warp that owns it."""
    THREADS: tl.constexpr = 32 * SPLIT
    row = tl.program_id(0)
    b = row // dim
    d = row % dim
    g = d // channels_per_group
    tid = tl.arange(0, THREADS)
    lane = tid % 32
    lane0 = lane == 0
    previous = _within_warps(tl.where(lane0, 31, lane - 1), SPLIT)  # lane 0 reads lane 31: the chunk's end
    offsets = lane[:, None] * ITEMS + tl.arange(0, 4)[None, :]  # (THREADS, 4): the lane's first 4 steps
    out_offsets = tl.arange(0, 32)[:, None] * ITEMS + tl.arange(0, 4)[None, :]  # (32, 4), once the warps meet
    states_per_warp: tl.constexpr = N_STATE // SPLIT
    first_state = (tid // 32) * states_per_warp
    carry_row = carry_ptr + row * N_STATE
    for i in range(states_per_warp):
        tl.store(carry_row + first_state + i, tl.zeros([THREADS], dtype=tl.float32), mask=lane0)
    A_row = A_ptr + d * s_A_d
    B_row = B_ptr + b * s_B_b + g * s_B_g
    C_row = C_ptr + b * s_C_b + g * s_C_g
    dl_row = delta_ptr + b * s_dl_b + d * s_dl_d
    u_row = u_ptr + b * s_u_b + d * s_u_d
    z_row = z_ptr + b * s_z_b + d * s_z_d
    o_row = out_ptr + b * s_o_b + d * s_o_d
    skip, bias = skip_and_bias(D_ptr, bias_ptr, d, HAS_D, HAS_BIAS)
    CHUNK: tl.constexpr = 32 * ITEMS
    last_start = (length - 1) // CHUNK * CHUNK
    # Software pipelining: the next chunk's dt, u, z and the next state's A, carry, B, C are loaded while the
    # current ones are scanned (each load would otherwise wait on memory, exposed once per chunk and state).
    pending = _chunk_inputs(dl_row, u_row, z_row, 0, length, offsets, out_offsets, ITEMS, EVEN, HAS_Z)
    nxt = _state_inputs(A_row, s_A_n, carry_row, B_row, s_B_n, C_row, s_C_n, first_state, 0, length, lane0, offsets,
                        ITEMS, EVEN)
    for start in range(0, length, CHUNK):
        dt_tiles, u_tiles, z_tiles = pending
        pending = _chunk_inputs(dl_row, u_row, z_row, tl.minimum(start + CHUNK, last_start), length, offsets,
                                out_offsets, ITEMS, EVEN, HAS_Z)
        valid = _valid(start, offsets, length, ITEMS)
        # every warp: dt (softplus) and dt u for the lane's ITEMS steps, and their sum of dt; ys starts at D u
        # in warp 0 (the warps' ys are added up at the end of the chunk)
        dt = ()
        dtu = ()
        ys = ()
        dt_sum = tl.zeros([THREADS], dtype=tl.float32)
        for k in tl.static_range(ITEMS // 4):
            dt_k = dt_tiles[k].to(tl.float32) + bias
            u_k = u_tiles[k].to(tl.float32)
            if SOFTPLUS:
                dt_k = _softplus(dt_k)
            if not EVEN:
                dt_k = tl.where(valid[k], dt_k, 0.0)  # past the end: a = 1, x = 0
            dt = dt + _columns(dt_k)
            dtu = dtu + _columns(dt_k * u_k)
            ys = ys + _columns(tl.where(tid[:, None] < 32, skip * u_k, 0.0))
            dt_sum += tl.sum(dt_k, 1)
        for i in range(states_per_warp):  # a loop, not unrolled: one body to compile and to cache
            A2, carry, B_n, C_n = nxt
            # ahead: the warp's next state, or its first state in the next chunk
            ahead_start = tl.minimum(start + CHUNK * ((i + 1) // states_per_warp), last_start)
            nxt = _state_inputs(A_row, s_A_n, carry_row, B_row, s_B_n, C_row, s_C_n,
                                first_state + (i + 1) % states_per_warp, ahead_start, length, lane0, offsets,
                                ITEMS, EVEN)
            # up-sweep inside each lane: the decay across its steps and the state they reach from `carry`
            a, x, a_all, x_all = _up_sweep(dt, dtu, B_n, A2, carry, (dt_sum,), 0, ITEMS)
            # across the warp's lanes: the state at each lane's end, and from lane i-1 the state entering lane i
            _, ends = tl.associative_scan((_within_warps(a_all, SPLIT), _within_warps(x_all, SPLIT)), 1,
                                          recurrence_combine)
            before = tl.reshape(tl.gather(ends, previous, 1), (THREADS,))
            tl.store(carry_row + first_state + i, before, mask=lane0)
            if states_per_warp == 1:  # the carry prefetched for the next chunk was loaded before this store
                nxt = (nxt[0], tl.where(lane0, before, 0.0), nxt[2], nxt[3])
            h = tl.where(lane0, carry, before)
            ys = _down_sweep(a, x, h, C_n, ys, 0, ITEMS, 1)  # down-sweep inside each lane
        # the warps meet: y = sum over the warps' states (D u included), then the gate
        out_valid = _valid(start, out_offsets, length, ITEMS)
        for k in tl.static_range(ITEMS // 4):
            tile = _tile(ys[4 * k], ys[4 * k + 1], ys[4 * k + 2], ys[4 * k + 3])  # (THREADS, 4)
            y = tl.sum(tl.reshape(tile, (SPLIT, 32, 4)), 0)  # (32, 4)
            if HAS_Z:
                y = _silu_gate(y, z_tiles[k].to(tl.float32))
            if EVEN:
                tl.store(o_row + start + out_offsets + 4 * k, y.to(out_ptr.dtype.element_ty))
            else:
                tl.store(o_row + start + out_offsets + 4 * k, y.to(out_ptr.dtype.element_ty), mask=out_valid[k])


def scan_warps(u: Tensor, delta: Tensor, A: Tensor, Bg: Tensor, Cg: Tensor, D: Tensor | None,
               z: Tensor | None, delta_bias: Tensor | None, delta_softplus: bool, out: Tensor) -> Tensor:
    """Inference scan into `out` (batch, dim, L), contiguous along L. Bg, Cg: (batch, G, N, L) views.
    Takes what `scan_triton_onepass.supports` accepts."""
    batch, dim, length = u.shape
    n_state = A.shape[1]
    items = WARPS_TUNING["items"]
    split = split_for(n_state)
    zz = z if z is not None else u
    carry = torch.empty(batch * dim, n_state, device=u.device, dtype=torch.float32)
    _warps_kernel[(batch * dim,)](
        u, delta, A, Bg, Cg, D if D is not None else A, zz, delta_bias if delta_bias is not None else A, out, carry,
        dim, length, dim // Bg.shape[1],
        *u.stride()[:2], *delta.stride()[:2], *A.stride(), *Bg.stride()[:3], *Cg.stride()[:3],
        *zz.stride()[:2], *out.stride()[:2],
        N_STATE=n_state, ITEMS=items, SPLIT=split, SOFTPLUS=bool(delta_softplus),
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
        EVEN=length % (32 * items) == 0, num_warps=split,
    )
    return out
