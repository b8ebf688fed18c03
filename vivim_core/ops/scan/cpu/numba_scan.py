"""Selective scan as compiled CPU kernels (numba), forward and backward: the CPU's scan.

Same arguments and result as `selective_scan_reference`, differentiable. Every state accumulates in float32.

One (batch, channel) row at a time, the recurrence runs step by step with the N states in SIMD registers:

    a = exp(dt_t A),   h = a h + dt_t u_t B_t,   y_t = <C_t, h>

so each state element is touched once, in registers, instead of ~16 passes over memory as PyTorch operations
need. With gradients, the forward also saves the state every CHECKPOINT_EVERY steps; the backward recomputes
each stretch of states from its checkpoint and runs the adjoint recurrence lambda_t = C_t g_t + a_{t+1}
lambda_{t+1} backwards through it. exp is a degree-6 polynomial after Cody-Waite range reduction (relative
error ~1e-7) so that the loop over the N states vectorises; libm's exp would not. Rows are split across
threads (the kernel releases the GIL).
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

from ..common import check_scan_args, grad_from_groups, needs_grad, regroup

_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693359375)  # ln 2 split in two for an exact range reduction (Cody-Waite)
_LN2_LO = np.float32(-2.12194440e-4)
_TINY = np.float32(1e-30)


@numba.njit(fastmath=True, nogil=True, cache=True, inline="always")
def _decays(dt_t, A_row, a, exponent, scale, scale_bits):
    """a[n] = exp(dt_t A_row[n]) = p(f) 2^k with x = k ln 2 + f, |f| <= ln 2 / 2 (loops that vectorise)."""
    n_state = A_row.shape[0]
    for n in range(n_state):
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
    for n in range(n_state):
        a[n] *= scale[n]


@numba.njit(fastmath=True, nogil=True, cache=True)
def _scan_rows(u, dt, A, B, C, b_varies, c_varies, channels_per_group, D, out, checkpoints, every,
               first_row, last_row):
    """The scan for rows [first_row, last_row) of `out`, every array float32: out = <C, h> + D u.

    u, dt, out: (batch * dim, L); D: (dim,) (zeros when absent); A: (dim, N); B, C: (batch, G, L or 1, N).
    every > 0: checkpoints[row, c] = the state entering step c * every, (batch * dim, ceil(L / every), N).
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
            if every > 0 and t % every == 0:
                checkpoints[row, t // every, :] = h
            dt_t = dt[row, t]
            u_t = u[row, t]
            du_t = dt_t * u_t
            tb = t * b_varies
            tc = t * c_varies
            _decays(dt_t, A_row, a, exponent, scale, scale_bits)
            acc = np.float32(0.0)
            for n in range(n_state):
                state = a[n] * h[n] + du_t * B[batch, group, tb, n]
                state = state if abs(state) > _TINY else np.float32(0.0)
                h[n] = state
                acc += state * C[batch, group, tc, n]
            out[row, t] = acc + D[channel] * u_t


@numba.njit(fastmath=True, nogil=True, cache=True)
def _scan_rows_backward(u, dt, A, B, C, b_varies, c_varies, channels_per_group, g_y, checkpoints, every,
                        g_u, g_dt, g_A, g_B, g_C, first_row, last_row):
    """Gradients for rows [first_row, last_row), given g_y = d loss / d (<C, h>) (before D u and the gate).

    Writes g_u (the state path only), g_dt (batch * dim, L) and g_A (batch * dim, N) for these rows; adds into
    g_B, g_C (batch, G, L or 1, N), which the caller gives each thread separately (channels share B and C).
    """
    length = u.shape[1]
    dim, n_state = A.shape
    n_chunks = checkpoints.shape[1]
    h = np.empty((every + 1, n_state), np.float32)  # h[i] = state before step t0 + i
    decay = np.empty((every, n_state), np.float32)
    a = np.empty(n_state, np.float32)
    scale = np.empty(n_state, np.float32)
    exponent = np.empty(n_state, np.int32)
    scale_bits = scale.view(np.int32)
    carried = np.zeros(n_state, np.float32)  # a_{t+1} lambda_{t+1}
    grad_A = np.zeros(n_state, np.float32)
    for row in range(first_row, last_row):
        batch, channel = row // dim, row % dim
        group = channel // channels_per_group
        A_row = A[channel]
        carried[:] = 0.0
        grad_A[:] = 0.0
        for chunk in range(n_chunks - 1, -1, -1):
            t0 = chunk * every
            t1 = min(t0 + every, length)
            h[0, :] = checkpoints[row, chunk, :]
            for t in range(t0, t1):  # recompute this stretch's decays and states
                i = t - t0
                dt_t = dt[row, t]
                du_t = dt_t * u[row, t]
                tb = t * b_varies
                _decays(dt_t, A_row, a, exponent, scale, scale_bits)
                for n in range(n_state):
                    decay[i, n] = a[n]
                    state = a[n] * h[i, n] + du_t * B[batch, group, tb, n]
                    h[i + 1, n] = state if abs(state) > _TINY else np.float32(0.0)
            for t in range(t1 - 1, t0 - 1, -1):
                i = t - t0
                gy = g_y[row, t]
                dt_t = dt[row, t]
                u_t = u[row, t]
                tb = t * b_varies
                tc = t * c_varies
                acc_u = np.float32(0.0)
                acc_dt = np.float32(0.0)
                for n in range(n_state):
                    lam = gy * C[batch, group, tc, n] + carried[n]  # d loss / d h_t
                    b_tn = B[batch, group, tb, n]
                    g_C[batch, group, tc, n] += gy * h[i + 1, n]
                    g_B[batch, group, tb, n] += lam * dt_t * u_t
                    acc_u += lam * b_tn
                    through_decay = lam * decay[i, n] * h[i, n]  # d loss / d (dt_t A_n)
                    acc_dt += through_decay * A_row[n] + lam * u_t * b_tn
                    grad_A[n] += through_decay * dt_t
                    carried[n] = decay[i, n] * lam
                g_u[row, t] = acc_u * dt_t
                g_dt[row, t] = acc_dt
        g_A[row, :] = grad_A


_POOL: list[ThreadPoolExecutor] = []
# Below this many state updates (rows * L * N) one thread does the work: splitting costs more than it saves.
PARALLEL_MIN_WORK = 2**20
# Steps between saved states when gradients are needed: memory (rows, L / 64, N) floats, and the backward
# recomputes at most 64 steps of states per stretch.
CHECKPOINT_EVERY = 64


def _threads() -> int:
    return max(1, min(torch.get_num_threads(), os.cpu_count() or 1))


def _pool(workers: int) -> ThreadPoolExecutor:
    if not _POOL or _POOL[0]._max_workers != workers:
        _POOL[:] = [ThreadPoolExecutor(workers, thread_name_prefix="vivim-scan")]
    return _POOL[0]


def _row_ranges(rows: int, length: int, n_state: int) -> list[tuple[int, int]]:
    workers = min(_threads(), rows) if rows * length * n_state >= PARALLEL_MIN_WORK else 1
    bounds = [rows * i // workers for i in range(workers + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _in_parallel(job, ranges: list[tuple[int, int]]) -> list:
    """job(first_row, last_row) for each range, on the pool's threads when there are several."""
    if len(ranges) == 1:
        return [job(*ranges[0])]
    return [f.result() for f in [_pool(len(ranges)).submit(job, lo, hi) for lo, hi in ranges]]


def _time_major(m: Tensor, batch: int) -> tuple[np.ndarray, int]:
    """B or C as a (batch, G, L or 1, N) float32 array, and 1 if it varies in time (else 0)."""
    if m.dim() == 2:  # (dim, N): time-invariant, one group per channel
        return np.ascontiguousarray(m.float()[None, :, None, :].expand(batch, -1, -1, -1).numpy()), 0
    if m.dim() == 3:  # (batch, N, L)
        m = m[:, None]
    return np.ascontiguousarray(m.float().transpose(2, 3).numpy()), 1


def _grad_in_shape(g: np.ndarray, like: Tensor, dim: int) -> Tensor:
    """A (batch, G, L or 1, N) gradient of B or C back in the shape (and dtype) the caller gave it."""
    return grad_from_groups(regroup(torch.from_numpy(g).transpose(2, 3), like, dim), like)


class _Inputs:
    """The scan's inputs as float32 NumPy arrays, in the kernels' layouts. Element-wise work is done in NumPy
    (vectorised; it releases the GIL), each thread for its own rows: PyTorch's parallel ops would leave its
    OpenMP threads spinning against the kernel's threads on a small machine (2x slower on 2 cores)."""

    def __init__(self, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
        self.batch, self.dim, self.length = u.shape
        self.rows = self.batch * self.dim
        self.softplus = bool(delta_softplus)
        self.u, self.delta, self.z = self.f32(u), self.f32(delta), None if z is None else self.f32(z)
        self.bias = None if delta_bias is None else delta_bias.detach().float().numpy()
        self.B, self.b_varies = _time_major(B.detach(), self.batch)
        self.C, self.c_varies = _time_major(C.detach(), self.batch)
        if self.B.shape[1] != self.C.shape[1]:  # mixed conventions: a group per channel for both
            self.B = np.ascontiguousarray(np.repeat(self.B, self.dim // self.B.shape[1], axis=1))
            self.C = np.ascontiguousarray(np.repeat(self.C, self.dim // self.C.shape[1], axis=1))
        self.A = np.ascontiguousarray(A.detach().float().numpy())
        self.D = np.zeros(self.dim, np.float32) if D is None else np.ascontiguousarray(D.detach().float().numpy())
        self.dt = np.empty((self.rows, self.length), np.float32)
        self.channels_per_group = self.dim // self.B.shape[1]

    def f32(self, t: Tensor) -> np.ndarray:
        return np.ascontiguousarray(t.detach().float().numpy().reshape(self.rows, self.length))  # copies if strided

    def raw(self, first: int, last: int) -> np.ndarray:
        raw = self.delta[first:last]
        return raw if self.bias is None else raw + self.bias[np.arange(first, last) % self.dim, None]

    def fill_dt(self, first: int, last: int) -> None:
        raw = self.raw(first, last)
        if self.softplus:
            with np.errstate(over="ignore"):
                raw = np.where(raw > 20.0, raw, np.log1p(np.exp(raw)))  # PyTorch's softplus (threshold 20)
        self.dt[first:last] = raw

    def silu_z(self, first: int, last: int) -> np.ndarray:
        z = self.z[first:last]
        with np.errstate(over="ignore"):
            return z / (np.float32(1.0) + np.exp(-z))  # exp overflow gives 0, the limit


def _forward(x: _Inputs, every: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(out, y, checkpoints): the gated output, the output before the gate (kept only when there is a gate and
    gradients are needed), and the saved states (empty when every == 0)."""
    out = np.empty((x.rows, x.length), np.float32)
    keep_y = every > 0 and x.z is not None
    y = np.empty_like(out) if keep_y else out
    n_state = x.A.shape[1]
    checkpoints = np.empty((x.rows, -(-x.length // every), n_state) if every else (1, 1, 1), np.float32)

    def job(first: int, last: int) -> None:
        x.fill_dt(first, last)
        _scan_rows(x.u, x.dt, x.A, x.B, x.C, x.b_varies, x.c_varies, x.channels_per_group, x.D, y, checkpoints,
                   every, first, last)
        if x.z is not None:
            np.multiply(y[first:last], x.silu_z(first, last), out=out[first:last])

    _in_parallel(job, _row_ranges(x.rows, x.length, n_state))
    return out, y, checkpoints


class _NumbaScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
        x = _Inputs(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
        out, y, checkpoints = _forward(x, CHECKPOINT_EVERY)
        ctx.inputs, ctx.y, ctx.checkpoints = x, y, checkpoints
        ctx.originals = (u, delta, A, B, C, D, z, delta_bias)
        return torch.from_numpy(out).view(u.shape).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        x, y, checkpoints = ctx.inputs, ctx.y, ctx.checkpoints
        u, delta, A, B, C, D, z, delta_bias = ctx.originals
        g_out = np.ascontiguousarray(grad_out.detach().float().numpy().reshape(x.rows, x.length))
        g_y = np.empty_like(g_out)
        g_z = np.empty_like(g_out) if z is not None else None
        g_u, g_dt = np.empty_like(g_out), np.empty_like(g_out)
        n_state = x.A.shape[1]
        g_A = np.empty((x.rows, n_state), np.float32)
        ranges = _row_ranges(x.rows, x.length, n_state)

        def job(first: int, last: int):
            rows = slice(first, last)
            if x.z is not None:
                zr = x.z[rows]
                with np.errstate(over="ignore"):
                    sig = np.float32(1.0) / (np.float32(1.0) + np.exp(-zr))
                g_y[rows] = g_out[rows] * zr * sig
                g_z[rows] = g_out[rows] * y[rows] * sig * (np.float32(1.0) + zr * (np.float32(1.0) - sig))
            else:
                g_y[rows] = g_out[rows]
            g_B, g_C = np.zeros_like(x.B), np.zeros_like(x.C)  # this thread's share of the shared B, C
            _scan_rows_backward(x.u, x.dt, x.A, x.B, x.C, x.b_varies, x.c_varies, x.channels_per_group, g_y,
                                checkpoints, CHECKPOINT_EVERY, g_u, g_dt, g_A, g_B, g_C, first, last)
            g_u[rows] += g_y[rows] * x.D[np.arange(first, last) % x.dim, None]
            if x.softplus:  # d softplus(r) / d r = sigmoid(r)
                with np.errstate(over="ignore"):
                    g_dt[rows] /= np.float32(1.0) + np.exp(-x.raw(first, last))
            return g_B, g_C

        shares = _in_parallel(job, ranges)
        g_B, g_C = sum(share[0] for share in shares), sum(share[1] for share in shares)
        shape = (x.batch, x.dim, x.length)
        g_raw = torch.from_numpy(g_dt).view(shape)
        as_torch = lambda a: torch.from_numpy(a).view(shape)  # noqa: E731
        grad_D = None
        if D is not None and ctx.needs_input_grad[5]:
            grad_D = torch.from_numpy((g_y * x.u).reshape(shape).sum(axis=(0, 2))).to(D.dtype)
        grad_bias = g_raw.sum(dim=(0, 2)).to(delta_bias.dtype) if delta_bias is not None else None
        return (
            as_torch(g_u).to(u.dtype),
            g_raw.to(delta.dtype),
            torch.from_numpy(g_A).view(x.batch, x.dim, n_state).sum(0).to(A.dtype),
            _grad_in_shape(g_B, B, x.dim),
            _grad_in_shape(g_C, C, x.dim),
            grad_D,
            as_torch(g_z).to(z.dtype) if z is not None else None,
            grad_bias,
            None,
        )


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
    """Selective scan on CPU tensors; same arguments and result as `selective_scan_reference`, differentiable."""
    check_scan_args(u, delta, A, B, C, D, z, delta_bias)
    if u.is_cuda:
        raise ValueError("the numba scan runs on CPU tensors; use backend='auto' on the GPU")
    if needs_grad(u, delta, A, B, C, D, z, delta_bias):
        return _NumbaScan.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    out, _, _ = _forward(_Inputs(u, delta, A, B, C, D, z, delta_bias, delta_softplus), every=0)
    return torch.from_numpy(out).view(u.shape).to(u.dtype)
