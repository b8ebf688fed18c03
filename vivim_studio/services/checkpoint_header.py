"""What a checkpoint file says about itself, read from its safetensors header alone (8 bytes of length, then
JSON): no torch import, nothing unpickled, so the GUI can ask on its own thread.

    is_vivim_checkpoint(path)     True when the header's metadata says format "vivim-checkpoint"
    checkpoint_summary(path)      'vivim-tiny · train, 600 steps at 64x64 · validation Dice 0.87\n<path>'
    has_prompt_inputs(path)       True when clicks and boxes can steer the model (`vivim_core.prompts`)

Loading the weights, and the precise error for a bad file, is `vivim_core.engine.checkpoint`'s work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vivim_core.checkpoint_header import is_vivim_checkpoint, loads_json, read_safetensors_header
from vivim_core.errors import VivimError

__all__ = ["checkpoint_summary", "has_prompt_inputs", "is_vivim_checkpoint", "read_metadata"]


def read_metadata(path: Path | str) -> dict[str, Any]:
    """The header's `__metadata__`, its JSON values decoded ({} when the file is missing, not safetensors or
    fails the core's checks of size, depth and layout: `vivim_core.checkpoint_header`)."""
    try:
        metadata = read_safetensors_header(path).metadata
    except VivimError:
        return {}
    decoded: dict[str, Any] = {}
    for key, value in metadata.items():
        try:
            decoded[key] = loads_json(value, f"{path}: metadata {key!r}") if value[:1] in "{[" else value
        except VivimError:
            decoded[key] = value
    return decoded


def has_prompt_inputs(path: Path | str) -> bool:
    """The model takes prompts (its config's `prompt_channels`), so the Prompt tool and learning can use it."""
    config = read_metadata(path).get("model_config")
    return isinstance(config, dict) and bool(config.get("prompt_channels"))


def checkpoint_summary(path: Path | str) -> str:
    """One line for a tooltip: variant, how it was trained, its validation Dice; then the path."""
    metadata = read_metadata(path)
    config, provenance = metadata.get("model_config") or {}, metadata.get("provenance") or {}
    parts = [str(config.get("variant", "Vivim model")) if isinstance(config, dict) else "Vivim model"]
    if isinstance(provenance, dict) and provenance:
        size = provenance.get("train_size")
        how = f"{provenance.get('kind', 'trained')}, {provenance.get('step', '?')} steps"
        parts.append(how + (f" at {size[1]}x{size[0]}" if isinstance(size, list) and len(size) == 2 else ""))
        if isinstance(provenance.get("val_dice"), (int, float)):
            parts.append(f"validation Dice {provenance['val_dice']:.2f}")
    return " · ".join(parts) + f"\n{path}"
