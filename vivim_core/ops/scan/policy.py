"""Which selective-scan implementation runs, for which device, dtype, layout and gradient need: the one place
that decides, as data plus a small function.

Two levels:

1. `AUTO_BACKENDS`: the backend `selective_scan(..., backend="auto")` takes, by device: the first of the list
   that imports here (`vivim_core.ops.backends` loads them). On CUDA the official fused kernels of mamba-ssm where
   installed, else ours ("triton"), else the chunked PyTorch scan; on the CPU our numba kernels, else the chunked
   scan. The sequential reference is never automatic.

2. `INFERENCE_KERNELS`: inside the "triton" backend, which of our CUDA kernels a call runs. A call that needs
   gradients runs `TRAINING_KERNEL`, the chunk kernel's forward and backward (any layout, any dtype). A call
   without gradients runs the first kernel of the table whose conditions all hold (`CONDITIONS`, on a `ScanCall`
   that describes the call): what the kernel requires, and for the row kernel where it is the better choice. The
   last entry has no condition: every call has a kernel.

   ==================  =====================================================================================
   kernel              runs (inference) where
   ==================  =====================================================================================
   gluon_one_pass_tma  Hopper (compute capability 9.x) with Gluon's TMA; channel-major (every per-step input
                       contiguous along L); B and C float32, contiguous, 16-byte aligned; L a multiple of 1024
   gluon_one_pass      compute capability >= 8 with Gluon; channel-major; N even
   triton_one_pass     channel-major (Triton without Gluon)
   triton_rows         token-major (the model's inference layout: channels contiguous) or 16-bit inputs;
                       B and C varying in time; N a multiple of 4
   triton_chunk        anything else (time-invariant B and C, odd strides)
   ==================  =====================================================================================

Why this order: the one-pass kernels compute each state update's exp once and spread a row's time over a
program's threads, reading channel-major rows with coalesced loads; the Gluon versions write the exchange between
threads by hand, and the TMA one also stages B and C through shared memory, each faster than the one below it
where it applies. In the token-major layout a thread per row (the row kernel) reads neighbouring channels with
coalesced loads, which the one-pass kernels cannot. docs/architecture.md (Selective scan) has the figures.

The table is immutable. Tests and benchmarks that need another kernel than the policy's choose one with
`use_kernel` (a context manager), which refuses a kernel whose requirements do not hold for the call.

Nothing here imports Triton or touches a GPU: `describe` and `choose_kernel` are testable anywhere;
`vivim_core.ops.scan.cuda` describes each real call with the GPU's facts and runs the kernel chosen.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Iterator, Mapping

import torch
from torch import Tensor

AUTO_BACKENDS: Mapping[str, Mapping[str, tuple[str, ...]]] = MappingProxyType({
    "scan": MappingProxyType({"cuda": ("mamba_ssm", "triton", "chunked"), "cpu": ("numba", "chunked")}),
    "conv": MappingProxyType({"cuda": ("causal_conv1d", "torch"), "cpu": ("torch",)}),
})

# The chunk of the TMA kernel, in steps: 4 warps x 32 threads x 8 steps (vivim_core.ops.scan.gluon.one_pass_tma,
# CHUNK_STEPS; a test checks that the two agree).
TMA_CHUNK_STEPS = 1024


@dataclass(frozen=True)
class ScanCall:
    """What the kernel choice looks at in a call on CUDA tensors."""

    needs_grad: bool
    capability: tuple[int, int]  # the GPU's compute capability
    gluon: bool  # this Triton has Gluon
    gluon_tma: bool  # ... and Gluon's Hopper TMA API
    element_size: int  # bytes of an element of u (2: bfloat16 or float16)
    n_state: int
    length: int
    steps_contiguous: bool  # u, delta (and z) have unit stride along L
    token_major: bool  # u's channels have unit stride (and there is more than one channel)
    bc_vary: bool  # B and C vary in time: (batch, [G,] N, L)
    bc_contiguous_steps: bool  # ... with unit stride along L
    bc_float32_packed: bool  # ... float32, contiguous, 16-byte aligned (what a TMA descriptor reads)


def describe(u: Tensor, delta: Tensor, z: Tensor | None, B: Tensor, C: Tensor, needs_grad: bool,
             capability: tuple[int, int], gluon: bool, gluon_tma: bool) -> ScanCall:
    """A call's `ScanCall`: its tensors (B and C as the caller gave them) and the GPU's facts."""
    steps = [u, delta] + ([z] if z is not None else [])
    bc_vary = B.dim() >= 3 and C.dim() >= 3
    return ScanCall(
        needs_grad=needs_grad,
        capability=tuple(capability),
        gluon=gluon,
        gluon_tma=gluon_tma,
        element_size=u.element_size(),
        n_state=B.shape[-2] if bc_vary else B.shape[-1],
        length=u.shape[-1],
        steps_contiguous=all(t.stride(-1) == 1 for t in steps),
        token_major=u.stride(1) == 1 and u.shape[1] > 1,
        bc_vary=bc_vary,
        bc_contiguous_steps=bc_vary and B.stride(-1) == 1 and C.stride(-1) == 1,
        bc_float32_packed=bc_vary and all(m.dtype == torch.float32 and m.is_contiguous() and m.data_ptr() % 16 == 0
                                          for m in (B, C)),
    )


CONDITIONS: Mapping[str, Callable[[ScanCall], bool]] = MappingProxyType({
    "hopper": lambda c: c.capability[0] == 9,
    "compute capability >= 8": lambda c: c.capability[0] >= 8,
    "gluon": lambda c: c.gluon,
    "gluon tma": lambda c: c.gluon_tma,
    "channel-major": lambda c: c.steps_contiguous and c.bc_contiguous_steps,
    "token-major or 16-bit": lambda c: c.token_major or c.element_size == 2,
    "B and C vary in time": lambda c: c.bc_vary,
    "B and C float32 packed": lambda c: c.bc_float32_packed,
    "L whole TMA chunks": lambda c: c.length % TMA_CHUNK_STEPS == 0,
    "N even": lambda c: c.n_state % 2 == 0,
    "N multiple of 4": lambda c: c.n_state % 4 == 0,
})


@dataclass(frozen=True)
class KernelRule:
    """A kernel, what it requires of a call, and (beyond that) where the policy prefers it to the kernels below."""

    kernel: str
    requires: tuple[str, ...]
    chosen_where: tuple[str, ...] = ()


TRAINING_KERNEL = "triton_chunk"
INFERENCE_KERNELS: tuple[KernelRule, ...] = (
    KernelRule("gluon_one_pass_tma", ("hopper", "gluon tma", "channel-major", "B and C float32 packed",
                                      "L whole TMA chunks", "N even")),
    KernelRule("gluon_one_pass", ("compute capability >= 8", "gluon", "channel-major", "N even")),
    KernelRule("triton_one_pass", ("channel-major",)),
    KernelRule("triton_rows", ("B and C vary in time", "N multiple of 4"), chosen_where=("token-major or 16-bit",)),
    KernelRule("triton_chunk", ()),
)
KERNELS = tuple(rule.kernel for rule in INFERENCE_KERNELS)

_forced: contextvars.ContextVar[str | None] = contextvars.ContextVar("vivim_scan_kernel", default=None)


def unmet_requirements(kernel: str, call: ScanCall) -> list[str]:
    """What `kernel` requires that `call` does not have (empty: the kernel can run it)."""
    rule = next((r for r in INFERENCE_KERNELS if r.kernel == kernel), None)
    if rule is None:
        raise ValueError(f"unknown scan kernel {kernel!r}; choose from {', '.join(KERNELS)}")
    return [name for name in rule.requires if not CONDITIONS[name](call)]


def choose_kernel(call: ScanCall) -> str:
    """The kernel that runs `call`: TRAINING_KERNEL where it needs gradients, else the kernel `use_kernel` asked
    for, else the first entry of INFERENCE_KERNELS whose conditions hold."""
    if call.needs_grad:
        return TRAINING_KERNEL
    forced = _forced.get()
    if forced is not None:
        unmet = unmet_requirements(forced, call)
        if unmet:
            raise ValueError(f"the scan kernel {forced!r} cannot run this call: not {', '.join(unmet)}")
        return forced
    return _first_kernel(call)


@functools.lru_cache(maxsize=256)
def _first_kernel(call: ScanCall) -> str:
    """The first entry of INFERENCE_KERNELS whose conditions `call` meets (cached: a model calls a few shapes over
    and over)."""
    return next(rule.kernel for rule in INFERENCE_KERNELS
                if all(CONDITIONS[name](call) for name in rule.requires + rule.chosen_where))


@contextlib.contextmanager
def use_kernel(kernel: str) -> Iterator[None]:
    """Run inference scans inside the block with `kernel` (one of KERNELS) instead of the policy's choice: for
    tests and benchmarks. A call the kernel cannot run (`unmet_requirements`) raises ValueError; calls that need
    gradients still run the training kernel."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown scan kernel {kernel!r}; choose from {', '.join(KERNELS)}")
    token = _forced.set(kernel)
    try:
        yield
    finally:
        _forced.reset(token)
