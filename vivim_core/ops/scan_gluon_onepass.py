"""Inference selective scan in one pass, written in Gluon (Triton's explicit-layout dialect): the one-pass
kernel of `scan_triton_onepass` with its exchange across threads written out by hand.

The algorithm is the one-pass kernel's. A program scans one row (channel) in chunks of THREADS x ITEMS steps;
thread i owns ITEMS consecutive steps of a chunk. For each state n:

1. inside the thread: a_j = exp(dt_j A_n), x_j = dt_j u_j B_j,n and their inclusive scan over the thread's
   ITEMS steps (P_j: the decay from the thread's start to step j; X_j: the state step j reaches from zero);
2. inside the warp: a scan of the threads' (decay, reached state) pairs with `shfl.sync.up` in PTX (5 levels of
   2 shuffles and 2 predicated FMA-pipe instructions), and the same shuffle by one lane for the exclusive value;
3. across warps: each warp's lane 31 holds its total; every thread reads those through shared memory and
   combines the carried state with the totals of the warps before its own (WARPS fused multiply-adds);
4. inside the thread: h_j = P_j h_in + X_j, y_j += C_j,n h_j.

States go two at a time (PAIRED): their warp scans interleave (the chain of 5 dependent shuffles was the largest
stall) and they share one exchange, each thread's four values stored as one vector. With SEQUENTIAL (the default
with PAIRED) step 1 keeps a_j and x_j and only the reached state, the thread's decay is exp(A sum dt), and step 4
rescans a_j, x_j from the entering state. The chunk's last pair loads the next chunk's dt and u once its
up-sweeps are done with this chunk's (PREFETCH).

What Triton's `tl.associative_scan` + `tl.gather` made of steps 2-3 in the Triton kernel: 4 barriers a state and
a predicated load of the carried state that the next iteration waited on (Nsight Compute on an H200: barrier
stalls 16 % and that wait 12 % of the samples, results/h200_ncu_warps_vs_one_pass.log). Here a pair of states
costs the two barriers the shared-memory exchange needs, and the carried state is read at the top of the
iteration and used after the exchange.

Measured on H100s at the issue's stage-1 shape (b4 d128 L20480 N16, GPU time a call; results/h100_s10_gluon_*):
float32 0.186-0.192 ms against 0.242 for the Triton kernel, bfloat16 0.150-0.160 against 0.207. What limits it
now (Nsight Compute, float32, results/h100_s10_gluon_ncu_*.log): the L1 (84 % of its throughput: a thread's 8
consecutive float32 steps make each 16-byte load touch twice the cache lines a coalesced one would), then the
shuffle chain and barriers (issue 51 % of peak). Tried and slower (logs beside): two rows a program sharing B/C
loads, each thread's steps in two coalesced groups (more shuffles), two pairs an iteration (registers), the next
chunk staged by cp.async or prefetched into L2, 4 steps a thread.

Forward only, no gradients; per-step inputs and the output contiguous along L. Needs Gluon (Triton >= 3.5 with
`triton.experimental.gluon`) and an NVIDIA GPU; `available()` says whether it can be used.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

try:  # Gluon is experimental: absent from older Triton releases, and its API still moves between releases
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
except Exception:  # noqa: BLE001 - any import failure means "not available"
    gluon = None
    gl = None

# Launch parameters, measured on H100s at the stage-1 shape (b4 d128 L20480 N16, GPU time per call;
# benchmarks/results/h100_s10_gluon_*.log): steps a thread and warps a program (the Triton kernel's best; 4 steps
# with 4 or 8 warps: 0.26-0.36 ms fp32); two states an iteration through one exchange (fp32 0.218 -> 0.207 ms,
# then 0.190 with each thread's four exchange values as one vector); sequential: each step's decay and input kept
# and rescanned from the entering state, the thread's decay from its dt sum (12 fewer instructions a pair; 0.189
# against 0.193 ms without prefetch, equal with it, bf16 equal); and by input element size (4: float32, 2: 16-bit)
# whether the chunk's last pair loads the next chunk's dt and u (only where L is a multiple of the chunk), and a
# register cap: float32 with both 0.186-0.188 ms against 0.189-0.191 without, bfloat16 without 0.150-0.154 (above
# 128 registers only 3 programs of 4 warps fit an SM: the 512 programs then take two waves).
GLUON_ONE_PASS_TUNING = {"items": 8, "num_warps": 4, "paired": True, "sequential": True,
                         "prefetch_chunk": {4: True, 2: False}, "maxnreg": {4: 128, 2: None}}


def available() -> bool:
    """Whether Gluon imported (the kernel also needs a CUDA device with compute capability >= 8)."""
    return gluon is not None


@functools.lru_cache(maxsize=None)
def capability(device: torch.device) -> tuple[int, int]:
    """A CUDA device's compute capability, asked once (the query costs ~5 us of host time a scan call)."""
    return torch.cuda.get_device_capability(device)


