"""Selective scan as Triton kernels of our own (forward and backward), for CUDA GPUs without mamba-ssm.

Imported only when a CUDA tensor asks for it (`vivim_core.ops.backends`), so CPU-only installs never touch
Triton. Same arguments and result as `selective_scan_reference`; every state accumulates in float32.

Forward: one program per (batch, channel). It walks the sequence in chunks of BLOCK_L steps; inside a
chunk the recurrence h_t = a_t h_{t-1} + x_t over the (N, BLOCK_L) tile is one `tl.associative_scan`
with the linear-recurrence combine (a1, x1) o (a2, x2) = (a1 a2, a2 x1 + x2); the state entering the chunk is
added as h = h_local + (prod a) h_in. States never touch memory, except the state at each chunk start,
saved (B, D, n_chunks, N) for the backward pass when gradients are needed.

Backward: the same programs walk the chunks from the end. Each chunk recomputes its states from the saved
chunk-start state, then loads the chunk in *reversed* time order, where the adjoint recurrence
lambda_t = C_t g_t + a_{t+1} lambda_{t+1} is again a forward scan (Triton's reverse scans are avoided:
triton-lang/triton#4362). a_t h_{t-1} is formed as h_t - x_t, so no shifted state is needed.
Gradients of B and C (shared by all channels) are accumulated with atomic adds.

Inference (no gradients) goes to `scan_triton_onepass` where the per-step inputs are contiguous along L (each
exp computed once, time spread over a program's threads), else to `scan_triton_rows` for 16-bit or token-major
inputs (a thread per (batch, channel) row, states in registers); see TUNING['inference_kernel'].
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from . import scan_gluon_onepass, scan_gluon_tma_bc, scan_triton_onepass, scan_triton_rows, scan_triton_warps
from ._triton_common import recurrence_combine, skip_and_bias
from ._checks import check_scan_args, needs_grad


@triton.jit
def _softplus(x):
    return tl.where(x > 20.0, x, tl.log(1.0 + tl.exp(x)))


@triton.jit
def _scan_fwd_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, out_ptr, states_ptr, seg_end_ptr, seg_dt_ptr,
    dim, length, n_chunks, channels_per_group, chunks_per_segment,
    s_u_b, s_u_d, s_u_l, s_dl_b, s_dl_d, s_dl_l, s_A_d, s_A_n,
    s_B_b, s_B_g, s_B_n, s_B_l, s_C_b, s_C_g, s_C_n, s_C_l,
    s_z_b, s_z_d, s_z_l, s_o_b, s_o_d, s_o_l,
    N_STATE: tl.constexpr, BLOCK_L: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SAVE_STATES: tl.constexpr, SEGMENTED: tl.constexpr,
):
    """SEGMENTED: this program scans one segment of the sequence from a zero state and writes the local
    output sum_n C h (no D u, no gate) in float32, its end state and its sum of dt; `_scan_fix_kernel`
    adds the entering states afterwards. Otherwise it scans the whole sequence and writes the final output."""
    pid = tl.program_id(0)
    n_segments = tl.cdiv(n_chunks, chunks_per_segment)
    row = pid // n_segments
    segment = pid % n_segments
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
    dt_total = tl.zeros([BLOCK_L], dtype=tl.float32)
    first = segment * chunks_per_segment
    for chunk in range(first, tl.minimum(first + chunks_per_segment, n_chunks)):
        t = chunk * BLOCK_L + steps
        valid = t < length
        if SAVE_STATES:
            tl.store(states_ptr + (row * n_chunks + chunk) * N_STATE + n, h_in)
        dt = tl.load(dl_base + t * s_dl_l, mask=valid, other=0.0).to(tl.float32) + bias
        if SOFTPLUS:
            dt = _softplus(dt)
        dt = tl.where(valid, dt, 0.0)  # padding: a = 1, x = 0, the state passes unchanged
        u = tl.load(u_base + t * s_u_l, mask=valid, other=0.0).to(tl.float32)
        Bt = tl.load(B_base + t[None, :] * s_B_l, mask=valid[None, :], other=0.0).to(tl.float32)
        Ct = tl.load(C_base + t[None, :] * s_C_l, mask=valid[None, :], other=0.0).to(tl.float32)
        a = tl.exp(dt[None, :] * A[:, None])
        x = (dt * u)[None, :] * Bt
        a_run, h = tl.associative_scan((a, x), 1, recurrence_combine)
        h = h + a_run * h_in[:, None]
        h_in = tl.sum(tl.where(steps[None, :] == BLOCK_L - 1, h, 0.0), 1)
        if SEGMENTED:
            dt_total += dt
            tl.store(out_ptr + row * length + t, tl.sum(h * Ct, 0), mask=valid)
        else:
            y = tl.sum(h * Ct, 0) + skip * u
            if HAS_Z:
                zt = tl.load(z_ptr + b * s_z_b + d * s_z_d + t * s_z_l, mask=valid, other=0.0).to(tl.float32)
                y = y * zt * tl.sigmoid(zt)
            tl.store(out_ptr + b * s_o_b + d * s_o_d + t * s_o_l, y.to(out_ptr.dtype.element_ty), mask=valid)
    if SEGMENTED:
        tl.store(seg_end_ptr + pid * N_STATE + n, h_in)
        tl.store(seg_dt_ptr + pid, tl.sum(dt_total, 0))


@triton.jit
def _scan_fix_kernel(
    u_ptr, delta_ptr, A_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, local_ptr, entering_ptr, out_ptr,
    dim, length, n_chunks, channels_per_group, chunks_per_segment,
    s_u_b, s_u_d, s_u_l, s_dl_b, s_dl_d, s_dl_l, s_A_d, s_A_n, s_C_b, s_C_g, s_C_n, s_C_l,
    s_z_b, s_z_d, s_z_l, s_o_b, s_o_d, s_o_l,
    N_STATE: tl.constexpr, BLOCK_L: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
):
    """out_t = (local_t + sum_n C_t exp(A S_t) H + D u_t) silu(z_t): H is the state entering the segment and
    S_t the sum of dt from the segment start to t, so exp(A S_t) is the decay of H up to t."""
    pid = tl.program_id(0)
    n_segments = tl.cdiv(n_chunks, chunks_per_segment)
    row = pid // n_segments
    segment = pid % n_segments
    b = row // dim
    d = row % dim
    g = d // channels_per_group
    n = tl.arange(0, N_STATE)
    steps = tl.arange(0, BLOCK_L)
    A = tl.load(A_ptr + d * s_A_d + n * s_A_n).to(tl.float32)
    skip, bias = skip_and_bias(D_ptr, bias_ptr, d, HAS_D, HAS_BIAS)
    entering = tl.load(entering_ptr + pid * N_STATE + n)
    dt_before = 0.0
    first = segment * chunks_per_segment
    for chunk in range(first, tl.minimum(first + chunks_per_segment, n_chunks)):
        t = chunk * BLOCK_L + steps
        valid = t < length
        dt = tl.load(delta_ptr + b * s_dl_b + d * s_dl_d + t * s_dl_l, mask=valid, other=0.0).to(tl.float32) + bias
        if SOFTPLUS:
            dt = _softplus(dt)
        dt = tl.where(valid, dt, 0.0)
        dt_sum = tl.cumsum(dt, 0) + dt_before
        dt_before = tl.sum(dt, 0) + dt_before
        Ct = tl.load(C_ptr + b * s_C_b + g * s_C_g + n[:, None] * s_C_n + t[None, :] * s_C_l,
                     mask=valid[None, :], other=0.0).to(tl.float32)
        u = tl.load(u_ptr + b * s_u_b + d * s_u_d + t * s_u_l, mask=valid, other=0.0).to(tl.float32)
        y = tl.load(local_ptr + row * length + t, mask=valid, other=0.0)
        y += tl.sum(Ct * tl.exp(A[:, None] * dt_sum[None, :]) * entering[:, None], 0) + skip * u
        if HAS_Z:
            zt = tl.load(z_ptr + b * s_z_b + d * s_z_d + t * s_z_l, mask=valid, other=0.0).to(tl.float32)
            y = y * zt * tl.sigmoid(zt)
        tl.store(out_ptr + b * s_o_b + d * s_o_d + t * s_o_l, y.to(out_ptr.dtype.element_ty), mask=valid)


@triton.jit
def _scan_bwd_kernel(
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
            dt = _softplus(dt)
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
            dt = _softplus(raw)
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
            dt_next = _softplus(dt_next)
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


def _segments(rows: int, n_chunks: int) -> int:
    """Segments per (batch, channel) row so that the grid has about TUNING['programs'] programs."""
    return max(1, min(n_chunks, TUNING["programs"] // max(rows, 1)))


def _entering_states(seg_end: Tensor, seg_dt: Tensor, A: Tensor) -> Tensor:
    """State entering each segment. seg_end: (R, S, N) local end states; seg_dt: (R, S) sums of dt; A: (R, N)."""
    entering = torch.zeros_like(seg_end)
    decay = torch.exp(seg_dt[:, :, None] * A[:, None, :])  # decay across each whole segment
    for s in range(1, seg_end.shape[1]):
        entering[:, s] = decay[:, s - 1] * entering[:, s - 1] + seg_end[:, s - 1]
    return entering


def _as_groups(m: Tensor, batch: int, length: int) -> Tensor:
    """B or C as a (batch, G, N, L) view (no copy): (batch, N, L) -> G=1; (dim, N) -> G=dim, stride 0 in time."""
    if m.dim() == 3:
        return m.unsqueeze(1)
    if m.dim() == 2:
        return m[None, :, :, None].expand(batch, m.shape[0], m.shape[1], length)
    return m


# Launch parameters, measured with benchmarks/tune_triton_scan.py on an H100 at the vivim-b3 stage-1 shape
# (benchmarks/results/): steps per chunk by input element size (fp32 128, bf16/fp16 256), warps per program,
# and the grid size below which long sequences are split into segments scanned in parallel.
TUNING = {"block_l": {4: 128, 2: 256}, "num_warps": 2, "num_stages": 3, "bwd_num_warps": 4, "programs": 512,
          # without gradients: "one_pass" (scan_triton_onepass: one pass, a row's chunk spread over a program's
          # threads), "warps" (scan_triton_warps: one pass, a row's states spread over warps; slower so far, for
          # experiments), "rows" (scan_triton_rows, a thread per row), "chunks" (the kernels above) or "auto":
          # one_pass wherever the per-step inputs are contiguous along L (at b4 d128 L20480 on an H200, fp32, GPU
          # time: 0.235 ms against 0.338 for chunks and 0.298 for rows, results/h200_tune_one_pass.log; 0.241
          # against 0.307 for warps in another run, h200_tune_warps.log); otherwise rows for 16-bit or token-major
          # inputs (the model's inference layout, which rows read coalesced: 1.17 against 1.94 ms for
          # channel-major rows at vivim-b3's stage-1 call, fp32, benchmarks/row_kernel_layouts.py) and chunks for
          # the rest. "one_pass" and "warps" fall back as "auto" does where they do not apply. "gluon_one_pass"
          # (scan_gluon_onepass: the one-pass kernel written in Gluon, its exchange across threads by hand) likewise;
          # "auto" takes it before one_pass where Gluon is available (H100, b4 d128 L20480, GPU time: fp32 0.193
          # against 0.242 ms, bf16 0.155 against 0.208; results/h100_s10_scan.log, h100_s10_gluon_*.log).
          # "gluon_tma_bc" (scan_gluon_tma_bc: the same with B and C staged through shared memory by TMA) before
          # both where it applies (Hopper, float32 B/C, L a multiple of 1024; H100 b4 d128 L20480 fp32 kernel time
          # 0.159 against 0.184 ms, results/h100_s12_tma_bc_sweep_stage1.log).
          "inference_kernel": "auto"}


def _inference_kernel(u: Tensor, delta: Tensor, z: Tensor | None, B: Tensor, C: Tensor, n_state: int) -> str:
    """Which kernel an inference (no-gradient) scan goes to, per TUNING['inference_kernel']: "gluon_tma_bc",
    "gluon_one_pass", "warps", "one_pass", "rows" or "chunks". B, C as the caller gave them."""
    choice = TUNING["inference_kernel"]
    if choice in ("auto", "gluon_tma_bc") and scan_gluon_tma_bc.supports(u, delta, z, B, C):
        return "gluon_tma_bc"
    if choice == "gluon_tma_bc":
        choice = "auto"
    if choice in ("auto", "gluon_one_pass") and scan_gluon_onepass.supports(u, delta, z, B, C):
        return "gluon_one_pass"
    if choice == "gluon_one_pass":
        choice = "auto"
    if choice in ("auto", "one_pass", "warps"):
        if scan_triton_onepass.supports(u, delta, z, B, C):
            return "warps" if choice == "warps" else "one_pass"
        token_major = u.stride(1) == 1 and u.shape[1] > 1
        choice = "rows" if u.element_size() == 2 or token_major else "chunks"
    return choice if choice != "rows" or scan_triton_rows.supports(n_state, B, C) else "chunks"


def _block_l(length: int, element_size: int = 4) -> int:
    block = TUNING["block_l"]
    block = block.get(element_size, 128) if isinstance(block, dict) else block
    return block if length >= block else max(16, triton.next_power_of_2(length))


class _TritonScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
        batch, dim, length = u.shape
        n_state = A.shape[1]
        if n_state & (n_state - 1):
            raise ValueError(f"the Triton scan needs a power-of-two state size; got N={n_state}")
        Bg, Cg = _as_groups(B, batch, length), _as_groups(C, batch, length)
        if Bg.shape[1] != Cg.shape[1]:
            raise ValueError("the Triton scan needs B and C with the same grouping")
        groups = Bg.shape[1]
        need_grad = any(ctx.needs_input_grad[:8])
        out = torch.empty_like(u)
        kernel = None if need_grad else _inference_kernel(u, delta, z, B, C, n_state)
        if kernel == "gluon_tma_bc":
            return scan_gluon_tma_bc.scan_tma_bc(u, delta, A, Bg, Cg, D, z, delta_bias, delta_softplus, out)
        if kernel == "gluon_one_pass":
            return scan_gluon_onepass.scan_one_pass_gluon(u, delta, A, Bg, Cg, D, z, delta_bias, delta_softplus,
                                                          out)
        if kernel == "one_pass":
            return scan_triton_onepass.scan_one_pass(u, delta, A, Bg, Cg, D, z, delta_bias, delta_softplus, out)
        if kernel == "warps":
            return scan_triton_warps.scan_warps(u, delta, A, Bg, Cg, D, z, delta_bias, delta_softplus, out)
        if kernel == "rows":
            return scan_triton_rows.scan_by_rows(u, delta, A, Bg, Cg, D, z, delta_bias, delta_softplus, out)
        block_l = _block_l(length, u.element_size())
        n_chunks = triton.cdiv(length, block_l)
        zz = z if z is not None else u
        common = (dim, length, n_chunks, dim // groups)
        flags = dict(N_STATE=n_state, BLOCK_L=block_l, SOFTPLUS=bool(delta_softplus), HAS_D=D is not None,
                     HAS_Z=z is not None, HAS_BIAS=delta_bias is not None)
        D_arg = D if D is not None else A
        bias_arg = delta_bias if delta_bias is not None else A
        segments = 1 if need_grad else _segments(batch * dim, n_chunks)
        per_segment = triton.cdiv(n_chunks, segments)
        segments = triton.cdiv(n_chunks, per_segment)
        if segments == 1:
            states = (torch.empty(batch * dim * n_chunks * n_state, device=u.device, dtype=torch.float32)
                      if need_grad else out)
            _scan_fwd_kernel[(batch * dim,)](
                u, delta, A, Bg, Cg, D_arg, zz, bias_arg, out, states, out, out, *common, n_chunks,
                *u.stride(), *delta.stride(), *A.stride(), *Bg.stride(), *Cg.stride(), *zz.stride(), *out.stride(),
                SAVE_STATES=need_grad, SEGMENTED=False, num_warps=TUNING["num_warps"], num_stages=TUNING["num_stages"],
                **flags,
            )
        else:  # inference: segments in parallel, then one pass adding the states that enter each segment
            f32 = dict(device=u.device, dtype=torch.float32)
            local = torch.empty(batch * dim * length, **f32)
            seg_end = torch.empty(batch * dim, segments, n_state, **f32)
            seg_dt = torch.empty(batch * dim, segments, **f32)
            _scan_fwd_kernel[(batch * dim * segments,)](
                u, delta, A, Bg, Cg, D_arg, zz, bias_arg, local, local, seg_end, seg_dt, *common, per_segment,
                *u.stride(), *delta.stride(), *A.stride(), *Bg.stride(), *Cg.stride(), *zz.stride(), *out.stride(),
                SAVE_STATES=False, SEGMENTED=True, num_warps=TUNING["num_warps"], **flags,
            )
            entering = _entering_states(seg_end, seg_dt, A.float().repeat(batch, 1))
            _scan_fix_kernel[(batch * dim * segments,)](
                u, delta, A, Cg, D_arg, zz, bias_arg, local, entering, out, *common, per_segment,
                *u.stride(), *delta.stride(), *A.stride(), *Cg.stride(), *zz.stride(), *out.stride(),
                num_warps=TUNING["num_warps"], **flags,
            )
            states = None
        if need_grad:
            ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, states)
            ctx.delta_softplus = bool(delta_softplus)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        u, delta, A, B, C, D, z, delta_bias, states = ctx.saved_tensors
        batch, dim, length = u.shape
        n_state = A.shape[1]
        Bg, Cg = _as_groups(B, batch, length), _as_groups(C, batch, length)
        groups = Bg.shape[1]
        block_l = _block_l(length, u.element_size())
        n_chunks = triton.cdiv(length, block_l)
        grad_out = grad_out.contiguous()
        f32 = dict(device=u.device, dtype=torch.float32)
        g_u = torch.empty(u.shape, **f32)
        g_delta = torch.empty(u.shape, **f32)
        g_z = torch.empty(u.shape, **f32) if z is not None else g_u
        g_A = torch.empty(batch * dim, n_state, **f32)
        g_B = torch.zeros(batch, groups, n_state, length, **f32)
        g_C = torch.zeros(batch, groups, n_state, length, **f32)
        g_D = torch.empty(batch * dim, **f32)
        g_bias = torch.empty(batch * dim, **f32)
        zz = z if z is not None else u
        _scan_bwd_kernel[(batch * dim,)](
            u, delta, A, Bg, Cg, D if D is not None else A, zz, delta_bias if delta_bias is not None else A,
            states, grad_out, g_u, g_delta, g_z, g_A, g_B, g_C, g_D, g_bias,
            dim, length, n_chunks, dim // groups,
            *u.stride(), *delta.stride(), *A.stride(), *Bg.stride(), *Cg.stride(), *zz.stride(), *grad_out.stride(),
            N_STATE=n_state, BLOCK_L=block_l, SOFTPLUS=ctx.delta_softplus, HAS_D=D is not None,
            HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, num_warps=TUNING["bwd_num_warps"],
        )
        return (
            g_u.to(u.dtype),
            g_delta.to(delta.dtype),
            g_A.view(batch, dim, n_state).sum(0).to(A.dtype),
            _grad_like(g_B, B),
            _grad_like(g_C, C),
            g_D.view(batch, dim).sum(0).to(D.dtype) if D is not None else None,
            g_z.to(z.dtype) if z is not None else None,
            g_bias.view(batch, dim).sum(0).to(delta_bias.dtype) if delta_bias is not None else None,
            None,
        )


class _InferenceContext:
    """Stands in for autograd's ctx when no input needs a gradient: calling `_TritonScan.forward` directly
    skips the autograd.Function machinery (host time per call; the kernels take ~0.2 ms)."""

    needs_input_grad = (False,) * 9


_INFERENCE = _InferenceContext()


def _grad_like(g: Tensor, original: Tensor) -> Tensor:
    if original.dim() == 3:
        return g[:, 0].to(original.dtype)
    if original.dim() == 2:
        return g.sum(dim=(0, 3)).to(original.dtype)
    return g.to(original.dtype)


def selective_scan_triton(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
) -> Tensor:
    """Triton selective scan on CUDA tensors; same arguments and result as `selective_scan_reference`."""
    check_scan_args(u, delta, A, B, C, D, z, delta_bias)
    if needs_grad(u, delta, A, B, C, D, z, delta_bias):
        return _TritonScan.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    if torch.compiler.is_compiling():
        return torch.ops.vivim.selective_scan_triton(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    return _TritonScan.forward(_INFERENCE, u, delta, A, B, C, D, z, delta_bias, delta_softplus)


# torch.compile: the inference scan as an opaque custom op, so Dynamo traces the model around it in one graph
# (the autograd.Function above, with its Triton launches and host-side segment loop, would break the graph).
@torch.library.custom_op("vivim::selective_scan_triton", mutates_args=())
def selective_scan_triton_op(
    u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, z: Tensor | None,
    delta_bias: Tensor | None, delta_softplus: bool,
) -> Tensor:
    """Inference-only (no autograd) Triton scan as `torch.ops.vivim.selective_scan_triton`."""
    return _TritonScan.forward(_INFERENCE, u, delta, A, B, C, D, z, delta_bias, delta_softplus)


@selective_scan_triton_op.register_fake
def _(u, delta, A, B, C, D, z, delta_bias, delta_softplus):
    return torch.empty_like(u)
