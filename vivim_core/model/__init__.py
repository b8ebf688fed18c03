"""The Vivim network. `build_model(variant, **overrides)` is the way in."""

from .vivim import Vivim, VivimOutput, build_model, count_parameters

__all__ = ["Vivim", "VivimOutput", "build_model", "count_parameters"]