if gluon is not None:

    # The element-wise helpers and the recurrence's combine are the Triton kernels' own, compiled as Gluon.
    from ._triton_common import recurrence_combine, skip_and_bias
    from .scan_triton_rows import _exp2
    from .scan_triton_rows import _softplus as _triton_softplus

    _ex2 = gluon.jit(_exp2.fn)
    _softplus = gluon.jit(_triton_softplus.fn)
    _combine = gluon.jit(recurrence_combine.fn)
    _skip_and_bias = gluon.jit(skip_and_bias.fn)

    @gluon.jit
    def _rcp(x):
        """1 / x on the special-function unit (one instruction; a division costs ~10)."""
        return gl.inline_asm_elementwise("rcp.approx.ftz.f32 $0, $1;", "=r,r", [x], dtype=gl.float32,
                                         is_pure=True, pack=1)

    # Inclusive scan of (decay, state) pairs across a warp's 32 lanes, then the exclusive value (the combine of the
    # lanes before this one; (1, 0) in lane 0). Outputs: $0 $1 inclusive, $2 $3 exclusive; inputs $4 $5.
    # `shfl.sync.up` sets `ok` when the source lane exists, so lanes below the offset keep their value.
    _LEVEL = """
    shfl.sync.up.b32 tp|ok, $0, {k}, 0, 0xffffffff;
    shfl.sync.up.b32 tx, $1, {k}, 0, 0xffffffff;
    @ok fma.rn.f32 $1, $0, tx, $1;
    @ok mul.f32 $0, tp, $0;"""
    _WARP_SCAN_ASM = gl.constexpr("{\n.reg .pred ok;\n.reg .b32 tp, tx;\nmov.b32 $0, $4;\nmov.b32 $1, $5;"
                      + "".join(_LEVEL.format(k=k) for k in (1, 2, 4, 8, 16))
                      + """
    shfl.sync.up.b32 tp|ok, $0, 1, 0, 0xffffffff;
    shfl.sync.up.b32 tx, $1, 1, 0, 0xffffffff;
    selp.b32 $2, tp, 0x3F800000, ok;
    selp.b32 $3, tx, 0, ok;
}""")

    @gluon.jit
    def _warp_scan(p, x):
        """(THREADS,) pairs, element i in thread i -> inclusive and exclusive scans within each warp."""
        return gl.inline_asm_elementwise(_WARP_SCAN_ASM, "=r,=r,=r,=r,r,r", [p, x],
                                         dtype=(gl.float32, gl.float32, gl.float32, gl.float32), is_pure=True,
                                         pack=1)

    # The same for two independent sequences of pairs at once (two states), their shuffles interleaved: the scan's
    # chain of 5 dependent shuffles was the kernel's largest stall (Nsight Compute, H100: short-scoreboard waits on
    # its predicated FMAs, ~28 % of the samples; results/h100_s10_gluon_ncu_v1.log). Outputs $0-$3 inclusive (p, x of
    # the first, p, x of the second), $4-$7 exclusive; inputs $8-$11.
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
    def _warp_scan_two(p0, x0, p1, x1):
        """`_warp_scan` of two sequences: inclusive p0, x0, p1, x1, then exclusive p0, x0, p1, x1."""
        return gl.inline_asm_elementwise(_WARP_SCAN_TWO_ASM, "=r,=r,=r,=r,=r,=r,=r,=r,r,r,r,r", [p0, x0, p1, x1],
                                         dtype=(gl.float32,) * 8, is_pure=True, pack=1)

    @gluon.jit
    def _up_sweep(dt, dtu, B_n, A2):
        """Step 1 for one state: per step the decay and state from the thread's start (THREADS, ITEMS)."""
        return gl.associative_scan((_ex2(dt * A2), dtu * B_n), 1, _combine)

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
        p0i, x0i, p1i, x1i, p0e, x0e, p1e, x1e = _warp_scan_two(p0, x0, p1, x1)
        exchange.store(gl.join(gl.join(p0i, x0i), gl.join(p1i, x1i)))  # (THREADS, 2, 2)
        totals: gl.constexpr = gl.BlockedLayout([1, 2, 2], [32, 1, 1], [WARPS, 1, 1], [2, 1, 0])
        warp0, warp1, end0, end1 = _fold_warp_totals(exchange, gl.zeros_like(p0e) + carried0,
                                                      gl.zeros_like(p0e) + carried1, warp, totals, per_thread,
                                                      WARPS, 0)
        return p0e * warp0 + x0e, p1e * warp1 + x1e, end0, end1

    @gluon.jit
    def _fold_warp_totals(exchange, state0, state1, warp, totals: gl.constexpr, per_thread: gl.constexpr,
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

    @gluon.jit
    def _exchange_two(P0, X0, P1, X1, carried0, carried1, last_item, warp, exchange, WARPS: gl.constexpr,
                      per_thread: gl.constexpr):
        """Steps 2-4 for two states whose in-thread scans are P, X (THREADS, ITEMS): their states h and their
        states at the chunk's end."""
        entering0, entering1, end0, end1 = _entering_two(_last(P0, last_item), _last(X0, last_item),
                                                         _last(P1, last_item), _last(X1, last_item), carried0,
                                                         carried1, warp, exchange, WARPS, per_thread)
        return (P0 * gl.expand_dims(entering0, 1) + X0, P1 * gl.expand_dims(entering1, 1) + X1, end0, end1)

    @gluon.jit
    def _sequential_h(a, x, entering, first_item):
        """h_j = a_j h_j-1 + x_j from the entering state (THREADS,): an in-thread scan with the entering state
        folded into the first step (its decay product is never needed, so the compiler drops it)."""
        x = gl.where(first_item, a * gl.expand_dims(entering, 1) + x, x)
        return gl.associative_scan((a, x), 1, _combine)[1]

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
    def _scan_state(dt, dtu, ys, B_n, C_n, A2, carried, last_item, warp, total_p, total_x,
                    WARPS: gl.constexpr, per_thread: gl.constexpr):
        """One state of one chunk (steps 1-4 of the module docstring): adds C_n h to ys (THREADS, ITEMS) and
        returns it with the state at the chunk's end (THREADS,) (the same value in every thread)."""
        # 1. inside the thread
        P, X = _up_sweep(dt, dtu, B_n, A2)
        p_thread = _last(P, last_item)
        x_thread = _last(X, last_item)
        # 2. inside the warp
        p_incl, x_incl, p_excl, x_excl = _warp_scan(p_thread, x_thread)
        # 3. across warps: lane 31's inclusive pair is its warp's total; every thread reads all WARPS of them
        total_p.store(p_incl)
        total_x.store(x_incl)
        state = gl.zeros_like(p_thread) + carried
        entering_warp = state
        for k in gl.static_range(WARPS):
            p_k = total_p.slice(32 * k + 31, 1).load(per_thread)  # (1,), broadcast below
            x_k = total_x.slice(32 * k + 31, 1).load(per_thread)
            state = p_k * state + x_k
            entering_warp = gl.where(warp == k + 1, state, entering_warp)
        entering = p_excl * entering_warp + x_excl
        # 4. inside the thread
        return ys + C_n * (P * gl.expand_dims(entering, 1) + X), state

    @gluon.jit
    def _state_pair(ys, dt, dtu, B_a, B_b, n, B_row, C_row, A_row, carry_row, s_B_n, s_C_n, s_A_n, at, valid, start,
                    parity, tid, first, last_item, warp, exchange, dl_row, u_row, next_at, dt_sum, first_item,
                    N_STATE: gl.constexpr, WARPS: gl.constexpr, per_thread: gl.constexpr, EVEN: gl.constexpr,
                    LOAD_NEXT: gl.constexpr, SEQUENTIAL: gl.constexpr):
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
        if SEQUENTIAL:  # keep a_j, x_j; the thread's decay from its dt sum (no in-thread decay products)
            a_a = _ex2(dt * A2_a)
            x_a = dtu * B_a
            a_b = _ex2(dt * A2_b)
            x_b = dtu * B_b
            reach_a = _last(gl.associative_scan((a_a, x_a), 1, _combine)[1], last_item)
            reach_b = _last(gl.associative_scan((a_b, x_b), 1, _combine)[1], last_item)
        else:
            P_a, X_a = _up_sweep(dt, dtu, B_a, A2_a)
            P_b, X_b = _up_sweep(dt, dtu, B_b, A2_b)
        following = gl.minimum(n + 2, N_STATE - 2)
        B_a, _unused = _state_columns(B_row, C_row, following, s_B_n, s_C_n, at, valid, EVEN)
        B_b, _unused = _state_columns(B_row, C_row, following + 1, s_B_n, s_C_n, at, valid, EVEN)
        if LOAD_NEXT:
            dt = gl.load(dl_row + next_at)
            dtu = gl.load(u_row + next_at)
        if SEQUENTIAL:
            entering_a, entering_b, end_a, end_b = _entering_two(_ex2(dt_sum * A2_a), reach_a, _ex2(dt_sum * A2_b),
                                                                 reach_b, carried_a, carried_b, warp, exchange, WARPS,
                                                                 per_thread)
            h_a = _sequential_h(a_a, x_a, entering_a, first_item)
            h_b = _sequential_h(a_b, x_b, entering_b, first_item)
        else:
            h_a, h_b, end_a, end_b = _exchange_two(P_a, X_a, P_b, X_b, carried_a, carried_b, last_item, warp,
                                                   exchange, WARPS, per_thread)
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
        PREFETCH: gl.constexpr, PAIRED: gl.constexpr, SEQUENTIAL: gl.constexpr = False,
    ):
        """One program per row (batch element, channel). carry_ptr: (rows, 2, N) float32 scratch: the state
        carried into chunk c is read from parity c % 2 and the next chunk's written to the other by thread 0."""
        THREADS: gl.constexpr = 32 * WARPS
        CHUNK: gl.constexpr = THREADS * ITEMS
        items: gl.constexpr = gl.BlockedLayout([1, ITEMS], [32, 1], [WARPS, 1], [1, 0])  # (THREADS, ITEMS)
        per_thread: gl.constexpr = gl.SliceLayout(1, items)  # (THREADS,): element i in thread i
        shared: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [0])

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
        total_p = gl.allocate_shared_memory(gl.float32, [THREADS], shared)
        total_x = gl.allocate_shared_memory(gl.float32, [THREADS], shared)
        # per thread (p, x) of two states, one vector each
        exchange = gl.allocate_shared_memory(gl.float32, [THREADS, 2, 2], gl.SwizzledSharedLayout(1, 1, 1, [2, 1, 0]))

        skip, bias = _skip_and_bias(D_ptr, bias_ptr, d, HAS_D, HAS_BIAS)
        dl_row = delta_ptr + b * s_dl_b + d * s_dl_d
        u_row = u_ptr + b * s_u_b + d * s_u_d
        z_row = z_ptr + b * s_z_b + d * s_z_d
        o_row = out_ptr + b * s_o_b + d * s_o_d
        B_row = B_ptr + b * s_B_b + g * s_B_g
        C_row = C_ptr + b * s_C_b + g * s_C_g
        A_row = A_ptr + d * s_A_d
        carry_row = carry_ptr + row * (2 * N_STATE)
        if PREFETCH:  # PAIRED and EVEN only: the first chunk's dt and u; later ones are loaded by the last pair
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
                dt = _softplus(dt)
            if not EVEN:
                dt = gl.where(valid, dt, 0.0)  # past the end: a = 1, x = 0
            dtu = dt * u
            ys = skip * u
            dt_sum = gl.sum(dt, axis=1)  # (THREADS,): a thread's decay across its steps is exp(A dt_sum)
            if PAIRED:
                # Two states an iteration through one exchange. (Two pairs an iteration through two buffers, one
                # barrier a pair instead of two, took 168 registers, and capped at 128 ran 0.19-0.29 ms in fp32:
                # results/h100_s10_gluon_one_pass_two_pairs_rejected.log.)
                B_a, _unused = _state_columns(B_row, C_row, 0, s_B_n, s_C_n, at, valid, EVEN)
                B_b, _unused = _state_columns(B_row, C_row, 1, s_B_n, s_C_n, at, valid, EVEN)
                next_at = gl.minimum(start + CHUNK, length - CHUNK) + offsets  # (the last chunk loads itself again)
                for n in range(0, N_STATE - 2 if PREFETCH else N_STATE, 2):
                    ys, B_a, B_b, _dt, _dtu = _state_pair(ys, dt, dtu, B_a, B_b, n, B_row, C_row, A_row, carry_row,
                                                          s_B_n, s_C_n, s_A_n, at, valid, start, parity, tid, first,
                                                          last_item, warp, exchange, dl_row, u_row, next_at, dt_sum,
                                                          first_item, N_STATE, WARPS, per_thread, EVEN, False,
                                                          SEQUENTIAL)
                if PREFETCH:  # the last pair, loading the next chunk's dt and u into dt's and dt u's registers
                    ys, B_a, B_b, dt_raw, u_raw = _state_pair(ys, dt, dtu, B_a, B_b, N_STATE - 2, B_row, C_row, A_row,
                                                              carry_row, s_B_n, s_C_n, s_A_n, at, valid, start, parity,
                                                              tid, first, last_item, warp, exchange, dl_row, u_row,
                                                              next_at, dt_sum, first_item, N_STATE, WARPS, per_thread,
                                                              EVEN, True, SEQUENTIAL)
            else:
                # States two at a time, the next one's B and C loaded while the current one is scanned, into
                # alternating registers (one state an iteration needs a register move of them at the loop's end).
                B_even, C_even = _state_columns(B_row, C_row, 0, s_B_n, s_C_n, at, valid, EVEN)
                for n in range(0, N_STATE, 2):  # a loop, not unrolled: one body to compile and to keep in the cache
                    B_odd, C_odd = _state_columns(B_row, C_row, n + 1, s_B_n, s_C_n, at, valid, EVEN)
                    A2 = gl.load(A_row + n * s_A_n).to(gl.float32) * 1.4426950408889634  # exp -> exp2
                    carried = gl.where(start > 0, gl.load(carry_row + parity * N_STATE + n), 0.0)
                    ys, end = _scan_state(dt, dtu, ys, B_even, C_even, A2, carried, last_item, warp, total_p, total_x,
                                          WARPS, per_thread)
                    gl.store(carry_row + (1 - parity) * N_STATE + n + tid, end, mask=first)
                    B_even, C_even = _state_columns(B_row, C_row, gl.minimum(n + 2, N_STATE - 1), s_B_n, s_C_n, at,
                                                    valid, EVEN)
                    A2 = gl.load(A_row + (n + 1) * s_A_n).to(gl.float32) * 1.4426950408889634
                    carried = gl.where(start > 0, gl.load(carry_row + parity * N_STATE + n + 1), 0.0)
                    ys, end = _scan_state(dt, dtu, ys, B_odd, C_odd, A2, carried, last_item, warp, total_p, total_x,
                                          WARPS, per_thread)
                    gl.store(carry_row + (1 - parity) * N_STATE + n + 1 + tid, end, mask=first)
            if HAS_Z:
                ys = ys * z * _rcp(1.0 + _ex2(z * -1.4426950408889634))  # y * silu(z)
            if EVEN:
                gl.store(o_row + at, ys.to(out_ptr.dtype.element_ty))
            else:
                gl.store(o_row + at, ys.to(out_ptr.dtype.element_ty), mask=valid)




