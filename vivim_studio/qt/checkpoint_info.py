"""What the status bar says about a checkpoint, read from its safetensors header alone (JSON; no torch, nothing
unpickled): variant, how it was trained, its validation Dice. Adapter: `vivim_core.engine.checkpoint` has
`read_checkpoint_info`, but it imports torch, which the Qt layer must not."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

MAX_HEADER_BYTES = 100 * 2**20


def read_metadata(path: Path) -> dict[str, Any]:
    """The header's `__metadata__` with its JSON values decoded ({} when unreadable)."""
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if not 2 <= length <= MAX_HEADER_BYTES:
                return {}
            metadata = json.loads(f.read(length)).get("__metadata__") or {}
    except (OSError, struct.error, ValueError, UnicodeDecodeError, AttributeError):
        return {}
    decoded = {}
    for key, value in metadata.items():
        try:
            decoded[key] = json.loads(value) if isinstance(value, str) and value[:1] in "{[" else value
        except ValueError:
            decoded[key] = value
    return decoded


def describe(path: Path) -> str:
    """One line for a tooltip, e.g. 'vivim-tiny · train, 600 steps at 64x64 · validation Dice 0.87'."""
    metadata = read_metadata(path)
    config, provenance = metadata.get("model_config") or {}, metadata.get("provenance") or {}
    parts = [str(config.get("variant", "Vivim model"))]
    if isinstance(provenance, dict) and provenance:
        size = provenance.get("train_size")
        how = f"{provenance.get('kind', 'trained')}, {provenance.get('step', '?')} steps"
        parts.append(how + (f" at {size[1]}x{size[0]}" if isinstance(size, list) and len(size) == 2 else ""))
        if isinstance(provenance.get("val_dice"), (int, float)):
            parts.append(f"validation Dice {provenance['val_dice']:.2f}")
    return " · ".join(parts) + f"\n{path}"
