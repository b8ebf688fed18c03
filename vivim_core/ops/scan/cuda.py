"""The selective scan on CUDA tensors with our own kernels (the "triton" backend): the kernel `policy` chooses,
behind autograd and, for torch.compile, a custom op.

Same arguments and result as `selective_scan_reference`. The kernels (and Triton) are imported by
`load_kernels`, which `vivim_core.ops.backends` calls when it probes this backend on a CUDA machine: CPU-only
installs never import Triton, and a missing or broken Triton marks the backend unavailable.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
from torch import Tensor

from . import policy
from .common import as_groups, check_scan_args, grad_from_groups, needs_grad
from .gluon import common as gluon_common


@functools.lru_cache(maxsize=None)
def load_kernels() -> dict[str, Callable[..., Tensor]]:
    """Import the kernels; returns each inference kernel's launcher by its policy name: (u, delta, A, Bg, Cg, D, z,
    delta_bias, delta_softplus, out) -> out, with B and C as (batch, G, N, L) views."""
    from .gluon.one_pass import scan_one_pass_gluon
    from .gluon.one_pass_tma import scan_one_pass_tma
    from .triton.chunk import scan_chunks
    from .triton.one_pass import scan_one_pass
    from .triton.rows import scan_rows

    launchers = {"gluon_one_pass_tma": scan_one_pass_tma, "gluon_one_pass": scan_one_pass_gluon,
                 "triton_one_pass": scan_one_pass, "triton_rows": scan_rows, "triton_chunk": scan_chunks}
    assert set(launchers) == set(policy.KERNELS)
    return launchers


def describe(u: Tensor, delta: Tensor, z: Tensor | None, B: Tensor, C: Tensor, grad: bool) -> policy.ScanCall:
    """`policy.describe` with this GPU's facts (B and C as the caller gave them)."""
    return policy.describe(u, delta, z, B, C, grad, gluon_common.capability(u.device), gluon_common.available(),
                           gluon_common.tma_available())


def chosen_kernel(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None,
                  z: Tensor | None = None, delta_bias: Tensor | None = None) -> str:
    """The kernel `selective_scan_cuda` runs for these CUDA tensors (for benchmarks and tests)."""
    grad = needs_grad(u, delta, A, B, C, D, z, delta_bias)
    return policy.choose_kernel(describe(u, delta, z, B, C, grad))


def _check_supported(A: Tensor, Bg: Tensor, Cg: Tensor) -> None:
    n_state = A.shape[1]
    if n_state & (n_state - 1):
        raise ValueError(f"the Triton scan needs a power-of-two state size; got N={n_state}")
    if Bg.shape[1] != Cg.shape[1]:
        raise ValueError("the Triton scan needs B and C with the same grouping")


class _CudaScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
        batch, _, length = u.shape
        Bg, Cg = as_groups(B, batch, length), as_groups(C, batch, length)
        _check_supported(A, Bg, Cg)
        out = torch.empty_like(u)
        if not any(ctx.needs_input_grad[:8]):
            kernel = policy.choose_kernel(describe(u, delta, z, B, C, False))
            return load_kernels()[kernel](u, delta, A, Bg, Cg, D, z, delta_bias, delta_softplus, out)
        # gradients: policy.TRAINING_KERNEL, the chunk kernel's forward saving its chunk-start states
        from .triton.chunk import chunk_forward

        states = chunk_forward(u, delta, A, Bg, Cg, D, z, delta_bias, delta_softplus, out, save_states=True)
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, states)
        ctx.delta_softplus = bool(delta_softplus)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        u, delta, A, B, C, D, z, delta_bias, states = ctx.saved_tensors
        batch, dim, length = u.shape
        Bg, Cg = as_groups(B, batch, length), as_groups(C, batch, length)
        from .triton.chunk import chunk_backward

        g = chunk_backward(u, delta, A, Bg, Cg, D, z, delta_bias, ctx.delta_softplus, states, grad_out)
        return (
            g["u"].to(u.dtype),
            g["delta"].to(delta.dtype),
            g["A"].view(batch, dim, -1).sum(0).to(A.dtype),
            grad_from_groups(g["B"], B),
            grad_from_groups(g["C"], C),
            g["D"].view(batch, dim).sum(0).to(D.dtype) if D is not None else None,
            g["z"].to(z.dtype) if z is not None else None,
            g["delta_bias"].view(batch, dim).sum(0).to(delta_bias.dtype) if delta_bias is not None else None,
            None,
        )


class _InferenceContext:
    """Stands in for autograd's ctx when no input needs a gradient: calling `_CudaScan.forward` directly skips the
    autograd.Function machinery (host time per call, comparable to the kernels' own)."""

    needs_input_grad = (False,) * 9


_INFERENCE = _InferenceContext()


def selective_scan_cuda(
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
    """Selective scan on CUDA tensors with our kernels; same arguments and result as `selective_scan_reference`."""
    check_scan_args(u, delta, A, B, C, D, z, delta_bias)
    if needs_grad(u, delta, A, B, C, D, z, delta_bias):
        return _CudaScan.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    if torch.compiler.is_compiling():
        return torch.ops.vivim.selective_scan_inference(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    return _CudaScan.forward(_INFERENCE, u, delta, A, B, C, D, z, delta_bias, delta_softplus)


# torch.compile: the inference scan as an opaque custom op, so Dynamo traces the model around it in one graph
# (the autograd.Function above, with its kernel choice and launches on the host, would break the graph).
@torch.library.custom_op("vivim::selective_scan_inference", mutates_args=())
def selective_scan_inference_op(
    u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, z: Tensor | None,
    delta_bias: Tensor | None, delta_softplus: bool,
) -> Tensor:
    """Inference-only (no autograd) scan as `torch.ops.vivim.selective_scan_inference`."""
    return _CudaScan.forward(_INFERENCE, u, delta, A, B, C, D, z, delta_bias, delta_softplus)


@selective_scan_inference_op.register_fake
def _(u, delta, A, B, C, D, z, delta_bias, delta_softplus):
    return torch.empty_like(u)
