"""The Gluon one-pass kernel with B and C staged through shared memory by TMA (Hopper): `auto`'s choice for
channel-major inference on GPUs of compute capability 9.x where B and C are float32, contiguous and L is a whole
number of chunks (see `scan.policy`).

The one-pass kernel (`one_pass`) reads B and C straight from global memory: each thread owns 8 consecutive steps,
so every 16-byte load of a warp touches 8 cache lines half-used, and B and C loads then dominate the L1's traffic.
Here, for every SPAN states of a chunk (a "stage"), one thread issues two TMA copies, B and C of those states as
(SPAN, 32, 32) float32 boxes of the chunk's 1024 steps (128-byte swizzle, so that the reads are free of bank
conflicts), into one of STAGES buffers, STAGES - 1 stages ahead; every thread reads its 8 steps of a state with
two 16-byte shared-memory loads. The scan itself is the one-pass kernel's paired, sequential algorithm; the last pair
of a chunk loads the next chunk's dt and u (their latency hides behind the pair's scans).

A program may scan ROWS channels of one batch element with ROWS x WARPS warps, sharing the staged B and C (one L2
read of B/C for ROWS channels). One channel a program is the fastest: Triton puts a CTA barrier around each TMA
operation and the exchange, and with 8 or 16 warps a CTA those barriers cost more than the shared reads save.

Needs: Gluon with Hopper TMA (Triton 3.6), compute capability 9.x, float32 B and C contiguous (batch, G, N, L) and
16-byte aligned, L a multiple of the chunk (CHUNK_STEPS), channels a multiple of ROWS inside each group, N a
multiple of SPAN, the per-step inputs (u, delta, z) contiguous along L.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from . import common
from .common import TensorDescriptor, mbarrier, tma

# Launch parameters (chosen with benchmarks/tune_scan_gluon.py --kernel one_pass_tma): channels a program, warps a
# channel, steps a thread, B/C buffers, states a buffer (a TMA box of (SPAN, 32, 32) for B and for C), and the
# register cap (128: 4 programs of 4 warps a multiprocessor).
ROWS = 1
WARPS = 4
ITEMS = 8
STAGES = 2
SPAN = 2
MAXNREG = 128
CHUNK_STEPS = 32 * WARPS * ITEMS  # steps a chunk: L must be a multiple (vivim_core.ops.scan.policy.TMA_CHUNK_STEPS)


if common.tma_available():
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl

    from .common import combine, ex2, fold_warp_totals, rcp, softplus, warp_scan_two

    @gluon.jit
    def _last(values, last_item):
        """(ROWS, THREADS, ITEMS) -> each thread's last item (ROWS, THREADS)."""
        return gl.sum(gl.where(last_item, values, 0.0), axis=2)

    @gluon.jit
    def _tile(smem, stage, state: gl.constexpr, tile_layout: gl.constexpr, shared_b: gl.constexpr,
              THREADS: gl.constexpr, ITEMS: gl.constexpr):
        """State `state` of a staged (STAGES, SPAN, 32, 32) B or C buffer as (1, THREADS, ITEMS), the same for every
        row."""
        values = smem.index(stage).slice(state, 1, dim=0).load(tile_layout)  # (1, 32, 32), replicated over groups
        return gl.expand_dims(gl.convert_layout(gl.reshape(values, [THREADS, ITEMS]), shared_b), 0)

    @gluon.jit
    def _issue(B_desc, C_desc, Bs, Cs, bars, stage_it, total, b_row0, c_row0, N_STATE: gl.constexpr,
               SPAN: gl.constexpr, STAGES: gl.constexpr, TILE_ROWS: gl.constexpr, CHUNK: gl.constexpr):
        """TMA copies of B and C for states SPAN q .. SPAN q + SPAN - 1 of a chunk (stage_it = chunk * N / SPAN + q),
        one (SPAN, 32, 32) box each, into stage stage_it % STAGES. One mbarrier a stage, one expect and two copies: each
        TMA operation costs a CTA barrier (Triton's membar pass orders every op touching the mbarrier; four
        copies of (32, 32) tiles a pair cost 6)."""
        stage = stage_it % STAGES
        per_chunk = N_STATE // SPAN
        n = SPAN * (stage_it % per_chunk)
        step_row = (stage_it // per_chunk) * TILE_ROWS  # the chunk's first 32-step row
        bar = bars.index(stage)
        ok = stage_it < total
        mbarrier.expect(bar, 2 * SPAN * CHUNK * 4, pred=ok)
        tma.async_copy_global_to_shared(B_desc, [b_row0 + n, step_row, 0], bar, Bs.index(stage), pred=ok)
        tma.async_copy_global_to_shared(C_desc, [c_row0 + n, step_row, 0], bar, Cs.index(stage), pred=ok)

    @gluon.jit
    def _entering_two(p0, x0, p1, x1, carried0, carried1, warp, exchange, WARPS: gl.constexpr,
                      ROWS: gl.constexpr, per_thread: gl.constexpr):
        """`one_pass._entering_two` for ROWS rows at once: (ROWS, THREADS) aggregates in, the states
        entering each thread's steps and at the chunk's end out; each row reads its own warps' totals."""
        p0i, x0i, p1i, x1i, p0e, x0e, p1e, x1e = warp_scan_two(p0, x0, p1, x1)
        exchange.store(gl.join(gl.join(p0i, x0i), gl.join(p1i, x1i)))  # (ROWS, THREADS, 2, 2)
        totals: gl.constexpr = gl.BlockedLayout([1, 1, 2, 2], [1, 32, 1, 1], [ROWS, WARPS, 1, 1], [3, 2, 1, 0])
        warp0, warp1, end0, end1 = fold_warp_totals(exchange, gl.zeros_like(p0e) + gl.expand_dims(carried0, 1),
                                                      gl.zeros_like(p0e) + gl.expand_dims(carried1, 1), warp,
                                                      totals, per_thread, WARPS, 1)
        return p0e * warp0 + x0e, p1e * warp1 + x1e, end0, end1

    @gluon.jit
    def _sequential_h(a, x, entering, first_item):
        """h_j = a_j h_j-1 + x_j along each thread's steps from the entering state (ROWS, THREADS)."""
        x = gl.where(first_item, a * gl.expand_dims(entering, 2) + x, x)
        return gl.associative_scan((a, x), 2, combine)[1]

    @gluon.jit
    def _state_pair(ys, dt, dtu, dt_sum, B_a, B_b, C_a, C_b, n, start, parity, d, A_ptr, s_A_d, s_A_n, carry_rows,
                    carry_store, first, warp, exchange, last_item, first_item, dl_next, u_next,
                    N_STATE: gl.constexpr, WARPS: gl.constexpr, ROWS: gl.constexpr, per_thread: gl.constexpr,
                    LOAD_NEXT: gl.constexpr):
        """States n and n + 1 of a chunk for every row (the one-pass kernel's paired, sequential step): returns
        ys + C h of both, and dt, dtu as given or, with LOAD_NEXT (the chunk's last pair), the raw dt and u at
        dl_next, u_next (the next chunk's), loaded once the pair's a and x no longer need dt and dt u, so that
        their latency hides behind the pair's scans. The chunk's end states go to the carry scratch."""
        carried_a = gl.where(start > 0, gl.load(carry_rows + parity * N_STATE + n), 0.0)  # (ROWS,)
        carried_b = gl.where(start > 0, gl.load(carry_rows + parity * N_STATE + n + 1), 0.0)
        A2_a = gl.load(A_ptr + d * s_A_d + n * s_A_n).to(gl.float32) * 1.4426950408889634
        A2_b = gl.load(A_ptr + d * s_A_d + (n + 1) * s_A_n).to(gl.float32) * 1.4426950408889634
        a_a = ex2(dt * gl.expand_dims(gl.expand_dims(A2_a, 1), 2))
        x_a = dtu * B_a
        a_b = ex2(dt * gl.expand_dims(gl.expand_dims(A2_b, 1), 2))
        x_b = dtu * B_b
        reach_a = _last(gl.associative_scan((a_a, x_a), 2, combine)[1], last_item)
        reach_b = _last(gl.associative_scan((a_b, x_b), 2, combine)[1], last_item)
        if LOAD_NEXT:
            dt = gl.load(dl_next)
            dtu = gl.load(u_next)
        entering_a, entering_b, end_a, end_b = _entering_two(
            ex2(dt_sum * gl.expand_dims(A2_a, 1)), reach_a, ex2(dt_sum * gl.expand_dims(A2_b, 1)), reach_b,
            carried_a, carried_b, warp, exchange, WARPS, ROWS, per_thread)
        h_a = _sequential_h(a_a, x_a, entering_a, first_item)
        h_b = _sequential_h(a_b, x_b, entering_b, first_item)
        parity_next = 1 - parity
        gl.store(carry_store + parity_next * N_STATE + n, end_a, mask=first)
        gl.store(carry_store + parity_next * N_STATE + n + 1, end_b, mask=first)
        return ys + C_a * h_a + C_b * h_b, dt, dtu

    @gluon.jit
    def _stage(ys, dt, dtu, dt_sum, n0, start, parity, B_desc, C_desc, Bs, Cs, bars, total, b_row0, c_row0, d, A_ptr,
               s_A_d, s_A_n, carry_rows, carry_store, first, warp, exchange, last_item, first_item, dl_next, u_next,
               tile_layout: gl.constexpr, shared_b: gl.constexpr, per_thread: gl.constexpr, N_STATE: gl.constexpr,
               SPAN: gl.constexpr, STAGES: gl.constexpr, TILE_ROWS: gl.constexpr, CHUNK: gl.constexpr,
               THREADS: gl.constexpr, ITEMS: gl.constexpr, WARPS: gl.constexpr, ROWS: gl.constexpr,
               LOAD_NEXT: gl.constexpr):
        """States n0 .. n0 + SPAN - 1 of the chunk at `start` from their staged B/C buffer, after refilling the
        buffer the previous stage read. Returns ys, and dt, dtu as `_state_pair` (LOAD_NEXT: its last pair)."""
        stage_it = (start // CHUNK) * (N_STATE // SPAN) + n0 // SPAN
        # the stage read by the previous iteration is free: refill it
        _issue(B_desc, C_desc, Bs, Cs, bars, stage_it + STAGES - 1, total, b_row0, c_row0, N_STATE, SPAN, STAGES,
               TILE_ROWS, CHUNK)
        stage = stage_it % STAGES
        mbarrier.wait(bars.index(stage), (stage_it // STAGES) & 1)
        for pair in gl.static_range(SPAN // 2):  # states n0 + 2 pair and the next one
            B_a = _tile(Bs, stage, 2 * pair, tile_layout, shared_b, THREADS, ITEMS)
            B_b = _tile(Bs, stage, 2 * pair + 1, tile_layout, shared_b, THREADS, ITEMS)
            C_a = _tile(Cs, stage, 2 * pair, tile_layout, shared_b, THREADS, ITEMS)
            C_b = _tile(Cs, stage, 2 * pair + 1, tile_layout, shared_b, THREADS, ITEMS)
            ys, dt, dtu = _state_pair(ys, dt, dtu, dt_sum, B_a, B_b, C_a, C_b, n0 + 2 * pair, start, parity, d, A_ptr,
                                      s_A_d, s_A_n, carry_rows, carry_store, first, warp, exchange, last_item,
                                      first_item, dl_next, u_next, N_STATE, WARPS, ROWS, per_thread,
                                      LOAD_NEXT and pair == SPAN // 2 - 1)
        return ys, dt, dtu

    @gluon.jit
    def _one_pass_tma_kernel(
        u_ptr, delta_ptr, A_ptr, D_ptr, z_ptr, bias_ptr, out_ptr, carry_ptr, B_desc, C_desc,
        dim, length, channels_per_group,
        s_u_b, s_u_d, s_dl_b, s_dl_d, s_A_d, s_A_n, rows_B_b, rows_B_g, rows_C_b, rows_C_g,
        s_z_b, s_z_d, s_o_b, s_o_d,
        N_STATE: gl.constexpr, ROWS: gl.constexpr, WARPS: gl.constexpr, ITEMS: gl.constexpr,
        STAGES: gl.constexpr, SPAN: gl.constexpr, SOFTPLUS: gl.constexpr, HAS_D: gl.constexpr, HAS_Z: gl.constexpr,
        HAS_BIAS: gl.constexpr,
    ):
        """One program per ROWS consecutive channels of one batch element. B_desc, C_desc: TMA descriptors of B
        and C as (batch * G * N, L / 32, 32) float32, boxes of (SPAN, 32, 32); rows_* the strides of batch and group
        along their first dimension (in state rows).
        carry_ptr: (rows, 2, N) float32 scratch, as in `one_pass`."""
        THREADS: gl.constexpr = 32 * WARPS
        CHUNK: gl.constexpr = THREADS * ITEMS
        TILE_ROWS: gl.constexpr = CHUNK // 32
        STAGES_A_CHUNK: gl.constexpr = N_STATE // SPAN
        rows3: gl.constexpr = gl.BlockedLayout([1, 1, ITEMS], [1, 32, 1], [ROWS, WARPS, 1], [2, 1, 0])
        per_thread: gl.constexpr = gl.SliceLayout(2, rows3)  # (ROWS, THREADS)
        per_row: gl.constexpr = gl.SliceLayout(1, per_thread)  # (ROWS,)
        shared_b: gl.constexpr = gl.SliceLayout(0, rows3)  # (THREADS, ITEMS), the same for every row
        tile_layout: gl.constexpr = gl.BlockedLayout([1, 1, ITEMS], [1, 8, 4], [1, ROWS * WARPS, 1], [2, 1, 0])

        first_row = gl.program_id(0) * ROWS
        b = first_row // dim
        d0 = first_row % dim
        g = d0 // channels_per_group
        d = d0 + gl.arange(0, ROWS, layout=per_row)  # (ROWS,)
        row = first_row + gl.arange(0, ROWS, layout=per_row)
        tid = gl.expand_dims(gl.arange(0, THREADS, layout=gl.SliceLayout(0, per_thread)), 0)  # (1, THREADS)
        warp = tid // 32
        first = tid == 0
        item = gl.arange(0, ITEMS, layout=gl.SliceLayout(0, gl.SliceLayout(1, rows3)))
        item = gl.expand_dims(gl.expand_dims(item, 0), 1)  # (1, 1, ITEMS)
        offsets = gl.expand_dims(tid * ITEMS, 2) + item  # (1, THREADS, ITEMS)
        last_item = item == ITEMS - 1
        first_item = item == 0

        skip = gl.zeros([ROWS], gl.float32, per_row)
        if HAS_D:
            skip = gl.load(D_ptr + d).to(gl.float32)
        bias = gl.zeros([ROWS], gl.float32, per_row)
        if HAS_BIAS:
            bias = gl.load(bias_ptr + d).to(gl.float32)
        skip3 = gl.expand_dims(gl.expand_dims(skip, 1), 2)
        bias3 = gl.expand_dims(gl.expand_dims(bias, 1), 2)
        dl_rows = gl.expand_dims(gl.expand_dims(delta_ptr + b * s_dl_b + d * s_dl_d, 1), 2) + offsets
        u_rows = gl.expand_dims(gl.expand_dims(u_ptr + b * s_u_b + d * s_u_d, 1), 2) + offsets
        z_rows = gl.expand_dims(gl.expand_dims(z_ptr + b * s_z_b + d * s_z_d, 1), 2) + offsets
        o_rows = gl.expand_dims(gl.expand_dims(out_ptr + b * s_o_b + d * s_o_d, 1), 2) + offsets
        carry_rows = carry_ptr + row * (2 * N_STATE)  # (ROWS,)
        carry_store = gl.expand_dims(carry_rows, 1) + tid * 0  # (ROWS, THREADS), stored by thread 0 of each row
        b_row0 = b * rows_B_b + g * rows_B_g
        c_row0 = b * rows_C_b + g * rows_C_g

        Bs = gl.allocate_shared_memory(gl.float32, [STAGES, SPAN, 32, 32], B_desc.layout)
        Cs = gl.allocate_shared_memory(gl.float32, [STAGES, SPAN, 32, 32], C_desc.layout)
        bars = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        for s in gl.static_range(STAGES):
            mbarrier.init(bars.index(s), count=1)
        exchange = gl.allocate_shared_memory(gl.float32, [ROWS, THREADS, 2, 2],
                                             gl.SwizzledSharedLayout(1, 1, 1, [3, 2, 1, 0]))
        total = (length // CHUNK) * STAGES_A_CHUNK
        for early in gl.static_range(STAGES - 1):  # the first stages' tiles
            _issue(B_desc, C_desc, Bs, Cs, bars, early, total, b_row0, c_row0, N_STATE, SPAN, STAGES, TILE_ROWS,
                   CHUNK)

        # the first chunk's dt and u; later ones are loaded by the chunk before, in its last pair
        dt_raw = gl.load(dl_rows)
        u_raw = gl.load(u_rows)
        for start in range(0, length, CHUNK):
            parity = (start // CHUNK) % 2
            dt = dt_raw.to(gl.float32) + bias3
            u = u_raw.to(gl.float32)
            if HAS_Z:
                z = gl.load(z_rows + start).to(gl.float32)
            if SOFTPLUS:
                dt = softplus(dt)
            dtu = dt * u
            ys = skip3 * u
            dt_sum = gl.sum(dt, axis=2)  # (ROWS, THREADS)
            next_start = gl.minimum(start + CHUNK, length - CHUNK)  # (the last chunk loads itself again)
            for n0 in range(0, N_STATE - SPAN, SPAN):
                ys, _dt, _dtu = _stage(ys, dt, dtu, dt_sum, n0, start, parity, B_desc, C_desc, Bs, Cs, bars, total,
                                       b_row0, c_row0, d, A_ptr, s_A_d, s_A_n, carry_rows, carry_store, first, warp,
                                       exchange, last_item, first_item, dl_rows + next_start, u_rows + next_start,
                                       tile_layout, shared_b, per_thread, N_STATE, SPAN, STAGES, TILE_ROWS, CHUNK,
                                       THREADS, ITEMS, WARPS, ROWS, False)
            ys, dt_raw, u_raw = _stage(ys, dt, dtu, dt_sum, N_STATE - SPAN, start, parity, B_desc, C_desc, Bs, Cs, bars,
                                       total, b_row0, c_row0, d, A_ptr, s_A_d, s_A_n, carry_rows, carry_store, first,
                                       warp, exchange, last_item, first_item, dl_rows + next_start,
                                       u_rows + next_start, tile_layout, shared_b, per_thread, N_STATE, SPAN, STAGES,
                                       TILE_ROWS, CHUNK, THREADS, ITEMS, WARPS, ROWS, True)
            if HAS_Z:
                ys = ys * z * rcp(1.0 + ex2(z * -1.4426950408889634))  # y * silu(z)
            gl.store(o_rows + start, ys.to(out_ptr.dtype.element_ty))
        for s in gl.static_range(STAGES):
            mbarrier.invalidate(bars.index(s))


@functools.lru_cache(maxsize=None)
def _tile_layout():
    """The staged B/C tiles' shared layout (built once: building it costs a few microseconds a call)."""
    return gl.NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=32, rank=3)


def scan_one_pass_tma(u: Tensor, delta: Tensor, A: Tensor, Bg: Tensor, Cg: Tensor, D: Tensor | None,
                      z: Tensor | None, delta_bias: Tensor | None, delta_softplus: bool, out: Tensor, *,
                      rows: int = ROWS, stages: int = STAGES, span: int = SPAN) -> Tensor:
    """Inference scan into `out` (batch, dim, L). Bg, Cg: contiguous (batch, G, N, L) float32 (see the module
    docstring for what else the kernel needs)."""
    batch, dim, length = u.shape
    groups, n_state = Bg.shape[1], Bg.shape[2]
    if length % CHUNK_STEPS or n_state % span or (dim // groups) % rows:
        raise ValueError(f"the TMA kernel needs L a multiple of {CHUNK_STEPS} (got {length}), N a multiple of {span} "
                         f"(got {n_state}) and the channels of a group a multiple of {rows} (got {dim // groups})")
    B_desc = TensorDescriptor.from_tensor(Bg.reshape(-1, length // 32, 32), [span, 32, 32], _tile_layout())
    C_desc = TensorDescriptor.from_tensor(Cg.reshape(-1, length // 32, 32), [span, 32, 32], _tile_layout())
    carry = torch.empty(batch * dim, 2, n_state, device=u.device, dtype=torch.float32)
    zz = z if z is not None else u
    state_rows = (groups * n_state, n_state)  # batch and group strides along the descriptors' first dimension
    _one_pass_tma_kernel[(batch * dim // rows,)](
        u, delta, A, D if D is not None else A, zz, delta_bias if delta_bias is not None else A, out, carry,
        B_desc, C_desc, dim, length, dim // groups,
        *u.stride()[:2], *delta.stride()[:2], *A.stride(), *state_rows, *state_rows,
        *zz.stride()[:2], *out.stride()[:2],
        N_STATE=n_state, ROWS=rows, WARPS=WARPS, ITEMS=ITEMS, STAGES=stages, SPAN=span,
        SOFTPLUS=bool(delta_softplus), HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
        num_warps=rows * WARPS, maxnreg=MAXNREG,
    )
    return out
