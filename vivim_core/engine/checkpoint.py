"""Checkpoints: one `.safetensors` file; the model config, format version, package version and training
provenance live in its string metadata. Loading parses JSON and raw tensors only: nothing is unpickled,
so a checkpoint can never run code.

Metadata keys:
    format            "vivim-checkpoint"
    format_version    "1"
    model_config      ModelConfig as JSON
    vivim_version     the vivim-core version that wrote it
    torch_version     the torch version that wrote it
    provenance        JSON object (command, data, steps, seed, metrics... whatever the writer records)

A checkpoint is untrusted: `vivim_core.checkpoint_header` (torch-free) checks its header, config and
provenance; `load_model` then checks every tensor entry against the model the config describes (built on the
meta device: nothing allocated) before it reads a byte of weights.
"""

from __future__ import annotations

import dataclasses

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ..checkpoint_header import (FORMAT_NAME, FORMAT_VERSION, CheckpointError, SafetensorsHeader,
                                 checkpoint_info_from_header, read_checkpoint_info, read_safetensors_header)
from ..config import ConfigError, ModelConfig, get_config
from ..errors import VivimError
from ..file_safety import UnsafePathError, open_regular

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "CheckpointError", "checkpoint_sha256", "load_model", "parameter_count",
           "read_checkpoint_info", "read_tensors", "save_checkpoint"]

_TORCH_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                 "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
                 "BOOL": torch.bool}


def save_checkpoint(
    model: nn.Module,
    path: str | os.PathLike,
    provenance: Mapping[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write `model` (a Vivim, with `.config`) to `path` atomically (temp file + rename).

    dtype: store floating tensors in this dtype (e.g. torch.float16 for a small bundled checkpoint);
    None keeps each tensor's own dtype, which makes the round trip bit-exact.
    """
    from safetensors.torch import save_file

    from .. import __version__

    config: ModelConfig = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        raise TypeError("save_checkpoint needs a Vivim model (with a ModelConfig in .config)")
    tensors = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensors[name] = tensor.contiguous()
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "model_config": config.to_json(),
        "vivim_version": __version__,
        "torch_version": torch.__version__,
        "provenance": json.dumps(dict(provenance or {}), sort_keys=True, default=str),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_model(
    path: str | os.PathLike,
    variant: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """Rebuild the Vivim stored in `path` (in eval mode) without unpickling anything.

    variant: when given, the checkpoint must hold that variant (CheckpointError otherwise).
    Raises CheckpointError for missing, truncated, non-safetensors, pickled, foreign, altered, mismatched or
    non-finite checkpoints, each time naming the file; nothing is allocated before the header, the config and
    every tensor entry have passed their checks.
    """
    from ..model import Vivim
    from ..model.legacy_names import upgrade_legacy_names

    path = Path(path)
    header = read_safetensors_header(path, "checkpoint")
    config: ModelConfig = checkpoint_info_from_header(header)["config"]
    if variant is not None:
        try:
            wanted = get_config(variant).variant
        except ConfigError as exc:
            raise CheckpointError(str(exc)) from exc
        if config.variant != wanted:
            raise CheckpointError(f"checkpoint {path} holds a {config.variant!r} model, but {wanted!r} was asked "
                                  f"for. Pass the matching --variant, or leave it out to use the checkpoint's own.")
    with torch.device("meta"):
        expected = Vivim(config).state_dict()
    # files written under older parameter names load under the current ones (`legacy_names`)
    _check_entries(path, config, dataclasses.replace(header, tensors=upgrade_legacy_names(header.tensors)), expected)
    state = upgrade_legacy_names(read_tensors(header))
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"checkpoint {path} holds NaN or infinite weights in {len(bad)} tensor(s), e.g. "
                              f"{bad[:3]}; it comes from a diverged training run. Use an earlier checkpoint.")
    model = Vivim(config)
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    return model.to(device=device, dtype=dtype).eval()


def _check_entries(path: Path, config: ModelConfig, header: SafetensorsHeader,
                   expected: Mapping[str, torch.Tensor]) -> None:
    """Every tensor the model needs is in the header with its shape and a dtype of its kind, and nothing else."""
    entries = header.tensors
    missing = sorted(set(expected) - set(entries))
    unexpected = sorted(set(entries) - set(expected))
    shared = [k for k in expected if k in entries]
    wrong = [f"{k}: {entries[k].shape} in file, {tuple(expected[k].shape)} expected"
             for k in shared if entries[k].shape != tuple(expected[k].shape)]
    kind = [f"{k}: {entries[k].dtype} in file, a {'floating-point' if expected[k].is_floating_point() else 'integer'}"
            f" tensor expected" for k in shared
            if entries[k].is_floating != expected[k].is_floating_point() or entries[k].dtype == "BOOL"]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensor(s), e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s), e.g. {[k[:100] for k in unexpected[:3]]}")
    if wrong:
        problems.append(f"{len(wrong)} tensor(s) of the wrong shape, e.g. {wrong[:3]}")
    if kind:
        problems.append(f"{len(kind)} tensor(s) of the wrong dtype, e.g. {kind[:3]}")
    if problems:
        raise CheckpointError(f"checkpoint {path} does not match its own model config "
                              f"({config.variant}): " + "; ".join(problems) + ". The file was altered or "
                              "written by another program: use a checkpoint written by vivim-core (train, finetune "
                              "or save_checkpoint)")


def read_tensors(header: SafetensorsHeader, what: str = "checkpoint",
                 error: type[VivimError] = CheckpointError) -> dict[str, torch.Tensor]:
    """The tensors of a checked safetensors header (`read_safetensors_header`), read from the file it describes:
    raw little-endian bytes at the offsets the header gave, nothing unpickled. `error` naming `what` and the file
    when it cannot be read or changed since."""
    state = {}
    try:
        with open_regular(header.path, what) as f:
            for entry in sorted(header.tensors.values(), key=lambda e: e.begin):
                f.seek(header.data_start + entry.begin)
                data = bytearray(f.read(entry.nbytes))
                if len(data) != entry.nbytes:
                    raise error(f"{what} {header.path} is truncated (it changed while being read); copy or "
                                f"download it again")
                dtype = _TORCH_DTYPES[entry.dtype]
                tensor = torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)
                if sys.byteorder == "big" and tensor.element_size() > 1:
                    tensor = tensor.view(torch.uint8).view(-1, tensor.element_size()).flip(1).view(dtype).flatten()
                state[entry.name] = tensor.reshape(entry.shape)
    except UnsafePathError as exc:
        raise error(str(exc)) from None
    except OSError as exc:
        raise error(f"{what} {header.path} could not be read: {exc}") from exc
    return state


def checkpoint_sha256(path: str | os.PathLike) -> str:
    """Content hash of a checkpoint file (identity for provenance in workspaces and exports)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parameter_count(config: ModelConfig) -> int:
    """Parameters of a model of this config (builds it on the meta device: no memory, no init cost)."""
    from ..model import Vivim

    with torch.device("meta"):
        model = Vivim(config)
    return sum(math.prod(p.shape) for p in model.parameters())
