"""What a checkpoint file says about itself, read from its safetensors header alone (8 bytes of length, then
JSON): no torch import, nothing unpickled, so the GUI can ask on its own thread.

    is_vivim_checkpoint(path)     True when the header's metadata says format "vivim-checkpoint"
    checkpoint_summary(path)      'vivim-tiny · train, 600 steps at 64x64 · validation Dice 0.87\n<path>'
    has_prompt_inputs(path)       True when clicks and boxes can steer the model (`vivim_core.prompts`)

Loading the weights, and the precise error for a bad file, is `vivim_core.engine.checkpoint`'s work.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

FORMAT = "vivim-checkpoint"
MAX_HEADER_BYTES = 100 * 2**20


def read_metadata(path: Path | str) -> dict[str, Any]:
    """The header's `__metadata__`, its JSON values decoded ({} when the file is missing or not safetensors)."""
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if not 2 <= length <= MAX_HEADER_BYTES:
                return {}
            header = json.loads(f.read(length))
    except (OSError, struct.error, ValueError, UnicodeDecodeError):
        return {}
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict):
        return {}
    decoded = {}
    for key, value in metadata.items():
        try:
            decoded[key] = json.loads(value) if isinstance(value, str) and value[:1] in "{[" else value
        except ValueError:
            decoded[key] = value
    return decoded


def is_vivim_checkpoint(path: Path | str) -> bool:
    """A Vivim checkpoint, by its header (other safetensors files, e.g. the affine prior, are not)."""
    return read_metadata(path).get("format") == FORMAT


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
