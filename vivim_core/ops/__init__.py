"""Selective scan and causal conv1d, each with a choice of implementations (docs/architecture.md, Selective scan).

    from vivim_core.ops import selective_scan, causal_conv1d
    y = selective_scan(u, delta, A, B, C, D, z=z, delta_bias=bias, delta_softplus=True)

The argument convention and shapes are those of `mamba_ssm`'s `selective_scan_fn` and of `causal_conv1d_fn`; see
`vivim_core.ops.scan.common` for the shapes and `vivim_core.ops.scan.policy` for which implementation runs where.
`selective_scan_reference` is the sequential recurrence as published, the oracle of the tests.

    scan/         the selective scan: policy, reference, CUDA kernels (Triton, Gluon), CPU kernels (numba, chunked)
    conv/         the causal conv1d and the DSF's depthwise conv3d, with their Triton kernels
    scan_orders   the orders in which the scan branches read a clip's tokens
    backends      the registry of implementations and `auto`'s pick
"""

from __future__ import annotations

from torch import Tensor

from .backends import (
    CONV_BACKENDS,
    SCAN_BACKENDS,
    BackendUnavailableError,
    backend_status,
    chosen_backend,
    load_backends,
    resolve,
    use_backends,
)
from .scan.reference import selective_scan_reference

__all__ = [
    "selective_scan",
    "selective_scan_reference",
    "causal_conv1d",
    "use_backends",
    "backend_status",
    "chosen_backend",
    "load_backends",
    "BackendUnavailableError",
    "SCAN_BACKENDS",
    "CONV_BACKENDS",
]


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    backend: str = "auto",
) -> Tensor:
    """Selective scan (S6). u, delta, z: (batch, dim, L); A: (dim, N); B, C: (batch, N, L) (or (dim, N),
    (batch, G, N, L)); D, delta_bias: (dim,). Returns (batch, dim, L) in u's dtype.

    backend: 'auto' (the policy's pick for the tensors' device), 'mamba_ssm', 'triton' (our CUDA kernels), 'numba'
    (CPU), 'chunked' or 'reference'.
    """
    _, fn = resolve("scan", backend, u.is_cuda)
    return fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus)


def causal_conv1d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, activation: str | None = None, backend: str = "auto"
) -> Tensor:
    """Causal depthwise conv1d. x: (batch, dim, L); weight: (dim, width); bias: (dim,). Returns (batch, dim, L).

    activation: None or 'silu'. backend: 'auto', 'causal_conv1d' or 'torch'.
    """
    name, fn = resolve("conv", backend, x.is_cuda)
    if name == "causal_conv1d":  # the fused kernel wants a contiguous input and weight in x's dtype
        return fn(x.contiguous(), weight.to(x.dtype).contiguous(), None if bias is None else bias.to(x.dtype), activation)
    return fn(x, weight, bias, activation)
