"""Optional GPU kernels (Triton modules) loaded on first use: the function, or None where it does not import."""

from __future__ import annotations

import importlib
from typing import Callable

_LOADED: dict[tuple[str, str], Callable | None] = {}


def optional_kernel(module: str, name: str) -> Callable | None:
    """`name` from `vivim_core.ops.<module>`, imported once; None where the import fails (no Triton on this CUDA
    install: the PyTorch paths still work). `load_backends` calls it before torch.compile traces a model."""
    key = (module, name)
    if key not in _LOADED:
        try:
            _LOADED[key] = getattr(importlib.import_module(f"{__package__}.{module}"), name)
        except Exception:
            _LOADED[key] = None
    return _LOADED[key]
