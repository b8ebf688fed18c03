"""The chunk kernels: the selective scan's forward and backward in Triton, for training (any layout, any dtype).

Same arguments and result as `selective_scan_reference`; every state accumulates in float32.

Forward: one program per (batch, channel) row. It walks the sequence in chunks of BLOCK_L steps; inside a chunk
the recurrence h_t = a_t h_{t-1} + x_t over the (N, BLOCK_L) tile is one `tl.associative_scan` with the
linear-recurrence combine (a1, x1) o (a2, x2) = (a1 a2, a2 x1 + x2); the state entering the chunk is added as
h = h_local + (prod a) h_in. States never touch memory, except the state at each chunk start, saved
(batch * dim, n_chunks, N) for the backward pass when gradients are needed.

Backward: the same programs walk the chunks from the end. Each chunk recomputes its states from the saved
chunk-start state, then loads the chunk in *reversed* time order, where the adjoint recurrence
lambda_t = C_t g_t + a_{t+1} lambda_{t+1} is again a forward scan (Triton's reverse scans are avoided:
triton-lang/triton#4362). a_t h_{t-1} is formed as h_t - x_t, so no shifted state is needed. Gradients of B and
C (shared by the channels of a group) are accumulated with atomic adds.

Without gradients this forward is the fallback for inputs no inference kernel takes (see `scan.policy`).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .common import recurrence_combine, skip_and_bias, softplus

# Launch parameters (chosen with benchmarks/tune_scan_triton.py --kernel chunk): steps per chunk by input element
# size (4: float32, 2: 16-bit), warps and software-pipelining stages of a forward program, warps of a backward one.
BLOCK_L = {4: 128, 2: 256}
NUM_WARPS = 2
NUM_STAGES = 3
BACKWARD_NUM_WARPS = 4


@triton.jit
def _chunk_forward_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, out_ptr, states_ptr,
    dim, length, n_chunks, channels_per_group,
    s_u_b, s_u_d, s_u_l, s_dl_b, s_dl_d, s_dl_l, s_A_d, s_A_n,
    s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l,
    s_z_b, s_z_d, s_z_l, s_o_b, s_o_d, s_o_l,
    N_STATE: tl.constexpr, BLOCK_L: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SAVE_STATES: tl.constexpr,
):
    """One program per (batch, channel) row. SAVE_STATES: the state entering each chunk is written to
    states_ptr (rows, n_chunks, N) float32."""
    row = tl.program_id(0)
    b = row // dim
    d = row % dim
    g = d // channels_per_group
    n = tl.arange(0, N_STATE)
    steps = tl.arange(0, BLOCK_L)
    A = tl.load(A_ptr + d * s_A_d + n * s_A_n).to(tl.float32)
    skip, bias = skip_and_bias(D_ptr, bias_ptr, d, HAS_D, HAS_BIAS)
    u_base = u_ptr + b * s_u_b + d * s_u_d
    dl_base = delta_ptr + b * s_dl_b + d * s_dl_d
    B_base = B_ptr + b * s_B_b + g * s_B_g + n[:, None] * s_B_n
    C_base = C_ptr + b * s_C_b + g * s_C_g + n[:, None] * s_C_n
    h_in = tl.zeros([N_STATE], dtype=tl.float32)
    for chunk in range(0, n_chunks):
        t = chunk * BLOCK_L + steps
        valid = t < length
        if SAVE_STATES:
            tl.store(states_ptr + (row * n_chunks + chunk) * N_STATE + n, h_in)
        dt = tl.load(dl_base + t * s_dl_l, mask=valid, other=0.0).to(tl.float32) + bias
        if SOFTPLUS:
            dt = softplus(dt)
        dt = tl.where(valid, dt, 0.0)  # padding: a = 1, x = 0, the state passes unchanged
        u = tl.load(u_base + t * s_u_l, mask=valid, other=0.0).to(tl.float32)
        Bt = tl.load(B_base + t[None, :] * s_B_l, mask=valid[None, :], other=0.0).to(tl.float32)
        Ct = tl.load(C_base + t[None, :] * s_C_l, mask=valid[None, :], other=0.0).to(tl.float32)
        a = tl.exp(dt[None, :] * A[:, None])
        x = (dt * u)[None, :] * Bt
        a_run, h = tl.associative_scan((a, x), 1, recurrence_combine)
        h = h + a_run * h_in[:, None]
        h_in = tl.sum(tl.where(steps[None, :] == BLOCK_L - 1, h, 0.0), 1)
        y = tl.sum(h * Ct, 0) + skip * u
        if HAS_Z:
            zt = tl.load(z_ptr + b * s_z_b + d * s_z_d + t * s_z_l, mask=valid, other=0.0).to(tl.float32)
            y = y * zt * tl.sigmoid(zt)
        tl.store(out_ptr + b * s_o_b + d * s_o_d + t * s_o_l, y.to(out_ptr.dtype.element_ty), mask=valid)


@triton.jit
def _chunk_backward_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, states_ptr, gout_ptr,
    gu_ptr, gdelta_ptr, gz_ptr, gA_ptr, gB_ptr, gC_ptr, gD_ptr, gbias_ptr,
    dim, length, n_chunks, channels_per_group,
    s_u_b, s_u_d, s_u_l, s_dl_b, s_dl_d, s_dl_l, s_A_d, s_A_n,
    s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l,
    s_z_b, s_z_d, s_z_l, s_go_b, s_go_d, s_go_l,
    N_STATE: tl.constexpr, BLOCK_L: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
):
    pid = tl.program_id(0)
    b = pid // dim
    d = pid % dim
    g = d // channels_per_group
    n = tl.arange(0, N_STATE)
    steps = tl.arange(0, BLOCK_L)
    A = tl.load(A_ptr + d * s_A_d + n * s_A_n).to(tl.float32)
    skip, bias = skip_and_bias(D_ptr, bias_ptr, d, HAS_D, HAS_BIAS)
    u_base = u_ptr + b * s_u_b + d * s_u_d
    dl_base = delta_ptr + b * s_dl_b + d * s_dl_d
    B_base = B_ptr + b * s_B_b + g * s_B_g + n[:, None] * s_B_n
    C_base = C_ptr + b * s_C_b + g * s_C_g + n[:, None] * s_C_n
    # dense (B, G, N, L) float32 gradient buffers for B and C
    gB_base = gB_ptr + ((b * (dim // channels_per_group) + g) * N_STATE + n[:, None]) * length
    gC_base = gC_ptr + ((b * (dim // channels_per_group) + g) * N_STATE + n[:, None]) * length
    g_A = tl.zeros([N_STATE], dtype=tl.float32)
    g_skip = tl.zeros([BLOCK_L], dtype=tl.float32)
    g_bias = tl.zeros([BLOCK_L], dtype=tl.float32)
    lam_in = tl.zeros([N_STATE], dtype=tl.float32)  # adjoint at the first step of the following chunk
    for i in range(n_chunks):
        chunk = n_chunks - 1 - i
        # 1. States of this chunk, in time order, from the saved chunk-start state.
        t = chunk * BLOCK_L + steps
        valid = t < length
        dt = tl.load(dl_base + t * s_dl_l, mask=valid, other=0.0).to(tl.float32) + bias
        if SOFTPLUS:
            dt = softplus(dt)
        dt = tl.where(valid, dt, 0.0)
        u = tl.load(u_base + t * s_u_l, mask=valid, other=0.0).to(tl.float32)
        Bt = tl.load(B_base + t[None, :] * s_B_l, mask=valid[None, :], other=0.0).to(tl.float32)
        a_run, h = tl.associative_scan((tl.exp(dt[None, :] * A[:, None]), (dt * u)[None, :] * Bt), 1,
                                       recurrence_combine)
        h_in = tl.load(states_ptr + (pid * n_chunks + chunk) * N_STATE + n)
        h = tl.flip(h + a_run * h_in[:, None], 1)  # now in reversed time order

        # 2. The chunk in reversed time order: position j is time t = chunk end - j.
        t = chunk * BLOCK_L + BLOCK_L - 1 - steps
        valid = t < length
        raw = tl.load(dl_base + t * s_dl_l, mask=valid, other=0.0).to(tl.float32) + bias
        dt = raw
        if SOFTPLUS:
            dt = softplus(raw)
        dt = tl.where(valid, dt, 0.0)
        u = tl.load(u_base + t * s_u_l, mask=valid, other=0.0).to(tl.float32)
        Bt = tl.load(B_base + t[None, :] * s_B_l, mask=valid[None, :], other=0.0).to(tl.float32)
        Ct = tl.load(C_base + t[None, :] * s_C_l, mask=valid[None, :], other=0.0).to(tl.float32)
        g_y = tl.load(gout_ptr + b * s_go_b + d * s_go_d + t * s_go_l, mask=valid, other=0.0).to(tl.float32)
        if HAS_Z:
            zt = tl.load(z_ptr + b * s_z_b + d * s_z_d + t * s_z_l, mask=valid, other=0.0).to(tl.float32)
            sig = tl.sigmoid(zt)
            y = tl.sum(h * Ct, 0) + skip * u
            tl.store(gz_ptr + pid * length + t,
                     (g_y * y * sig * (1.0 + zt * (1.0 - sig))).to(gz_ptr.dtype.element_ty), mask=valid)
            g_y = g_y * zt * sig
        # a_{t+1} (0 past the end of the sequence)
        nxt = t + 1
        dt_next = tl.load(dl_base + nxt * s_dl_l, mask=nxt < length, other=0.0).to(tl.float32) + bias
        if SOFTPLUS:
            dt_next = softplus(dt_next)
        a_next = tl.where(nxt < length, tl.exp(dt_next[None, :] * A[:, None]), 0.0)
        a_run, lam = tl.associative_scan((a_next, g_y[None, :] * Ct), 1, recurrence_combine)
        lam = lam + a_run * lam_in[:, None]
        lam_in = tl.sum(tl.where(steps[None, :] == BLOCK_L - 1, lam, 0.0), 1)

        # 3. Gradients of this chunk's inputs.
        x = (dt * u)[None, :] * Bt
        g_log = lam * (h - x)  # d loss / d (dt A) = lambda_t a_t h_{t-1}
        lam_B = tl.sum(lam * Bt, 0)
        g_dt = tl.sum(g_log * A[:, None], 0) + lam_B * u
        g_A += tl.sum(g_log * dt[None, :], 1)
        g_u = lam_B * dt + skip * g_y
        g_skip += g_y * u
        if SOFTPLUS:
            g_dt = g_dt * tl.sigmoid(raw)
        g_dt = tl.where(valid, g_dt, 0.0)
        g_bias += g_dt
        tl.store(gu_ptr + pid * length + t, g_u.to(gu_ptr.dtype.element_ty), mask=valid)
        tl.store(gdelta_ptr + pid * length + t, g_dt.to(gdelta_ptr.dtype.element_ty), mask=valid)
        tl.atomic_add(gB_base + t[None, :], lam * (dt * u)[None, :], mask=valid[None, :], sem="relaxed")
        tl.atomic_add(gC_base + t[None, :], g_y[None, :] * h, mask=valid[None, :], sem="relaxed")
    # per (batch, channel) partial sums; reduced over the batch on the host
    tl.store(gA_ptr + pid * N_STATE + n, g_A)
    tl.store(gD_ptr + pid, tl.sum(g_skip, 0))
    tl.store(gbias_ptr + pid, tl.sum(g_bias, 0))


def block_length(length: int, element_size: int, block_l: dict[int, int] = BLOCK_L) -> int:
    """Steps per chunk: BLOCK_L for the element size, or the sequence rounded up to a power of two (at least 16)
    when it is shorter."""
    block = block_l.get(element_size, block_l[4])
    return block if length >= block else max(16, triton.next_power_of_2(length))


def chunk_forward(u: Tensor, delta: Tensor, A: Tensor, Bg: Tensor, Cg: Tensor, D: Tensor | None, z: Tensor | None,
                  delta_bias: Tensor | None, delta_softplus: bool, out: Tensor, save_states: bool = False, *,
                  block_l: dict[int, int] = BLOCK_L, num_warps: int = NUM_WARPS,
                  num_stages: int = NUM_STAGES) -> Tensor | None:
    """Forward scan into `out` (batch, dim, L). Bg, Cg: (batch, G, N, L) views, N a power of two. Returns the
    float32 states entering each chunk, (batch * dim * n_chunks * N,), when `save_states`, else None."""
    batch, dim, length = u.shape
    n_state = A.shape[1]
    block = block_length(length, u.element_size(), block_l)
    n_chunks = triton.cdiv(length, block)
    states = torch.empty(batch * dim * n_chunks * n_state, device=u.device, dtype=torch.float32) if save_states else None
    zz = z if z is not None else u
    _chunk_forward_kernel[(batch * dim,)](
        u, delta, A, Bg, Cg, D if D is not None else A, zz, delta_bias if delta_bias is not None else A, out,
        states if save_states else out, dim, length, n_chunks, dim // Bg.shape[1],
        *u.stride(), *delta.stride(), *A.stride(), *Bg.stride(), *Cg.stride(), *zz.stride(), *out.stride(),
        N_STATE=n_state, BLOCK_L=block, SOFTPLUS=bool(delta_softplus), HAS_D=D is not None, HAS_Z=z is not None,
        HAS_BIAS=delta_bias is not None, SAVE_STATES=save_states, num_warps=num_warps, num_stages=num_stages,
    )
    return states


def chunk_backward(u: Tensor, delta: Tensor, A: Tensor, Bg: Tensor, Cg: Tensor, D: Tensor | None, z: Tensor | None,
                   delta_bias: Tensor | None, delta_softplus: bool, states: Tensor, grad_out: Tensor,
                   *, block_l: dict[int, int] = BLOCK_L, num_warps: int = BACKWARD_NUM_WARPS) -> dict[str, Tensor]:
    """Gradients of the forward whose chunk-start `states` `chunk_forward` saved, all float32: u, delta, z
    (batch, dim, L), B and C (batch, G, N, L), and per (batch, channel) row A (rows, N), D and delta_bias (rows,),
    to be summed over the batch by the caller."""
    batch, dim, length = u.shape
    n_state, groups = A.shape[1], Bg.shape[1]
    block = block_length(length, u.element_size(), block_l)
    grad_out = grad_out.contiguous()
    f32 = dict(device=u.device, dtype=torch.float32)
    grads = dict(u=torch.empty(u.shape, **f32), delta=torch.empty(u.shape, **f32),
                 A=torch.empty(batch * dim, n_state, **f32), B=torch.zeros(batch, groups, n_state, length, **f32),
                 C=torch.zeros(batch, groups, n_state, length, **f32), D=torch.empty(batch * dim, **f32),
                 delta_bias=torch.empty(batch * dim, **f32))
    grads["z"] = torch.empty(u.shape, **f32) if z is not None else grads["u"]
    zz = z if z is not None else u
    _chunk_backward_kernel[(batch * dim,)](
        u, delta, A, Bg, Cg, D if D is not None else A, zz, delta_bias if delta_bias is not None else A,
        states, grad_out, grads["u"], grads["delta"], grads["z"], grads["A"], grads["B"], grads["C"], grads["D"],
        grads["delta_bias"], dim, length, triton.cdiv(length, block), dim // groups,
        *u.stride(), *delta.stride(), *A.stride(), *Bg.stride(), *Cg.stride(), *zz.stride(), *grad_out.stride(),
        N_STATE=n_state, BLOCK_L=block, SOFTPLUS=bool(delta_softplus), HAS_D=D is not None, HAS_Z=z is not None,
        HAS_BIAS=delta_bias is not None, num_warps=num_warps,
    )
    return grads


def scan_chunks(u: Tensor, delta: Tensor, A: Tensor, Bg: Tensor, Cg: Tensor, D: Tensor | None, z: Tensor | None,
                delta_bias: Tensor | None, delta_softplus: bool, out: Tensor) -> Tensor:
    """Inference scan into `out` (batch, dim, L) with the forward kernel (no states saved)."""
    chunk_forward(u, delta, A, Bg, Cg, D, z, delta_bias, delta_softplus, out)
    return out
