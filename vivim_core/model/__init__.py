"""The Vivim network. `build_model(variant, **overrides)` is the way in."""

from .vivim import Vivim, VivimOutput, add_prompt_inputs, build_model, count_parameters

__all__ = ["Vivim", "VivimOutput", "add_prompt_inputs", "build_model", "count_parameters"]
