"""The one-pass kernel: inference selective scan in Triton for channel-major inputs, every state update's exp
computed once. The default where Triton has no Gluon (the Gluon kernels run the same algorithm faster).

The row kernel (`rows`) walks a row step by step, so it needs segments for parallel work, and segments need a
second pass (the state entering a segment is known only after the first): every exp is computed twice. This kernel
gets its parallel work from the time axis instead, as mamba-ssm's CUDA kernel does.

A program scans ROWS rows (channels of one batch element sharing B and C) over the sequence, in chunks of
THREADS x ITEMS steps; thread i owns the ITEMS consecutive steps [i ITEMS, (i+1) ITEMS) of a chunk. For one state
n at a time, per row:

1. up-sweep, inside the thread: a_j = exp(dt_j A_n), x_j = dt_j u_j B_j,n, and the thread's aggregate (the decay
   across its steps, the state its steps reach from zero); thread 0 starts from the state carried in from the
   previous chunk instead of zero;
2. across threads: an inclusive `tl.associative_scan` of the aggregates with the linear-recurrence combine gives
   the state at the end of every thread's steps; `tl.gather` from thread i-1 gives the state entering thread i
   (thread 0 gets the last thread's: the state carried into the next chunk);
3. down-sweep, inside the thread: h_j = a_j h_j-1 + x_j from the entering state, y_j += C_j,n h_j.

That is ~16-18 instructions per state update, the tree across threads paid once per ITEMS updates; a
`tl.associative_scan` over a whole chunk (the chunk kernel) lays out 4 steps a thread and pays the tree every 4
updates. The next state's inputs are loaded while the current one is scanned, and the chunk's z before the state
loop. The loop over states is a loop, not unrolled: one body to compile and to keep in the instruction cache.

Forward only, no gradients; per-step inputs and the output have unit stride along L (coalesced loads).
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl
from torch import Tensor

from .common import (exp2_approx, join_columns, recurrence_combine, silu_gate, skip_and_bias, softplus_approx,
                     split_columns)

# Launch parameters (chosen with benchmarks/tune_scan_triton.py --kernel one_pass): steps per thread (a multiple
# of 4) and warps per program. Rows (channels) a program: 2 (sharing B/C loads) where that still leaves >= 4
# programs per multiprocessor, else 1 (`rows_per_program`).
ITEMS = 8
NUM_WARPS = 4


@functools.lru_cache(maxsize=None)
def _multiprocessors(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def rows_per_program(u: Tensor, channels_per_group: int) -> int:
    """Rows a program scans together (they share B/C loads): 2 where the grid still has >= 4 programs per
    multiprocessor and a B/C group holds an even number of channels, else 1."""
    batch, dim, _ = u.shape
    if u.device.type == "cuda":
        index = u.device.index if u.device.index is not None else torch.cuda.current_device()
        enough = batch * dim // 2 >= 4 * _multiprocessors(index)
    else:  # Triton's CPU interpreter (tests)
        enough = True
    return 2 if enough and channels_per_group % 2 == 0 else 1


@triton.jit
def _load_columns(row_ptr, offsets, valid, ITEMS: tl.constexpr, EVEN: tl.constexpr):
    """The ITEMS consecutive values each thread owns as a tuple of ITEMS (THREADS,) float32 tensors.
    offsets: (THREADS, 4) = thread * ITEMS + 0..3; loaded 4 at a time (one vector load per thread)."""
    columns = ()
    for k in tl.static_range(ITEMS // 4):
        if EVEN:
            values = tl.load(row_ptr + offsets + 4 * k)
        else:
            values = tl.load(row_ptr + offsets + 4 * k, mask=valid[k], other=0.0)
        columns = columns + split_columns(values.to(tl.float32))
    return columns


@triton.jit
def _state_inputs(A_rows, s_A_d, s_A_n, carry_at, B_chunk, s_B_n, C_chunk, s_C_n, n, tid, first, offsets, valid,
                  N_STATE: tl.constexpr, ROWS: tl.constexpr, ITEMS: tl.constexpr, EVEN: tl.constexpr):
    """State n's inputs for one chunk: per row A_n log2(e) and the carried state (thread 0's); the B_n and C_n
    columns, shared by the rows."""
    A2 = ()
    carry = ()
    for r in tl.static_range(ROWS):
        A2 = A2 + (tl.load(A_rows + r * s_A_d + n * s_A_n).to(tl.float32) * 1.4426950408889634,)  # exp -> exp2
        carry = carry + (tl.load(carry_at + r * N_STATE + n + tid, mask=first, other=0.0),)
    B = _load_columns(B_chunk + n * s_B_n, offsets, valid, ITEMS, EVEN)
    C = _load_columns(C_chunk + n * s_C_n, offsets, valid, ITEMS, EVEN)
    return A2, carry, B, C


@triton.jit
def _up_sweep(dt, dtu, B, A2, carry, dt_sum, r: tl.constexpr, ITEMS: tl.constexpr):
    """Row r's steps in this thread for one state: a_j = exp(dt_j A), x_j = dt_j u_j B_j, the decay across
    them (a_all) and the state they reach (x_all) from `carry` (thread 0: the carried state; others: zero)."""
    a = ()
    x = ()
    a_all = exp2_approx(dt_sum[r] * A2)
    x_all = carry
    for j in tl.static_range(ITEMS):
        a_j = exp2_approx(dt[r * ITEMS + j] * A2)
        x_j = dtu[r * ITEMS + j] * B[j]
        a = a + (a_j,)
        x = x + (x_j,)
        x_all = a_j * x_all + x_j
    return a, x, a_all, x_all


@triton.jit
def _down_sweep(a, x, h, C, ys, r: tl.constexpr, ITEMS: tl.constexpr, ROWS: tl.constexpr):
    """h_j = a_j h_j-1 + x_j from the state `h` entering row r's steps in this thread; ys_j += C_j h_j."""
    new_ys = ()
    for i in tl.static_range(ROWS * ITEMS):
        if i // ITEMS == r:
            h = a[i % ITEMS] * h + x[i % ITEMS]
            new_ys = new_ys + (ys[i] + C[i % ITEMS] * h,)
        else:
            new_ys = new_ys + (ys[i],)
    return new_ys


