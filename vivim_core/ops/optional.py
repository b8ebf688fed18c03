"""The conv kernels that need Triton, loaded on first use: the function, or None where Triton does not import
(a CUDA install without Triton: the PyTorch paths still work)."""

from __future__ import annotations

import importlib
from typing import Callable

# name -> (module under vivim_core.ops, function)
OPTIONAL_KERNELS = {
    "causal_conv1d_orders": ("conv.causal_triton", "causal_conv1d_orders_triton"),
    "dwconv3d_gelu_generic": ("conv.dwconv3d_triton", "dwconv3d_gelu_generic"),
    "dwconv3d_gelu_bf16": ("conv.dwconv3d_triton", "dwconv3d_gelu_bf16"),
}
_LOADED: dict[str, Callable | None] = {}


def optional_kernel(name: str) -> Callable | None:
    """The kernel OPTIONAL_KERNELS[name], imported once; None where the import fails."""
    if name not in _LOADED:
        module, function = OPTIONAL_KERNELS[name]
        try:
            _LOADED[name] = getattr(importlib.import_module(f"{__package__}.{module}"), function)
        except Exception:
            _LOADED[name] = None
    return _LOADED[name]


def load_optional_kernels() -> None:
    """Import every optional kernel now (`load_backends` calls it before torch.compile traces a model)."""
    for name in OPTIONAL_KERNELS:
        optional_kernel(name)
