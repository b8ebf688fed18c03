"""Finding the checkpoint to propose with: the one given, else the bundled default in `resources/`.

A file counts as a Vivim checkpoint when its safetensors header metadata says format "vivim-checkpoint"
(read from the header alone: no torch import, nothing unpickled), so other assets in `resources/` (e.g. the
affine prior) are never mistaken for one.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from vivim_core.errors import VivimError

ENV_VARIABLE = "VIVIM_STUDIO_CHECKPOINT"


class CheckpointNotFound(VivimError, FileNotFoundError):
    """No checkpoint was given and no default one is installed."""


def resource_dirs() -> list[Path]:
    """Where bundled assets may live (see `vivim_core.resources`)."""
    from vivim_core.resources import resource_dirs as core_resource_dirs

    return core_resource_dirs()


def is_vivim_checkpoint(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if not 2 <= length <= 100 * 2**20:
                return False
            header = json.loads(f.read(length))
    except (OSError, struct.error, ValueError, UnicodeDecodeError):
        return False
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return isinstance(metadata, dict) and metadata.get("format") == "vivim-checkpoint"


def find_default_checkpoint(task: str | None = None) -> Path:
    """The checkpoint to use when none is given: $VIVIM_STUDIO_CHECKPOINT, else the Vivim checkpoint in
    `resources/` (with several, the one whose name contains `task`, e.g. "thyroid" or "polyp")."""
    if os.environ.get(ENV_VARIABLE):
        path = Path(os.environ[ENV_VARIABLE])
        if not path.is_file():
            raise CheckpointNotFound(f"{path}: set by ${ENV_VARIABLE} but not found")
        return path
    searched = resource_dirs()
    candidates = sorted(p for d in searched if d.is_dir() for p in d.rglob("*.safetensors") if is_vivim_checkpoint(p))
    if task:
        matching = [p for p in candidates if task.lower() in p.name.lower()]
        candidates = matching or candidates
    if len(candidates) == 1 or (candidates and task):
        return candidates[0]
    if candidates:
        names = ", ".join(p.name for p in candidates)
        raise CheckpointNotFound(f"several bundled checkpoints ({names}); choose one with --checkpoint PATH")
    raise CheckpointNotFound(
        "no checkpoint given and no default Vivim checkpoint is installed (looked in "
        + ", ".join(str(d) for d in searched) + "). Pass --checkpoint PATH to a Vivim .safetensors checkpoint "
        f"(train one with `vivim-core train`, or fine-tune with `vivim-core finetune`), or set ${ENV_VARIABLE}.")
