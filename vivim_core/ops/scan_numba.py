"""Selective scan forward as a compiled CPU kernel (numba): the CPU's inference path.

Same arguments and result as `selective_scan_reference`; forward only (no autograd: training on the CPU uses
the `chunked` scan, which has a backward). Every state accumulates in float32.

One (batch, channel) row at a time, the recurrence runs step by step with the N states in SIMD registers:

    a = exp(dt_t A),   h = a h + dt_t u_t B_t,   y_t = <C_t, h>

so each state element is touched once, in registers, instead of ~16 passes over memory as PyTorch operations
need. exp is a degree-6 polynomial after Cody-Waite range reduction (relative error ~1e-7) so that the loop over
the N states vectorises; libm's exp would not. Rows are split across threads (the kernel releases the GIL).
States below 1e-30 are flushed to zero: subnormal arithmetic is ~100x slower on x86 and such values do not
change any output.

numba is a dependency of vivim-core; when it cannot be imported the CPU falls back to the `chunked` scan.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch
from torch import Tensor

from ._checks import check_scan_args

_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693359375)  # ln 2 split in two for an exact range reduction (Cody-Waite)
_LN2_LO = np.float32(-2.12194440e-4)
_TINY = np.float32(1e-30)


@numba.njit(fastmath=True, nogil=True, cache=True)
def _scan_rows(u, dt, A, B, C, b_varies, c_varies, channels_per_group, D, out, first_row, last_row):
    """The scan for rows [first_row, last_row) of `out`, every array float32: out = <C, h> + D u.

    u, dt, out: (batch * dim, L); D: (dim,) (zeros when absent); A: (dim, N); B, C: (batch, G, L or 1, N).
    """
    length = u.shape[1]
    dim, n_state = A.shape
    h = np.zeros(n_state, np.float32)
    a = np.empty(n_state, np.float32)
    scale = np.empty(n_state, np.float32)
    exponent = np.empty(n_state, np.int32)
    scale_bits = scale.view(np.int32)
    for row in range(first_row, last_row):
        batch, channel = row // dim, row % dim
        group = channel // channels_per_group
        A_row = A[channel]
        h[:] = 0.0
        for t in range(length):
            dt_t = dt[row, t]
            u_t = u[row, t]
            du_t = dt_t * u_t
            tb = t * b_varies
            tc = t * c_varies
            for n in range(n_state):  # a = exp(dt A) = p(f) 2^k, x = k ln 2 + f, |f| <= ln 2 / 2
                x = max(min(dt_t * A_row[n], np.float32(88.0)), np.float32(-87.0))
                k = math.floor(x * _LOG2E + np.float32(0.5))
                f = x - k * _LN2_HI - k * _LN2_LO
                p = np.float32(1.0 / 720.0)
                p = p * f + np.float32(1.0 / 120.0)
                p = p * f + np.float32(1.0 / 24.0)
                p = p * f + np.float32(1.0 / 6.0)
                p = p * f + np.float32(0.5)
                p = p * f + np.float32(1.0)
                a[n] = p * f + np.float32(1.0)
                exponent[n] = (np.int32(k) + np.int32(127)) << np.int32(23)
            for n in range(n_state):
                scale_bits[n] = exponent[n]  # 2^k, written as float32 bits
            acc = np.float32(0.0)
            for n in range(n_state):
                state = a[n] * scale[n] * h[n] + du_t * B[batch, group, tb, n]
                state = state if abs(state) > _TINY else np.float32(0.0)
                h[n] = state
                acc += state * C[batch, group, tc, n]
            out[row, t] = acc + D[channel] * u_t


_POOL: list[ThreadPoolExecutor] = []
# Below this many state updates (rows * L * N) one thread does the work: splitting costs more than it saves.
PARALLEL_MIN_WORK = 2**20


def _threads() -> int:
    return max(1, min(torch.get_num_threads(), os.cpu_count() or 1))


def _pool(workers: int) -> ThreadPoolExecutor:
    if not _POOL or _POOL[0]._max_workers != workers:
        _POOL[:] = [ThreadPoolExecutor(workers, thread_name_prefix="vivim-scan")]
    return _POOL[0]


def _time_major(m: Tensor, batch: int) -> tuple[np.ndarray, int]:
    """B or C as a (batch, G, L or 1, N) float32 array, and 1 if it varies in time (else 0)."""
    if m.dim() == 2:  # (dim, N): time-invariant, one group per channel
        return np.ascontiguousarray(m.float()[None, :, None, :].expand(batch, -1, -1, -1).numpy()), 0
    if m.dim() == 3:  # (batch, N, L)
        m = m[:, None]
    return np.ascontiguousarray(m.float().transpose(2, 3).numpy()), 1


def selective_scan_numba(
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
    """Forward-only selective scan on CPU tensors; same arguments and result as `selective_scan_reference`."""
    check_scan_args(u, delta, A, B, C, D, z, delta_bias)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (u, delta, A, B, C, D, z, delta_bias)):
        raise ValueError("the numba scan computes the forward only; for gradients use backend='chunked' "
                         "(backend='auto' does this by itself)")
    if u.is_cuda:
        raise ValueError("the numba scan runs on CPU tensors; use backend='auto' on the GPU")
    batch, dim, length = u.shape
    rows = batch * dim

    def f32(t: Tensor) -> np.ndarray:
        return np.ascontiguousarray(t.detach().float().numpy().reshape(rows, length))  # numpy copies if strided

    # Element-wise work in NumPy (vectorised; it releases the GIL), done by each thread for its own rows:
    # PyTorch's parallel ops would leave its OpenMP threads spinning against the kernel's threads on a small
    # machine (measured: 2x slower on 2 cores).
    delta_np, u_np = f32(delta), f32(u)
    bias = None if delta_bias is None else delta_bias.detach().float().numpy()
    gate = None if z is None else f32(z)
    Bt, b_varies = _time_major(B.detach(), batch)
    Ct, c_varies = _time_major(C.detach(), batch)
    if Bt.shape[1] != Ct.shape[1]:  # mixed conventions: a group per channel for both
        Bt = np.ascontiguousarray(np.repeat(Bt, dim // Bt.shape[1], axis=1))
        Ct = np.ascontiguousarray(np.repeat(Ct, dim // Ct.shape[1], axis=1))
    A_np = np.ascontiguousarray(A.detach().float().numpy())
    skip = np.zeros(dim, np.float32) if D is None else np.ascontiguousarray(D.detach().float().numpy())
    dt = np.empty((rows, length), np.float32)
    out = np.empty((rows, length), np.float32)

    def scan(first: int, last: int) -> None:
        raw = delta_np[first:last]
        if bias is not None:
            raw = raw + bias[np.arange(first, last) % dim, None]
        if delta_softplus:
            with np.errstate(over="ignore"):
                raw = np.where(raw > 20.0, raw, np.log1p(np.exp(raw)))  # PyTorch's softplus (threshold 20)
        dt[first:last] = raw
        _scan_rows(u_np, dt, A_np, Bt, Ct, b_varies, c_varies, dim // Bt.shape[1], skip, out, first, last)
        if gate is not None:
            g = gate[first:last]
            with np.errstate(over="ignore"):
                out[first:last] *= g / (np.float32(1.0) + np.exp(-g))  # silu(z); exp overflow gives 0, the limit

    workers = min(_threads(), rows) if rows * length * A.shape[1] >= PARALLEL_MIN_WORK else 1
    if workers == 1:
        scan(0, rows)
    else:
        bounds = [rows * i // workers for i in range(workers + 1)]
        for job in [_pool(workers).submit(scan, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]:
            job.result()
    y = torch.from_numpy(out).view(batch, dim, length)
    return y.to(u.dtype)
