"""The row kernel: inference selective scan in Triton, one thread per (batch, channel) row, for token-major inputs
(the model's inference layout on CUDA) and 16-bit ones. No scan tree, no shuffles.

A `tl.associative_scan` over a chunk (the chunk kernel) costs a tree of shuffles, shared-memory exchanges and
masked reductions: ~60 instructions per state update. Here every thread owns one row and keeps its N states in
registers (a tuple of N tensors, so that Triton cannot spread them over lanes), and walks its part of the sequence
step by step:

    a = exp2(dt * A log2 e),  h_n = a h_n + (dt u) B_n,  y = sum_n C_n h_n   (5 instructions per update)

Steps are loaded 4 at a time as one 16-byte vector per thread and split into columns inside the thread. In the
token-major layout neighbouring threads (channels) read neighbouring addresses, so every load is coalesced.

A row alone is far too little parallel work for a GPU (b 4 x d 128 = 512 threads), so the sequence is cut into
segments, in three launches:

1. `_rows_scan_kernel` with OUTPUT=False: every (row block, segment) program scans its segment from a zero
   state and writes the segment's end state and its sum of dt;
2. `_rows_combine_kernel`: per row, an associative scan over the segments turns those into the state entering
   each segment (the decay across a segment is exp(A * its sum of dt));
3. `_rows_scan_kernel` with OUTPUT=True: every program rescans its segment from its entering state and writes
   the output (D skip and silu(z) gate included).

Where the rows alone give enough threads (ONE_SEGMENT_THREADS), one segment and only the third launch.

B and C are read in place when they are token-major views whose strides and start are multiples of 4, such as
slices of a mamba_ssm-style x_proj output (rows of dt_rank + 2N values, B and C 4 and 20 values in): offsets are
written as 4 x an integer so that Triton can prove every 4 values aligned and load them as one vector
(`_step_values`). The model's own token path pads its projection so that B and C start 16-byte aligned
(`SpatioTemporalMamba._token_projection`).

The next step's B and C are loaded while the current one is used (a thread streams its own row: waiting on each
load was most of the time). The output pass is latency-bound: ~130 registers a thread (states, A, and the next
step's B and C) leave low occupancy.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .common import exp2_approx, join_columns, recurrence_combine, silu_gate, softplus_approx, split_columns

# Launch parameters (chosen with benchmarks/tune_scan_triton.py --kernel rows at vivim-b3's four stages, token-major):
# warps a program (32 rows each); the number of threads to aim for, which sets the number of segments, for float32
# and for 16-bit inputs; segments of at least MIN_SEGMENT steps, at most MAX_SEGMENTS of them (the combine kernel
# holds a row's segments in registers); one segment once the rows alone give ONE_SEGMENT_THREADS threads.
NUM_WARPS = 1
THREADS = 132 * 1024
THREADS_16BIT = 264 * 1024
ONE_SEGMENT_THREADS = 16384
MIN_SEGMENT = 64
MAX_SEGMENTS = 1024


@triton.jit
def _step_values(base_ptr, row_offset, t, quarter_step, N_STATE: tl.constexpr):
    """The N values of step t (in range: no mask) of a token-major tensor (N contiguous, 4 x `quarter_step`
    elements from step to step) from `base_ptr` + `row_offset` (R,) (multiples of 4): a tuple of N (R,) tensors.

    Offsets written as 4 x an integer let Triton prove every 4 values 4-aligned, so each 4 are one vector load
    into one thread. Triton specialises integer arguments only on divisibility by 16: with plain strides, views
    whose rows and starts are multiples of 4 but not of 16 would be loaded a value a lane and regrouped through
    shared memory."""
    quad = tl.arange(0, 4)[None, :]
    at = base_ptr + (row_offset + 4 * (t * quarter_step))[:, None]
    values = ()
    for q in tl.static_range(N_STATE // 4):
        values = values + split_columns(tl.load(at + 4 * q + quad).to(tl.float32))
    return values


@triton.jit
def _rows_scan_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, out_ptr, state_ptr, seg_dt_ptr,
    rows_total, dim, length, seg_len, n_segments, channels_per_group, q_B_start, q_C_start,
    s_u_b, s_u_d, s_u_l, s_dl_b, s_dl_d, s_dl_l, s_A_d, s_A_n, q_B_b, q_B_g, q_B_l, q_C_b, q_C_g, q_C_l,
    s_z_b, s_z_d, s_z_l, s_o_b, s_o_d, s_o_l,
    N_STATE: tl.constexpr, BLOCK_R: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, OUTPUT: tl.constexpr, WHOLE_GROUPS: tl.constexpr,
):
    """One program: BLOCK_R rows, one segment of `seg_len` steps (a multiple of 4). WHOLE_GROUPS: L is a multiple
    of 4, so no load needs a mask (masked loads cost a zeroing each).

    B and C are token-major, (batch, G, L, N) with N contiguous, so one step's N values are N/4 vector loads at
    fixed offsets from one pointer: B_ptr / C_ptr are their storages' starts, q_*_start their offsets and q_*_b,
    q_*_g, q_*_l their other strides, all in units of 4 elements (see `_step_values`).
    state_ptr: (rows, n_segments, N) float32.
    OUTPUT=False: scans from a zero state, writes each segment's end state there and its sum of dt to
    seg_dt_ptr (rows, n_segments). OUTPUT=True: scans from the entering state read there and writes the output."""
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
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
    state_at = state_ptr + (rows * n_segments + segment) * N_STATE
    A = ()
    h = ()
    for n in tl.static_range(N_STATE):
        A = A + (tl.load(A_ptr + d * s_A_d + n * s_A_n).to(tl.float32) * 1.4426950408889634,)
        if OUTPUT:
            h = h + (tl.load(state_at + n),)
        else:
            h = h + (tl.zeros([BLOCK_R], dtype=tl.float32),)
    steps = tl.arange(0, 4)[None, :]
    u_row = (u_ptr + b * s_u_b + d * s_u_d)[:, None]
    dl_row = (delta_ptr + b * s_dl_b + d * s_dl_d)[:, None]
    z_row = (z_ptr + b * s_z_b + d * s_z_d)[:, None]
    o_row = (out_ptr + b * s_o_b + d * s_o_d)[:, None]
    B_row = 4 * (q_B_start + b * q_B_b + g * q_B_g)  # (R,): this row's first B_n at step 0
    C_row = 4 * (q_C_start + b * q_C_b + g * q_C_g)
    dt_sum = tl.zeros([BLOCK_R], dtype=tl.float32)
    start = segment * seg_len
    stop = tl.minimum(start + seg_len, length)
    # The next 4 steps' dt, u (and z) are loaded while the current ones are used.
    t = start + steps
    dt_next = tl.load(dl_row + t * s_dl_l, mask=t < stop, other=0.0)
    u_next = tl.load(u_row + t * s_u_l, mask=t < stop, other=0.0)
    if OUTPUT and HAS_Z:
        z_next = tl.load(z_row + t * s_z_l, mask=t < stop, other=0.0)
    # B and C likewise, one step ahead (N values each; these loads hit the cache, shared by all rows).
    last = length - 1  # steps past the end are read at the last step (in bounds), their values unused
    B_next = _step_values(B_ptr, B_row, tl.minimum(start, last), q_B_l, N_STATE)
    if OUTPUT:
        C_next = _step_values(C_ptr, C_row, tl.minimum(start, last), q_C_l, N_STATE)
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
            dt = softplus_approx(dt)
        dt = tl.where(valid, dt, 0.0)  # past the end: a = 1, x = 0, the state passes unchanged
        dt_cols = split_columns(dt)
        dtu_cols = split_columns(dt * u)
        skip_cols = split_columns(skip[:, None] * u)
        if not OUTPUT:
            dt_sum += tl.sum(dt, 1)
        ys = ()
        for j in tl.static_range(4):
            B_j = B_next
            B_next = _step_values(B_ptr, B_row, tl.minimum(t0 + j + 1, last), q_B_l, N_STATE)
            if OUTPUT:
                C_j = C_next
                C_next = _step_values(C_ptr, C_row, tl.minimum(t0 + j + 1, last), q_C_l, N_STATE)
            y = skip_cols[j]
            new_h = ()
            for n in tl.static_range(N_STATE):
                h_n = exp2_approx(dt_cols[j] * A[n]) * h[n] + dtu_cols[j] * B_j[n]
                if OUTPUT:
                    y += C_j[n] * h_n
                new_h = new_h + (h_n,)
            h = new_h
            ys = ys + (y,)
        if OUTPUT:
            y = join_columns(ys[0], ys[1], ys[2], ys[3])
            if HAS_Z:
                y = silu_gate(y, zt)
            tl.store(o_row + t * s_o_l, y.to(out_ptr.dtype.element_ty), mask=valid & row_ok[:, None])
    if not OUTPUT:
        for n in tl.static_range(N_STATE):
            tl.store(state_at + n, h[n], mask=row_ok)
        tl.store(seg_dt_ptr + rows * n_segments + segment, dt_sum, mask=row_ok)


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


def plan_segments(rows: int, length: int, sixteen_bit: bool = False, threads: int | None = None) -> tuple[int, int]:
    """(segment length, segments) for `rows` rows of `length` steps: one segment when the rows alone give
    ONE_SEGMENT_THREADS threads, else about `threads` threads (default THREADS, or THREADS_16BIT for 16-bit
    inputs); segments of whole 4-step groups."""
    if rows >= ONE_SEGMENT_THREADS:
        return 4 * triton.cdiv(length, 4), 1
    target = threads or (THREADS_16BIT if sixteen_bit else THREADS)
    wanted = max(1, target // max(rows, 1))
    most = max(1, length // MIN_SEGMENT)
    segments = min(wanted, most, MAX_SEGMENTS)
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


def scan_rows(u: Tensor, delta: Tensor, A: Tensor, Bg: Tensor, Cg: Tensor, D: Tensor | None, z: Tensor | None,
              delta_bias: Tensor | None, delta_softplus: bool, out: Tensor, *, num_warps: int = NUM_WARPS,
              threads: int | None = None) -> Tensor:
    """Inference scan into `out` (batch, dim, L). Bg, Cg: (batch, G, N, L) views, N a multiple of 4; other shapes as
    the reference. threads: the threads to aim for (default: THREADS or THREADS_16BIT)."""
    batch, dim, length = u.shape
    rows, n_state = batch * dim, A.shape[1]
    block_r = 32 * num_warps
    seg_len, segments = plan_segments(rows, length, u.element_size() == 2, threads)
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
                 num_warps=num_warps)
    grid = (triton.cdiv(rows, block_r), segments)
    if segments > 1:
        _rows_scan_kernel[grid](*inputs, ends, seg_dt, *sizes_and_strides, OUTPUT=False, **flags)
        _rows_combine_kernel[(rows,)](ends, seg_dt, A, entering, dim, segments, *A.stride(), N_STATE=n_state,
                                      SEGMENTS=triton.next_power_of_2(segments), num_warps=4)
    _rows_scan_kernel[grid](*inputs, entering, seg_dt, *sizes_and_strides, OUTPUT=True, **flags)
    return out
