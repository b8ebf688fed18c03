"""The selective scan exactly as published (Mamba, S6): one time step after another.

The reference twin of `vivim_core.ops.selective_scan` and the oracle of every test. `auto` never picks it: it
runs L Python iterations.

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t        h: (batch, dim, N)
    y_t = <h_t, C_t> + D * u_t,   out_t = y_t * silu(z_t)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .common import check_scan_args, discretised_delta, finish_output, per_channel


def selective_scan_reference(
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
    """Sequential reference scan. Shapes as in `vivim_core.ops.scan.common`; returns (batch, dim, L) in u's dtype."""
    check_scan_args(u, delta, A, B, C, D, z, delta_bias)
    batch, dim, length = u.shape
    delta = discretised_delta(delta, delta_bias, delta_softplus)
    uf = u.float()
    Bf = per_channel(B, dim)  # broadcastable to (batch, dim, N, L)
    Cf = per_channel(C, dim)
    A = A.float()
    state = u.new_zeros(batch, dim, A.shape[1], dtype=torch.float32)
    ys = []
    for t in range(length):
        b_t = Bf[..., min(t, Bf.shape[-1] - 1)]
        c_t = Cf[..., min(t, Cf.shape[-1] - 1)]
        decay = torch.exp(delta[:, :, t, None] * A)
        state = decay * state + (delta[:, :, t] * uf[:, :, t])[..., None] * b_t
        ys.append((state * c_t).sum(-1))
    y = torch.stack(ys, dim=-1)
    return finish_output(y, u, D, z, u.dtype)