@triton.jit
def _combine_2(a0_l, x0_l, a1_l, x1_l, a0_r, x0_r, a1_r, x1_r):
    """`recurrence_combine` for two rows at once."""
    a0, x0 = recurrence_combine(a0_l, x0_l, a0_r, x0_r)
    a1, x1 = recurrence_combine(a1_l, x1_l, a1_r, x1_r)
    return a0, x0, a1, x1


@triton.jit
def _ends_of_threads(a_all, x_all, ROWS: tl.constexpr):
    """Per row, the inclusive scan over threads of (decay, reached state): the state at each thread's end."""
    if ROWS == 1:
        _, e0 = tl.associative_scan((a_all[0], x_all[0]), 0, recurrence_combine)
        ends = (e0,)
    else:
        _, e0, _, e1 = tl.associative_scan((a_all[0], x_all[0], a_all[1], x_all[1]), 0, _combine_2)
        ends = (e0, e1)
    return ends


@triton.jit
def _scan_state(inputs, n, ys, dt, dtu, dt_sum, carry_at, tid, first, previous, N_STATE: tl.constexpr,
                ROWS: tl.constexpr, ITEMS: tl.constexpr):
    """State n of the chunk for the ROWS rows, from its `_state_inputs`: up-sweep, scan across threads,
    down-sweep into ys; thread 0 stores the chunk's end state (the state carried into the next chunk)."""
    A2, carry, B_n, C_n = inputs
    a = ()
    x = ()
    a_all = ()
    x_all = ()
    for r in tl.static_range(ROWS):
        a_r, x_r, a_all_r, x_all_r = _up_sweep(dt, dtu, B_n, A2[r], carry[r], dt_sum, r, ITEMS)
        a = a + (a_r,)
        x = x + (x_r,)
        a_all = a_all + (a_all_r,)
        x_all = x_all + (x_all_r,)
    ends = _ends_of_threads(a_all, x_all, ROWS)
    for r in tl.static_range(ROWS):
        # thread 0 gets the last thread's end state: the state carried into the next chunk
        before = tl.gather(ends[r], previous, 0)
        tl.store(carry_at + r * N_STATE + n + tid, before, mask=first)
        ys = _down_sweep(a[r], x[r], tl.where(first, carry[r], before), C_n, ys, r, ITEMS, ROWS)
    return ys


