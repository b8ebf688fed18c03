"""vivim-core: the Vivim video vision Mamba for medical video object segmentation.

    import vivim_core
    model = vivim_core.build_model("vivim-tiny")            # a fresh model of a named variant
    model = vivim_core.load_model("run/best.safetensors")   # a trained one (never unpickles)

Heavy modules (torch) load on first use, so importing this package and `vivim-core --help` stay instant.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "build_model": "vivim_core.model",
    "Vivim": "vivim_core.model",
    "VivimOutput": "vivim_core.model",
    "load_model": "vivim_core.engine.checkpoint",
    "save_checkpoint": "vivim_core.engine.checkpoint",
    "CheckpointError": "vivim_core.engine.checkpoint",
    "ModelConfig": "vivim_core.config",
    "get_config": "vivim_core.config",
    "VARIANTS": "vivim_core.config",
    "ABLATIONS": "vivim_core.config",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vivim_core' has no attribute {name!r}")
