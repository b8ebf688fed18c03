"""The Gluon one-pass kernel: inference selective scan for channel-major inputs, the one-pass algorithm of
`..triton.one_pass` with its exchange across threads written out by hand. `auto`'s choice for channel-major
inference on CUDA GPUs of compute capability >= 8 where the TMA kernel (`one_pass_tma`) does not apply.

A program scans one row (channel) in chunks of THREADS x ITEMS steps; thread i owns ITEMS consecutive steps of a
chunk. States go two at a time, through one exchange:

1. inside the thread, per state: a_j = exp(dt_j A_n), x_j = dt_j u_j B_j,n, kept, and the state the thread's
   steps reach from zero (an in-thread scan); the thread's decay is exp(A_n * the sum of its dt);
2. inside the warp: a scan of the threads' (decay, reached state) pairs with `shfl.sync.up` in PTX, the two states'
   shuffles interleaved (`warp_scan_two`), and the exclusive value from the same shuffle by one lane;
3. across warps: each warp's lane 31 holds its totals; every thread stores its four values as one vector in
   shared memory, reads the totals of every warp and folds those before its own into the carried state;
4. inside the thread: h_j = a_j h_j-1 + x_j from the entering state, y_j += C_j,n h_j.

A pair of states costs the two barriers of the shared-memory exchange; the carried state is read at the top of the
iteration and used after the exchange. Where L is a whole number of chunks the chunk's last pair loads the next
chunk's dt and u once its up-sweeps are done with this chunk's (PREFETCH), so their latency hides behind its scans.

Forward only, no gradients; per-step inputs and the output contiguous along L, N even. Needs Gluon
(`common.available()`) and an NVIDIA GPU of compute capability >= 8.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import common
from .common import by_element_size

# Launch parameters (chosen with benchmarks/tune_scan_gluon.py --kernel one_pass): steps a thread, warps a program,
# and by input element size (4: float32, 2: 16-bit) whether the chunk's last pair loads the next chunk's dt and u
# and the register cap (128 keeps 4 programs of 4 warps a multiprocessor).
ITEMS = 8
NUM_WARPS = 4
PREFETCH = {4: True, 2: False}
MAXNREG = {4: 128, 2: None}

if common.available():
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl

    from .common import combine, ex2, fold_warp_totals, rcp, skip_and_bias, softplus, warp_scan_two

    @gluon.jit
    def _last(values, last_item):
        """(THREADS, ITEMS) -> each thread's last item (THREADS,)."""
        return gl.sum(gl.where(last_item, values, 0.0), axis=1)

    @gluon.jit
    def _entering_two(p0, x0, p1, x1, carried0, carried1, warp, exchange, WARPS: gl.constexpr,
                      per_thread: gl.constexpr):
        """Steps 2-3 for two independent sequences at once (two states), one exchange through shared memory for
        both, from each thread's aggregates (THREADS,) (decay across its steps, state they reach from zero): the
        states entering each thread's steps and the states at the chunk's end (THREADS,) each. Each thread stores
        its 4 inclusive values as one vector; every thread reads each warp's lane-31 vector (4 broadcast reads)."""
        p0i, x0i, p1i, x1i, p0e, x0e, p1e, x1e = warp_scan_two(p0, x0, p1, x1)
        exchange.store(gl.join(gl.join(p0i, x0i), gl.join(p1i, x1i)))  # (THREADS, 2, 2)
        totals: gl.constexpr = gl.BlockedLayout([1, 2, 2], [32, 1, 1], [WARPS, 1, 1], [2, 1, 0])
        warp0, warp1, end0, end1 = fold_warp_totals(exchange, gl.zeros_like(p0e) + carried0,
                                                     gl.zeros_like(p0e) + carried1, warp, totals, per_thread,
                                                     WARPS, 0)
        return p0e * warp0 + x0e, p1e * warp1 + x1e, end0, end1

    @gluon.jit
    def _sequential_h(a, x, entering, first_item):
        """h_j = a_j h_j-1 + x_j from the entering state (THREADS,): an in-thread scan with the entering state
        folded into the first step (its decay product is never needed, so the compiler drops it)."""
        x = gl.where(first_item, a * gl.expand_dims(entering, 1) + x, x)
        return gl.associative_scan((a, x), 1, combine)[1]

    @gluon.jit
    def _state_columns(B_row, C_row, n, s_B_n, s_C_n, at, valid, EVEN: gl.constexpr):
        """State n's B and C at the chunk's steps `at` (THREADS, ITEMS), as float32."""
        if EVEN:
            B_n = gl.load(B_row + n * s_B_n + at)
            C_n = gl.load(C_row + n * s_C_n + at)
        else:
            B_n = gl.load(B_row + n * s_B_n + at, mask=valid, other=0.0)
            C_n = gl.load(C_row + n * s_C_n + at, mask=valid, other=0.0)
        return B_n.to(gl.float32), C_n.to(gl.float32)

    @gluon.jit
    def _state_pair(ys, dt, dtu, B_a, B_b, n, B_row, C_row, A_row, carry_row, s_B_n, s_C_n, s_A_n, at, valid, start,
                    parity, tid, first, last_item, warp, exchange, dl_row, u_row, next_at, dt_sum, first_item,
                    N_STATE: gl.constexpr, WARPS: gl.constexpr, per_thread: gl.constexpr, EVEN: gl.constexpr,
                    LOAD_NEXT: gl.constexpr):
        """States n and n + 1 of a chunk (B_a, B_b their B, loaded before): ys += C h of each, the chunk's end
        states stored as the next chunk's carried ones. Returns ys, the next two states' B and, with LOAD_NEXT (the
        chunk's last pair, EVEN only), the raw dt and u at `next_at` (the next chunk's steps), loaded once this
        pair's up-sweeps are done with dt and dt u (their registers) and used at the next chunk's start; else dt,
        dtu as given."""
        _unused, C_a = _state_columns(B_row, C_row, n, s_B_n, s_C_n, at, valid, EVEN)
        _unused, C_b = _state_columns(B_row, C_row, n + 1, s_B_n, s_C_n, at, valid, EVEN)
        carried_a = gl.where(start > 0, gl.load(carry_row + parity * N_STATE + n), 0.0)
        carried_b = gl.where(start > 0, gl.load(carry_row + parity * N_STATE + n + 1), 0.0)
        A2_a = gl.load(A_row + n * s_A_n).to(gl.float32) * 1.4426950408889634
        A2_b = gl.load(A_row + (n + 1) * s_A_n).to(gl.float32) * 1.4426950408889634
        a_a = ex2(dt * A2_a)  # keep a_j, x_j; the thread's decay from its dt sum (no in-thread decay products)
        x_a = dtu * B_a
        a_b = ex2(dt * A2_b)
        x_b = dtu * B_b
        reach_a = _last(gl.associative_scan((a_a, x_a), 1, combine)[1], last_item)
        reach_b = _last(gl.associative_scan((a_b, x_b), 1, combine)[1], last_item)
        following = gl.minimum(n + 2, N_STATE - 2)
        B_a, _unused = _state_columns(B_row, C_row, following, s_B_n, s_C_n, at, valid, EVEN)
        B_b, _unused = _state_columns(B_row, C_row, following + 1, s_B_n, s_C_n, at, valid, EVEN)
        if LOAD_NEXT:
            dt = gl.load(dl_row + next_at)
            dtu = gl.load(u_row + next_at)
        entering_a, entering_b, end_a, end_b = _entering_two(ex2(dt_sum * A2_a), reach_a, ex2(dt_sum * A2_b),
                                                             reach_b, carried_a, carried_b, warp, exchange, WARPS,
                                                             per_thread)
        h_a = _sequential_h(a_a, x_a, entering_a, first_item)
        h_b = _sequential_h(a_b, x_b, entering_b, first_item)
        gl.store(carry_row + (1 - parity) * N_STATE + n + tid, end_a, mask=first)
        gl.store(carry_row + (1 - parity) * N_STATE + n + 1 + tid, end_b, mask=first)
        return ys + C_a * h_a + C_b * h_b, B_a, B_b, dt, dtu

    @gluon.jit
    def _one_pass_gluon_kernel(
        u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, out_ptr, carry_ptr,
        dim, length, channels_per_group,
        s_u_b, s_u_d, s_dl_b, s_dl_d, s_A_d, s_A_n, s_B_b, s_B_g, s_B_n, s_C_b, s_C_g, s_C_n,
        s_z_b, s_z_d, s_o_b, s_o_d,
        N_STATE: gl.constexpr, ITEMS: gl.constexpr, WARPS: gl.constexpr, SOFTPLUS: gl.constexpr,
        HAS_D: gl.constexpr, HAS_Z: gl.constexpr, HAS_BIAS: gl.constexpr, EVEN: gl.constexpr,
        PREFETCH: gl.constexpr,
    ):
        """One program per row (batch element, channel). carry_ptr: (rows, 2, N) float32 scratch: the state
        carried into chunk c is read from parity c % 2 and the next chunk's written to the other by thread 0.
        PREFETCH (EVEN only): the chunk's last pair loads the next chunk's dt and u."""
        THREADS: gl.constexpr = 32 * WARPS
        CHUNK: gl.constexpr = THREADS * ITEMS
        items: gl.constexpr = gl.BlockedLayout([1, ITEMS], [32, 1], [WARPS, 1], [1, 0])  # (THREADS, ITEMS)
        per_thread: gl.constexpr = gl.SliceLayout(1, items)  # (THREADS,): element i in thread i

        row = gl.program_id(0)
        b = row // dim
        d = row % dim
        g = d // channels_per_group
        tid = gl.arange(0, THREADS, layout=per_thread)
        warp = tid // 32
        first = tid == 0
        item = gl.expand_dims(gl.arange(0, ITEMS, layout=gl.SliceLayout(0, items)), 0)  # (1, ITEMS)
        offsets = gl.expand_dims(tid * ITEMS, 1) + item
        last_item = item == ITEMS - 1
        first_item = item == 0
        # per thread (p, x) of two states, one vector each
        exchange = gl.allocate_shared_memory(gl.float32, [THREADS, 2, 2], gl.SwizzledSharedLayout(1, 1, 1, [2, 1, 0]))

        skip, bias = skip_and_bias(D_ptr, bias_ptr, d, HAS_D, HAS_BIAS)
        dl_row = delta_ptr + b * s_dl_b + d * s_dl_d
        u_row = u_ptr + b * s_u_b + d * s_u_d
        z_row = z_ptr + b * s_z_b + d * s_z_d
        o_row = out_ptr + b * s_o_b + d * s_o_d
        B_row = B_ptr + b * s_B_b + g * s_B_g
        C_row = C_ptr + b * s_C_b + g * s_C_g
        A_row = A_ptr + d * s_A_d
        carry_row = carry_ptr + row * (2 * N_STATE)
        if PREFETCH:  # the first chunk's dt and u; later ones are loaded by the chunk before, in its last pair
            dt_raw = gl.load(dl_row + offsets)
            u_raw = gl.load(u_row + offsets)
        for start in range(0, length, CHUNK):
            parity = (start // CHUNK) % 2
            at = start + offsets
            valid = at < length
            if PREFETCH:
                dt = dt_raw.to(gl.float32) + bias
                u = u_raw.to(gl.float32)
            elif EVEN:
                dt = gl.load(dl_row + at).to(gl.float32) + bias
                u = gl.load(u_row + at).to(gl.float32)
            else:
                dt = gl.load(dl_row + at, mask=valid, other=0.0).to(gl.float32) + bias
                u = gl.load(u_row + at, mask=valid, other=0.0).to(gl.float32)
            if HAS_Z:
                if EVEN:
                    z = gl.load(z_row + at).to(gl.float32)
                else:
                    z = gl.load(z_row + at, mask=valid, other=0.0).to(gl.float32)
            if SOFTPLUS:
                dt = softplus(dt)
            if not EVEN:
                dt = gl.where(valid, dt, 0.0)  # past the end: a = 1, x = 0
            dtu = dt * u
            ys = skip * u
            dt_sum = gl.sum(dt, axis=1)  # (THREADS,): a thread's decay across its steps is exp(A dt_sum)
            B_a, _unused = _state_columns(B_row, C_row, 0, s_B_n, s_C_n, at, valid, EVEN)
            B_b, _unused = _state_columns(B_row, C_row, 1, s_B_n, s_C_n, at, valid, EVEN)
            next_at = gl.minimum(start + CHUNK, length - CHUNK) + offsets  # (the last chunk loads itself again)
            for n in range(0, N_STATE - 2 if PREFETCH else N_STATE, 2):
                ys, B_a, B_b, _dt, _dtu = _state_pair(ys, dt, dtu, B_a, B_b, n, B_row, C_row, A_row, carry_row,
                                                      s_B_n, s_C_n, s_A_n, at, valid, start, parity, tid, first,
                                                      last_item, warp, exchange, dl_row, u_row, next_at, dt_sum,
                                                      first_item, N_STATE, WARPS, per_thread, EVEN, False)
            if PREFETCH:  # the last pair, loading the next chunk's dt and u into dt's and dt u's registers
                ys, B_a, B_b, dt_raw, u_raw = _state_pair(ys, dt, dtu, B_a, B_b, N_STATE - 2, B_row, C_row, A_row,
                                                          carry_row, s_B_n, s_C_n, s_A_n, at, valid, start, parity,
                                                          tid, first, last_item, warp, exchange, dl_row, u_row,
                                                          next_at, dt_sum, first_item, N_STATE, WARPS, per_thread,
                                                          EVEN, True)
            if HAS_Z:
                ys = ys * z * rcp(1.0 + ex2(z * -1.4426950408889634))  # y * silu(z)
            if EVEN:
                gl.store(o_row + at, ys.to(out_ptr.dtype.element_ty))
            else:
                gl.store(o_row + at, ys.to(out_ptr.dtype.element_ty), mask=valid)


def scan_one_pass_gluon(u: Tensor, delta: Tensor, A: Tensor, Bg: Tensor, Cg: Tensor, D: Tensor | None,
                        z: Tensor | None, delta_bias: Tensor | None, delta_softplus: bool, out: Tensor, *,
                        items: int = ITEMS, num_warps: int = NUM_WARPS, prefetch: bool | None = None,
                        maxnreg: int | None = None) -> Tensor:
    """Inference scan into `out` (batch, dim, L), contiguous along L. Bg, Cg: (batch, G, N, L) views, N even.
    prefetch, maxnreg: PREFETCH and MAXNREG for the input's element size unless given (maxnreg 0: no cap)."""
    batch, dim, length = u.shape
    n_state = A.shape[1]
    zz = z if z is not None else u
    carry = torch.empty(batch * dim, 2, n_state, device=u.device, dtype=torch.float32)
    even = length % (32 * num_warps * items) == 0
    if prefetch is None:
        prefetch = by_element_size(PREFETCH, u.element_size())
    if maxnreg is None:
        maxnreg = by_element_size(MAXNREG, u.element_size())
    _one_pass_gluon_kernel[(batch * dim,)](
        u, delta, A, Bg, Cg, D if D is not None else A, zz, delta_bias if delta_bias is not None else A, out, carry,
        dim, length, dim // Bg.shape[1],
        *u.stride()[:2], *delta.stride()[:2], *A.stride(), *Bg.stride()[:3], *Cg.stride()[:3],
        *zz.stride()[:2], *out.stride()[:2],
        N_STATE=n_state, ITEMS=items, WARPS=num_warps, SOFTPLUS=bool(delta_softplus), HAS_D=D is not None,
        HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, EVEN=even, PREFETCH=even and bool(prefetch),
        num_warps=num_warps, **({"maxnreg": maxnreg} if maxnreg else {}),
    )
    return out
