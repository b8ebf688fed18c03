"""The checkpoint to propose with when none is given: $VIVIM_STUDIO_CHECKPOINT, else the bundled one in
`resources/`. Files there count only when their header says they are Vivim checkpoints (`checkpoint_header`),
so other assets (e.g. the affine prior) are never mistaken for one.
"""

from __future__ import annotations

import os
from pathlib import Path

from vivim_core.errors import VivimError

from .checkpoint_header import is_vivim_checkpoint

ENV_VARIABLE = "VIVIM_STUDIO_CHECKPOINT"


class CheckpointNotFound(VivimError, FileNotFoundError):
    """No checkpoint was given and no default one is installed."""


def resource_dirs() -> list[Path]:
    """Where bundled assets may live (see `vivim_core.resources`)."""
    from vivim_core.resources import resource_dirs as core_resource_dirs

    return core_resource_dirs()


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