@triton.jit
def _one_pass_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, out_ptr, carry_ptr,
    dim, length, channels_per_group,
    s_u_b, s_u_d, s_dl_b, s_dl_d, s_A_d, s_A_n, s_B_b, s_B_g, s_B_n, s_C_b, s_C_g, s_C_n,
    s_z_b, s_z_d, s_o_b, s_o_d,
    N_STATE: tl.constexpr, ITEMS: tl.constexpr, THREADS: tl.constexpr, ROWS: tl.constexpr, SOFTPLUS: tl.constexpr,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, EVEN: tl.constexpr,
):
    """One program per ROWS rows (1 or 2 consecutive channels of one batch element and one B/C group).
    EVEN: L is a multiple of THREADS x ITEMS (no masks). carry_ptr: (rows, N) float32 scratch, written and
    read by the program's thread 0 only."""
    first_row = tl.program_id(0) * ROWS
    b = first_row // dim
    d0 = first_row % dim
    g = d0 // channels_per_group
    tid = tl.arange(0, THREADS)
    first = tid == 0
    previous = tl.where(first, THREADS - 1, tid - 1)  # thread 0 reads the last thread: the chunk's end state
    offsets = tid[:, None] * ITEMS + tl.arange(0, 4)[None, :]
    carry_at = carry_ptr + first_row * N_STATE  # per row and state, the state entering the chunk (thread 0's)
    for slot in range(ROWS * N_STATE):
        tl.store(carry_at + slot + tid, tl.zeros([THREADS], dtype=tl.float32), mask=first)
    B_row = B_ptr + b * s_B_b + g * s_B_g
    C_row = C_ptr + b * s_C_b + g * s_C_g
    for start in range(0, length, THREADS * ITEMS):
        valid = ()
        for k in tl.static_range(ITEMS // 4):
            valid = valid + (start + offsets + 4 * k < length,)
        dt = ()  # per row, the thread's ITEMS steps: dt, dt u, and the output so far (D u)
        dtu = ()
        ys = ()
        dt_sum = ()
        for r in tl.static_range(ROWS):
            dl_row = delta_ptr + b * s_dl_b + (d0 + r) * s_dl_d + start
            u_row = u_ptr + b * s_u_b + (d0 + r) * s_u_d + start
            skip, bias = skip_and_bias(D_ptr, bias_ptr, d0 + r, HAS_D, HAS_BIAS)
            total = tl.zeros([THREADS], dtype=tl.float32)
            for k in tl.static_range(ITEMS // 4):
                if EVEN:
                    dt_k = tl.load(dl_row + offsets + 4 * k).to(tl.float32) + bias
                    u_k = tl.load(u_row + offsets + 4 * k).to(tl.float32)
                else:
                    dt_k = tl.load(dl_row + offsets + 4 * k, mask=valid[k], other=0.0).to(tl.float32) + bias
                    u_k = tl.load(u_row + offsets + 4 * k, mask=valid[k], other=0.0).to(tl.float32)
                if SOFTPLUS:
                    dt_k = softplus_approx(dt_k)
                if not EVEN:
                    dt_k = tl.where(valid[k], dt_k, 0.0)  # past the end: a = 1, x = 0
                dt = dt + split_columns(dt_k)
                dtu = dtu + split_columns(dt_k * u_k)
                ys = ys + split_columns(skip * u_k)
                total += tl.sum(dt_k, 1)
            dt_sum = dt_sum + (total,)
        # The next state's inputs are loaded while the current one is scanned (each load would otherwise wait
        # on the cache). B and C are loaded once for the ROWS rows.
        A_rows = A_ptr + d0 * s_A_d
        nxt = _state_inputs(A_rows, s_A_d, s_A_n, carry_at, B_row + start, s_B_n, C_row + start, s_C_n, 0, tid,
                            first, offsets, valid, N_STATE, ROWS, ITEMS, EVEN)
        z_tiles = ()  # the chunk's z, loaded before the state loop and used after it
        if HAS_Z:
            for r in tl.static_range(ROWS):
                z_row = z_ptr + b * s_z_b + (d0 + r) * s_z_d + start
                for k in tl.static_range(ITEMS // 4):
                    if EVEN:
                        z_tiles = z_tiles + (tl.load(z_row + offsets + 4 * k),)
                    else:
                        z_tiles = z_tiles + (tl.load(z_row + offsets + 4 * k, mask=valid[k], other=0.0),)
        for n in range(N_STATE):  # a loop, not unrolled: one body to compile and to cache
            current = nxt
            nxt = _state_inputs(A_rows, s_A_d, s_A_n, carry_at, B_row + start, s_B_n, C_row + start, s_C_n,
                                tl.minimum(n + 1, N_STATE - 1), tid, first, offsets, valid, N_STATE, ROWS,
                                ITEMS, EVEN)
            ys = _scan_state(current, n, ys, dt, dtu, dt_sum, carry_at, tid, first, previous, N_STATE, ROWS,
                             ITEMS)
        for r in tl.static_range(ROWS):
            o_row = out_ptr + b * s_o_b + (d0 + r) * s_o_d + start
            for k in tl.static_range(ITEMS // 4):
                y = join_columns(ys[r * ITEMS + 4 * k], ys[r * ITEMS + 4 * k + 1], ys[r * ITEMS + 4 * k + 2],
                                 ys[r * ITEMS + 4 * k + 3])
                if HAS_Z:
                    y = silu_gate(y, z_tiles[r * (ITEMS // 4) + k].to(tl.float32))
                if EVEN:
                    tl.store(o_row + offsets + 4 * k, y.to(out_ptr.dtype.element_ty))
                else:
                    tl.store(o_row + offsets + 4 * k, y.to(out_ptr.dtype.element_ty), mask=valid[k])


def scan_one_pass(u: Tensor, delta: Tensor, A: Tensor, Bg: Tensor, Cg: Tensor, D: Tensor | None,
                  z: Tensor | None, delta_bias: Tensor | None, delta_softplus: bool, out: Tensor, *,
                  items: int = ITEMS, num_warps: int = NUM_WARPS, rows: int | None = None) -> Tensor:
    """Inference scan into `out` (batch, dim, L), contiguous along L. Bg, Cg: (batch, G, N, L) views.
    rows: channels a program, 1 or 2 (default: `rows_per_program`)."""
    batch, dim, length = u.shape
    n_state = A.shape[1]
    channels_per_group = dim // Bg.shape[1]
    if rows is None:
        rows = rows_per_program(u, channels_per_group)
    if rows not in (1, 2) or channels_per_group % rows:
        raise ValueError(f"the one-pass kernel scans 1 or 2 channels of one B/C group a program, not {rows}")
    threads = 32 * num_warps
    while num_warps > 1 and threads * items // 2 >= length:  # short sequences: fewer threads per row
        num_warps //= 2
        threads //= 2
    zz = z if z is not None else u
    carry = torch.empty(batch * dim, n_state, device=u.device, dtype=torch.float32)
    _one_pass_kernel[(batch * dim // rows,)](
        u, delta, A, Bg, Cg, D if D is not None else A, zz, delta_bias if delta_bias is not None else A, out, carry,
        dim, length, channels_per_group,
        *u.stride()[:2], *delta.stride()[:2], *A.stride(), *Bg.stride()[:3], *Cg.stride()[:3],
        *zz.stride()[:2], *out.stride()[:2],
        N_STATE=n_state, ITEMS=items, THREADS=threads, ROWS=rows, SOFTPLUS=bool(delta_softplus),
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
        EVEN=length % (threads * items) == 0, num_warps=num_warps,
    )
    return out