def _by_size(setting, element_size: int):
    """A tuning value, or the one for this input element size (4: float32, 2: 16-bit)."""
    return setting.get(element_size, setting.get(4)) if isinstance(setting, dict) else setting


def supports(u: Tensor, delta: Tensor, z: Tensor | None, B: Tensor, C: Tensor) -> bool:
    """Whether `scan_one_pass_gluon` takes these: Gluon available, a CUDA device of compute capability >= 8,
    B and C varying in time ((batch, [G,] N, L)), an even state size and unit stride along L for every per-step
    input."""
    if not available() or u.device.type != "cuda" or capability(u.device)[0] < 8:
        return False
    tensors = [u, delta, B, C] + ([z] if z is not None else [])
    return B.dim() >= 3 and C.dim() >= 3 and B.shape[-2] % 2 == 0 and all(t.stride(-1) == 1 for t in tensors)


def scan_one_pass_gluon(u: Tensor, delta: Tensor, A: Tensor, Bg: Tensor, Cg: Tensor, D: Tensor | None,
                        z: Tensor | None, delta_bias: Tensor | None, delta_softplus: bool, out: Tensor) -> Tensor:
    """Inference scan into `out` (batch, dim, L), contiguous along L. Bg, Cg: (batch, G, N, L) views."""
    batch, dim, length = u.shape
    n_state = A.shape[1]
    items, num_warps = GLUON_ONE_PASS_TUNING["items"], GLUON_ONE_PASS_TUNING["num_warps"]
    zz = z if z is not None else u
    carry = torch.empty(batch * dim, 2, n_state, device=u.device, dtype=torch.float32)
    even = length % (32 * num_warps * items) == 0
    channels_per_group = dim // Bg.shape[1]
    prefetch = _by_size(GLUON_ONE_PASS_TUNING["prefetch_chunk"], u.element_size())
    paired = bool(GLUON_ONE_PASS_TUNING["paired"])
    maxnreg = _by_size(GLUON_ONE_PASS_TUNING["maxnreg"], u.element_size())
    _one_pass_gluon_kernel[(batch * dim,)](
        u, delta, A, Bg, Cg, D if D is not None else A, zz, delta_bias if delta_bias is not None else A, out, carry,
        dim, length, channels_per_group,
        *u.stride()[:2], *delta.stride()[:2], *A.stride(), *Bg.stride()[:3], *Cg.stride()[:3],
        *zz.stride()[:2], *out.stride()[:2],
        N_STATE=n_state, ITEMS=items, WARPS=num_warps, SOFTPLUS=bool(delta_softplus), HAS_D=D is not None,
        HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, EVEN=even,
        PREFETCH=even and paired and bool(prefetch), PAIRED=paired,
        SEQUENTIAL=paired and bool(GLUON_ONE_PASS_TUNING["sequential"]), num_warps=num_warps,
        **({"maxnreg": maxnreg} if maxnreg else {}),
    )
    return out
