"""Argument checks and tensor helpers shared by every selective-scan implementation.

The convention is `mamba_ssm.ops.selective_scan_interface.selective_scan_fn`:

    u, delta:   (batch, dim, L)
    A:          (dim, N)                       real, usually negative
    B, C:       (dim, N)                       time-invariant, or
                (batch, N, L)                  input-dependent (what Mamba uses), or
                (batch, G, N, L)               input-dependent, G groups of dim // G channels
    D:          (dim,)                         optional skip
    z:          (batch, dim, L)                optional gate, output *= silu(z)
    delta_bias: (dim,)                         optional, added to delta before softplus

Kernels work on B and C in one form, (batch, G, N, L) (`as_groups`), and hand their gradients back in the
caller's form (`grad_from_groups`).
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_scan_args(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D, z, delta_bias) -> None:
    """Raise ValueError with the offending argument and shape when the call is malformed."""
    if u.dim() != 3:
        raise ValueError(f"selective_scan: u must be (batch, dim, L), got shape {tuple(u.shape)}")
    batch, dim, length = u.shape
    if length < 1:
        raise ValueError("selective_scan: the sequence is empty (L = 0)")
    if delta.shape != u.shape:
        raise ValueError(f"selective_scan: delta shape {tuple(delta.shape)} must equal u shape {tuple(u.shape)}")
    if A.dim() != 2 or A.shape[0] != dim:
        raise ValueError(f"selective_scan: A must be (dim={dim}, N), got {tuple(A.shape)}")
    if A.is_complex():
        raise ValueError("selective_scan: complex A is not supported; Vivim uses real (S4D-real) A")
    n_state = A.shape[1]
    for name, m in (("B", B), ("C", C)):
        if m.dim() == 2:
            ok = m.shape == (dim, n_state)
        elif m.dim() == 3:
            ok = m.shape == (batch, n_state, length)
        elif m.dim() == 4:
            ok = m.shape[0] == batch and m.shape[2:] == (n_state, length) and dim % m.shape[1] == 0
        else:
            ok = False
        if not ok:
            raise ValueError(
                f"selective_scan: {name} has shape {tuple(m.shape)}; expected ({dim}, {n_state}), "
                f"({batch}, {n_state}, {length}) or ({batch}, G, {n_state}, {length}) with G dividing {dim}"
            )
    if D is not None and D.shape != (dim,):
        raise ValueError(f"selective_scan: D must be ({dim},), got {tuple(D.shape)}")
    if delta_bias is not None and delta_bias.shape != (dim,):
        raise ValueError(f"selective_scan: delta_bias must be ({dim},), got {tuple(delta_bias.shape)}")
    if z is not None and z.shape != u.shape:
        raise ValueError(f"selective_scan: z shape {tuple(z.shape)} must equal u shape {tuple(u.shape)}")


def needs_grad(*tensors: Tensor | None) -> bool:
    """Whether autograd will want gradients through a call on these tensors (None entries are skipped)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def as_groups(m: Tensor, batch: int, length: int) -> Tensor:
    """B or C as a (batch, G, N, L) view (no copy): (batch, N, L) -> G = 1; (dim, N) time-invariant -> G = dim,
    stride 0 along L; (batch, G, N, L) as it is."""
    if m.dim() == 3:
        return m.unsqueeze(1)
    if m.dim() == 2:
        return m[None, :, :, None].expand(batch, m.shape[0], m.shape[1], length)
    return m


def grad_from_groups(g: Tensor, like: Tensor) -> Tensor:
    """A (batch, G, N, L) gradient of B or C reduced back to the shape (and dtype) the caller gave it in."""
    if like.dim() == 3:
        return g[:, 0].to(like.dtype)
    if like.dim() == 2:
        return g.sum(dim=(0, 3)).to(like.dtype)
    return g.to(like.dtype)


def regroup(g: Tensor, original: Tensor, dim: int) -> Tensor:
    """A (batch, G', N, L) gradient computed with one group per channel (G' = dim, as done when B and C come in
    different conventions) summed back into `original`'s groups."""
    if original.dim() == 4 and g.shape[1] != original.shape[1]:
        b, _, n, length = g.shape
        return g.reshape(b, original.shape[1], -1, n, length).sum(2)
    if original.dim() == 3 and g.shape[1] != 1:
        return g.sum(1, keepdim=True)
    return g


def per_channel(m: Tensor, dim: int) -> Tensor:
    """B or C as a float32 tensor broadcastable to (batch, dim, N, L).

    (dim, N) -> (1, dim, N, 1); (batch, N, L) -> (batch, 1, N, L);
    (batch, G, N, L) -> (batch, dim, N, L) with each group repeated over its dim // G channels.
    """
    m = m.float()
    if m.dim() == 2:
        return m[None, :, :, None]
    if m.dim() == 3:
        return m[:, None]
    batch, groups, n_state, length = m.shape
    expanded = m[:, :, None].expand(batch, groups, dim // groups, n_state, length)
    return expanded.reshape(batch, dim, n_state, length)


def discretised_delta(delta: Tensor, delta_bias, delta_softplus: bool) -> Tensor:
    """delta (+ bias) (-> softplus), in float32. Shape (batch, dim, L)."""
    delta = delta.float()
    if delta_bias is not None:
        delta = delta + delta_bias.float()[:, None]
    if delta_softplus:
        delta = torch.nn.functional.softplus(delta)
    return delta


def finish_output(y: Tensor, u: Tensor, D, z, out_dtype: torch.dtype) -> Tensor:
    """y + D*u, gated by silu(z), cast to the input dtype. All (batch, dim, L)."""
    if D is not None:
        y = y + u.float() * D.float()[:, None]
    if z is not None:
        y = y * torch.nn.functional.silu(z.float())
    return y.to(out_dtype)
