"""Inference selective scan in Triton, one thread per (batch, channel) row: no scan tree, no shuffles.

The chunk kernel of `scan_triton` solves each chunk with `tl.associative_scan`: correct, but its tree of
shuffles, shared-memory exchanges and masked reductions costs ~60 instructions per state update. Here every
thread owns one row and keeps its N states in registers (a tuple of N tensors, so Triton cannot spread them
over lanes), and walks its part of the sequence step by step:

    a = exp2(dt * A log2 e),  h_n = a h_n + (dt u) B_n,  y = sum_n C_n h_n   (5 instructions per update)

Steps are loaded V = 4 at a time as one 16-byte vector per thread and split into columns inside the thread.

A row alone is far too little parallel work for a GPU (b 4 x d 128 = 512 threads), so the sequence is cut
into segments, in three launches:

1. `_rows_scan_kernel` with OUTPUT=False: every (row block, segment) program scans its segment from a zero
   state and writes the segment's end state and its sum of dt;
2. `_rows_combine_kernel`: per row, an associative scan over the segments turns those into the state
   entering each segment (the decay across a segment is exp(A * its sum of dt));
3. `_rows_scan_kernel` with OUTPUT=True: every program rescans its segment from its entering state and
   writes the output (D skip and silu(z) gate included).

Forward only, no gradients: `scan_triton` uses it for inference.

B and C are read in place when they are token-major views whose strides and start are multiples of 4, such as
slices of a mamba_ssm-style x_proj output (rows of dt_rank + 2N = 36 values, B and C 4 and 20 values in): offsets
are written as 4 x an integer so that Triton can prove each 4 values aligned and load them as one vector
(`_step_values`). Before that, on such views, it loaded one value a lane and regrouped them through shared memory
(32 barriers every 4 steps): at vivim-b3's stage-1 size 2.30 -> 1.02 ms bf16 and 3.19 -> 1.20 ms fp32 of GPU time
on an H100 (results/h100_row_kernel_model_views.log). Vivim's own token path was not affected: its projection pads
rows and slices to 16-byte alignment (`SpatioTemporalMamba._token_projection`), which Triton could already see.

Where the time goes (Nsight Compute on an H200, b4 d128 L20480 N16 fp32, h200_triton_row_kernel_ncu.log): the
three launches take ~25 % less GPU time than the chunk kernel, but the output pass is still latency-bound:
130 registers a thread (states, A, and B and C of the next step) leave 16 % occupancy. Spreading a row's
states over 2 or 4 threads (ROWS_TUNING['lanes']) cuts registers (bf16 output pass: 102 -> 72 / 64) but adds
instructions (a shuffle sum of y, dt's softplus in every thread) and was slower
(results/h100_row_kernel_model_views.log).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch import Tensor

from ._triton_common import recurrence_combine

# Launch parameters: warps per program (32 rows each); the number of threads to aim for, which sets the number of
# segments, for float32 and for 16-bit inputs; segments of at least min_segment steps, and at most max_segments of
# them (the combine kernel holds a row's segments in registers); one segment (a single pass, no combine) once the
# rows alone give one_segment_threads threads. Measured at vivim-b3's four stage-1..4 calls (b8, d 384 / 768 /
# 1920 / 3072, its token-major layout) on an H100, GPU time bf16 (results/h100_row_kernel_launch_sweep.log):
# 270k threads against 135k 0.978 / 0.532 / 0.355 ms against 1.022 / 0.534 / 0.386 at stages 1-3, while fp32
# preferred 135k (1.209 / 0.619 against 1.224 / 0.642); stage 4 (24,576 rows, L 320) in one segment 0.155 ms
# against 0.254 in five. 1 warp a program was best or equal everywhere (2 and 4: +0.5-4 %).
ROWS_TUNING = {"num_warps": 1, "threads": 132 * 1024, "threads_16bit": 264 * 1024, "one_segment_threads": 16384,
               "min_segment": 64, "max_segments": 1024, "maxnreg": None,
               "prefetch_bc": True,
               # Threads a row: 1, or 2 / 4 with N / lanes of its states each (N a multiple of 4 x lanes), the
               # row's output summed across them with a shuffle. H100, vivim-b3's stage-1 size (b8 d384 G3,
               # mamba-style B/C views), GPU time bf16 / fp32: 1 lane 1.02 / 1.20 ms, 2 lanes 1.27 / 1.36,
               # 4 lanes 1.47 / 1.43; compiled vivim-b3 2,164 / 2,033 / 2,008 frames/s
               # (results/h100_row_kernel_model_views.log).
               "lanes": 1}


if os.environ.get("TRITON_INTERPRET") == "1":  # Triton's CPU interpreter runs no PTX

    @triton.jit
    def _exp2(x):
        return tl.exp2(x)

    @triton.jit
    def _log2(x):
        return tl.log2(x)

else:

    @triton.jit
    def _exp2(x):
        """2^x on the special-function unit, subnormal results flushed to zero (one instruction)."""
        return tl.inline_asm_elementwise("ex2.approx.ftz.f32 $0, $1;", "=r,r", [x], dtype=tl.float32,
                                         is_pure=True, pack=1)

    @triton.jit
    def _log2(x):
        return tl.inline_asm_elementwise("lg2.approx.ftz.f32 $0, $1;", "=r,r", [x], dtype=tl.float32,
                                         is_pure=True, pack=1)


@triton.jit
def _softplus(x):
    """log(1 + e^x) from the hardware's approximate exp2 and log2 (Triton's precise log costs ~25 instructions)."""
    return tl.where(x > 20.0, x, 0.6931471805599453 * _log2(1.0 + _exp2(x * 1.4426950408889634)))


@triton.jit
def _silu_gate(y, z):
    """y * silu(z) = y z / (1 + e^-z)."""
    return y * z / (1.0 + _exp2(z * -1.4426950408889634))


@triton.jit
def _columns(tile):
    """(R, 4) tile, the 4 inside each thread -> its 4 columns as (R,) tensors."""
    even, odd = tl.split(tl.reshape(tile, (tile.shape[0], 2, 2)))
    c0, c2 = tl.split(even)
    c1, c3 = tl.split(odd)
    return c0, c1, c2, c3


@triton.jit
def _tile(c0, c1, c2, c3):
    """Four (R,) columns -> one (R, 4) tile (the inverse of `_columns`)."""
    return tl.reshape(tl.join(tl.join(c0, c2), tl.join(c1, c3)), (c0.shape[0], 4))


@triton.jit
def _step_values(base_ptr, row_offset, t, quarter_step, N_STATE: tl.constexpr):
    """The N values of step t (in range: no mask) of a token-major tensor (N contiguous, 4 x `quarter_step`
    elements from step to step) from `base_ptr` + `row_offset` (R,) (multiples of 4): a tuple of N (R,) tensors.

    Offsets written as 4 x an integer let Triton prove every 4 values 4-aligned, so each 4 are one vector load
    into one thread. Triton specialises integer arguments only on divisibility by 16: with plain strides, views
    whose rows and starts are multiples of 4 but not of 16 (a mamba_ssm-style x_proj output: rows of
    dt_rank + 2N = 36, B and C 4 and 20 values in) were loaded a value a lane and regrouped through shared
    memory (offline sm_90 SASS: 128 shared-memory stores and 32 barriers every 4 steps)."""
    quad = tl.arange(0, 4)[None, :]
    at = base_ptr + (row_offset + 4 * (t * quarter_step))[:, None]
    values = ()
    for q in tl.static_range(N_STATE // 4):
        values = values + _columns(tl.load(at + 4 * q + quad).to(tl.float32))
    return values


@triton.jit
def _sum_over_lanes(y, LANES: tl.constexpr):
    """(R, 4) partial outputs, LANES consecutive threads a row -> the row's total in each of its threads
    (a butterfly of shuffles inside the warp)."""
    R: tl.constexpr = y.shape[0]
    total = tl.sum(tl.reshape(y, (R // LANES, LANES, 4)), 1)
    return tl.reshape(tl.broadcast_to(total[:, None, :], (R // LANES, LANES, 4)), (R, 4))


@triton.jit
def _rows_scan_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, out_ptr, state_ptr, seg_dt_ptr,
    rows_total, dim, length, seg_len, n_segments, channels_per_group, q_B_start, q_C_start,
    s_u_b, s_u_d, s_u_l, s_dl_b, s_dl_d, s_dl_l, s_A_d, s_A_n, q_B_b, q_B_g, q_B_l, q_C_b, q_C_g, q_C_l,
    s_z_b, s_z_d, s_z_l, s_o_b, s_o_d, s_o_l,
    N_STATE: tl.constexpr, BLOCK_R: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, OUTPUT: tl.constexpr, WHOLE_GROUPS: tl.constexpr,
    PREFETCH_BC: tl.constexpr = True, LANES: tl.constexpr = 1,
):
    """One program: BLOCK_R threads, LANES a row (BLOCK_R / LANES rows), one segment of `seg_len` steps (a
    multiple of 4). A row's thread `part` owns states [part N/LANES, (part + 1) N/LANES); it alone adds D u.
    WHOLE_GROUPS: L is a multiple of 4, so no load needs a mask (masked loads cost a zeroing each).

    B and C are token-major, (batch, G, L, N) with N contiguous, so one step's N values are N/4 vector loads at
    fixed offsets from one pointer: B_ptr / C_ptr are their storages' starts, q_*_start their offsets and q_*_b,
    q_*_g, q_*_l their other strides, all in units of 4 elements (see `_step_values`).
    state_ptr: (rows, n_segments, N) float32.
    OUTPUT=False: scans from a zero state, writes each segment's end state there and its sum of dt to
    seg_dt_ptr (rows, n_segments). OUTPUT=True: scans from the entering state read there and writes the output."""
    STATES: tl.constexpr = N_STATE // LANES
    thread = tl.arange(0, BLOCK_R)
    rows = tl.program_id(0) * (BLOCK_R // LANES) + thread // LANES
    part = thread % LANES
    first_state = part * STATES
    row_ok = rows < rows_total
    rows = tl.where(row_ok, rows, 0)
    segment = tl.program_id(1)
    b = rows // dim
    d = rows % dim
    g = d // channels_per_group
    bias = tl.zeros([BLOCK_R], dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + d).to(tl.float32)
    skip = tl.zeros([BLOCK_R], dtype=tl.float32)
    if HAS_D:
        skip = tl.load(D_ptr + d).to(tl.float32)
        if LANES > 1:
            skip = tl.where(part == 0, skip, 0.0)
    state_at = state_ptr + (rows * n_segments + segment) * N_STATE + first_state
    A = ()
    h = ()
    for n in tl.static_range(STATES):
        A = A + (tl.load(A_ptr + d * s_A_d + (first_state + n) * s_A_n).to(tl.float32) * 1.4426950408889634,)
        if OUTPUT:
            h = h + (tl.load(state_at + n),)
        else:
            h = h + (tl.zeros([BLOCK_R], dtype=tl.float32),)
    steps = tl.arange(0, 4)[None, :]
    u_row = (u_ptr + b * s_u_b + d * s_u_d)[:, None]
    dl_row = (delta_ptr + b * s_dl_b + d * s_dl_d)[:, None]
    z_row = (z_ptr + b * s_z_b + d * s_z_d)[:, None]
    o_row = (out_ptr + b * s_o_b + d * s_o_d)[:, None]
    B_row = 4 * (q_B_start + b * q_B_b + g * q_B_g) + first_state  # (R,): this thread's first B_n at step 0
    C_row = 4 * (q_C_start + b * q_C_b + g * q_C_g) + first_state
    dt_sum = tl.zeros([BLOCK_R], dtype=tl.float32)
    start = segment * seg_len
    stop = tl.minimum(start + seg_len, length)
    # The next 4 steps' dt, u (and z) are loaded while the current ones are used: one thread streams its own
    # row, and waiting on each load was most of the time (Nsight Compute: L1TEX scoreboard stalls).
    t = start + steps
    dt_next = tl.load(dl_row + t * s_dl_l, mask=t < stop, other=0.0)
    u_next = tl.load(u_row + t * s_u_l, mask=t < stop, other=0.0)
    if OUTPUT and HAS_Z:
        z_next = tl.load(z_row + t * s_z_l, mask=t < stop, other=0.0)
    # B and C likewise, one step ahead (N values each; these loads hit the cache, shared by all rows), unless
    # PREFETCH_BC is off: 2N fewer registers held across a step, the loads' latency exposed instead.
    last = length - 1  # steps past the end are read at the last step (in bounds), their values unused
    if PREFETCH_BC:
        B_next = _step_values(B_ptr, B_row, tl.minimum(start, last), q_B_l, STATES)
        if OUTPUT:
            C_next = _step_values(C_ptr, C_row, tl.minimum(start, last), q_C_l, STATES)
    for t0 in range(start, stop, 4):
        t = t0 + steps
        valid = (t < length) | WHOLE_GROUPS
        dt = dt_next.to(tl.float32) + bias[:, None]
        u = u_next.to(tl.float32)
        if OUTPUT and HAS_Z:
            zt = z_next.to(tl.float32)
        if WHOLE_GROUPS:  # the next group, or the last one again: in bounds, no mask
            ahead = tl.minimum(t0 + 4, length - 4) + steps
            dt_next = tl.load(dl_row + ahead * s_dl_l)
            u_next = tl.load(u_row + ahead * s_u_l)
            if OUTPUT and HAS_Z:
                z_next = tl.load(z_row + ahead * s_z_l)
        else:
            ahead = t + 4
            dt_next = tl.load(dl_row + ahead * s_dl_l, mask=ahead < stop, other=0.0)
            u_next = tl.load(u_row + ahead * s_u_l, mask=ahead < stop, other=0.0)
            if OUTPUT and HAS_Z:
                z_next = tl.load(z_row + ahead * s_z_l, mask=ahead < stop, other=0.0)
        if SOFTPLUS:
            dt = _softplus(dt)
        dt = tl.where(valid, dt, 0.0)  # past the end: a = 1, x = 0, the state passes unchanged
        dt_cols = _columns(dt)
        dtu_cols = _columns(dt * u)
        skip_cols = _columns(skip[:, None] * u)
        if not OUTPUT:
            dt_sum += tl.sum(dt, 1)
        ys = ()
        for j in tl.static_range(4):
            if PREFETCH_BC:
                B_j = B_next
                B_next = _step_values(B_ptr, B_row, tl.minimum(t0 + j + 1, last), q_B_l, STATES)
                if OUTPUT:
                    C_j = C_next
                    C_next = _step_values(C_ptr, C_row, tl.minimum(t0 + j + 1, last), q_C_l, STATES)
            else:
                B_j = _step_values(B_ptr, B_row, tl.minimum(t0 + j, last), q_B_l, STATES)
                if OUTPUT:
                    C_j = _step_values(C_ptr, C_row, tl.minimum(t0 + j, last), q_C_l, STATES)
            y = skip_cols[j]
            new_h = ()
            for n in tl.static_range(STATES):
                h_n = _exp2(dt_cols[j] * A[n]) * h[n] + dtu_cols[j] * B_j[n]
                if OUTPUT:
                    y += C_j[n] * h_n
                new_h = new_h + (h_n,)
            h = new_h
            ys = ys + (y,)
        if OUTPUT:
            y = _tile(ys[0], ys[1], ys[2], ys[3])
            if HAS_Z:
                y = _silu_gate(y, zt)  # the gate scales: gating each thread's part of the sum is exact
            if LANES > 1:
                y = _sum_over_lanes(y, LANES)
            stores = row_ok & (part == 0)  # one thread of a row stores it
            tl.store(o_row + t * s_o_l, y.to(out_ptr.dtype.element_ty), mask=valid & stores[:, None])
    if not OUTPUT:
        for n in tl.static_range(STATES):
            tl.store(state_at + n, h[n], mask=row_ok)
        tl.store(seg_dt_ptr + rows * n_segments + segment, dt_sum, mask=row_ok & (part == 0))


@triton.jit
def _rows_combine_kernel(end_ptr, seg_dt_ptr, A_ptr, entering_ptr, dim, n_segments, s_A_d, s_A_n,
                         N_STATE: tl.constexpr, SEGMENTS: tl.constexpr):
    """One program per row: segments' local end states (rows, n_segments, N) -> the states entering them.

    Entering state of segment s = sum over s' < s of (decay across s'+1 .. s-1) * end[s']: an exclusive scan
    with the linear-recurrence combine, done as an inclusive scan stored one segment later."""
    row = tl.program_id(0)
    seg = tl.arange(0, SEGMENTS)
    n = tl.arange(0, N_STATE)
    ok = seg[:, None] < n_segments
    at = (row * n_segments + seg[:, None]) * N_STATE + n[None, :]
    end = tl.load(end_ptr + at, mask=ok, other=0.0)
    dt_sum = tl.load(seg_dt_ptr + row * n_segments + seg, mask=seg < n_segments, other=0.0)
    A = tl.load(A_ptr + (row % dim) * s_A_d + n * s_A_n).to(tl.float32) * 1.4426950408889634
    decay = tl.exp2(dt_sum[:, None] * A[None, :])
    _, after = tl.associative_scan((decay, end), 0, recurrence_combine)
    tl.store(entering_ptr + at + N_STATE, after, mask=seg[:, None] + 1 < n_segments)
    tl.store(entering_ptr + at, tl.zeros_like(after), mask=seg[:, None] == 0)


def plan_segments(row_threads: int, length: int, sixteen_bit: bool = False) -> tuple[int, int]:
    """(segment length, segments): one segment when the rows alone give ROWS_TUNING['one_segment_threads']
    threads, else about ROWS_TUNING['threads'] (or 'threads_16bit') threads; segments of whole 4-step groups.
    row_threads: the threads one segment of every row takes (rows x lanes)."""
    if row_threads >= ROWS_TUNING["one_segment_threads"]:
        return 4 * triton.cdiv(length, 4), 1
    target = ROWS_TUNING["threads_16bit" if sixteen_bit else "threads"]
    wanted = max(1, target // max(row_threads, 1))
    most = max(1, length // ROWS_TUNING["min_segment"])
    segments = min(wanted, most, ROWS_TUNING["max_segments"])
    seg_len = 4 * triton.cdiv(triton.cdiv(length, segments), 4)
    return seg_len, triton.cdiv(length, seg_len)


def token_major(m: Tensor) -> Tensor:
    """(batch, G, N, L) -> the same values as a (batch, G, L, N) tensor with N contiguous, its storage offset
    and other strides multiples of 4 (a view when they already are, as the model's x_proj gives them; else a
    copy)."""
    t = m.transpose(-1, -2)
    in_fours = t.storage_offset() % 4 == 0 and all(stride % 4 == 0 for stride in t.stride()[:-1])
    return t if t.stride(-1) == 1 and in_fours else t.contiguous()


def _in_fours(t: Tensor) -> tuple:
    """A `token_major` tensor as the row kernel takes it: its storage's start (a one-element view at offset 0,
    so the kernel sees the allocation's alignment), then its offset and batch, group and step strides / 4."""
    return (t.as_strided((1,), (1,), 0), t.storage_offset() // 4, *(stride // 4 for stride in t.stride()[:3]))


def supports(n_state: int, B: Tensor, C: Tensor) -> bool:
    """Whether `scan_by_rows` takes these: N a multiple of 4, B and C varying in time ((batch, [G,] N, L))."""
    return n_state % 4 == 0 and B.dim() >= 3 and C.dim() >= 3


def scan_by_rows(u: Tensor, delta: Tensor, A: Tensor, Bg: Tensor, Cg: Tensor, D: Tensor | None, z: Tensor | None,
                 delta_bias: Tensor | None, delta_softplus: bool, out: Tensor) -> Tensor:
    """Inference scan into `out` (batch, dim, L). Bg, Cg: (batch, G, N, L) views; other shapes as the reference."""
    batch, dim, length = u.shape
    rows, n_state = batch * dim, A.shape[1]
    num_warps = ROWS_TUNING["num_warps"]
    block_r = 32 * num_warps
    lanes = ROWS_TUNING["lanes"] if n_state % (4 * ROWS_TUNING["lanes"]) == 0 else 1
    seg_len, segments = plan_segments(rows * lanes, length, sixteen_bit=u.element_size() == 2)
    f32 = dict(device=u.device, dtype=torch.float32)
    ends = torch.empty(rows, segments, n_state, **f32)
    entering = torch.zeros_like(ends) if segments == 1 else torch.empty_like(ends)
    seg_dt = torch.empty(rows, segments, **f32)
    zz = z if z is not None else u
    B_base, q_B_start, *q_B_strides = _in_fours(token_major(Bg))
    C_base, q_C_start, *q_C_strides = _in_fours(token_major(Cg))
    inputs = (u, delta, A, B_base, C_base, D if D is not None else A, zz, delta_bias if delta_bias is not None else A,
              out)
    sizes_and_strides = (rows, dim, length, seg_len, segments, dim // Bg.shape[1], q_B_start, q_C_start,
                         *u.stride(), *delta.stride(), *A.stride(), *q_B_strides, *q_C_strides, *zz.stride(),
                         *out.stride())
    flags = dict(N_STATE=n_state, BLOCK_R=block_r, SOFTPLUS=bool(delta_softplus), HAS_D=D is not None,
                 HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, WHOLE_GROUPS=length % 4 == 0,
                 PREFETCH_BC=bool(ROWS_TUNING["prefetch_bc"]), LANES=lanes, num_warps=num_warps)
    if ROWS_TUNING["maxnreg"]:
        flags["maxnreg"] = ROWS_TUNING["maxnreg"]
    grid = (triton.cdiv(rows, block_r // lanes), segments)
    if segments > 1:
        _rows_scan_kernel[grid](*inputs, ends, seg_dt, *sizes_and_strides, OUTPUT=False, **flags)
        _rows_combine_kernel[(rows,)](ends, seg_dt, A, entering, dim, segments, *A.stride(), N_STATE=n_state,
                                      SEGMENTS=triton.next_power_of_2(segments), num_warps=4)
    _rows_scan_kernel[grid](*inputs, entering, seg_dt, *sizes_and_strides, OUTPUT=True, **flags)
    return out
