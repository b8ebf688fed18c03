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
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ..config import ConfigError, ModelConfig, get_config
from ..errors import VivimError

FORMAT_NAME = "vivim-checkpoint"
FORMAT_VERSION = 1
_PICKLE_HINT = (
    "Vivim checkpoints are .safetensors files; Vivim never unpickles .pt/.pth files because unpickling can run "
    "arbitrary code. If you trust this file, convert it yourself with safetensors.torch.save_file."
)


class CheckpointError(VivimError, ValueError):
    """A file that cannot be loaded as a Vivim checkpoint; the message names the file and the problem."""


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


def _read_header(path: Path) -> dict[str, Any]:
    """Parse the safetensors header ourselves, to give precise errors for non-checkpoints and truncation."""
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; give the path of a .safetensors file")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"checkpoint {path} is {size} bytes long: empty or truncated, not a checkpoint")
        if head.startswith(b"PK\x03\x04"):  # torch.save's zip container
            raise CheckpointError(f"{path} looks like a PyTorch pickle (.pt/.pth), not a safetensors checkpoint. "
                                  + _PICKLE_HINT)
        (header_len,) = struct.unpack("<Q", head)
        header = None
        if header_len <= min(size - 8, 100 * 2**20):
            try:
                header = json.loads(f.read(header_len))
            except (json.JSONDecodeError, UnicodeDecodeError):
                header = None
    if header is None:
        # Only now guess at a pickle: a safetensors header length can start with the byte 0x80 too.
        if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
            raise CheckpointError(f"{path} looks like a PyTorch pickle (.pt/.pth), not a safetensors checkpoint. "
                                  + _PICKLE_HINT)
        raise CheckpointError(f"{path} is not a safetensors checkpoint (no valid safetensors header), or it is "
                              f"truncated. " + _PICKLE_HINT)
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is not a safetensors checkpoint: its header is not a JSON object")
    data_end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + header_len + data_end > size:
        raise CheckpointError(f"checkpoint {path} is truncated: {size} bytes on disk, {8 + header_len + data_end} "
                              f"expected. Copy or download it again.")
    return header


def read_checkpoint_info(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's metadata, decoded: {'config': ModelConfig, 'provenance': dict, 'vivim_version', ...}."""
    path = Path(path)
    metadata = _read_header(path).get("__metadata__") or {}
    if metadata.get("format") != FORMAT_NAME:
        raise CheckpointError(
            f"{path} is a safetensors file but not a Vivim checkpoint (no '{FORMAT_NAME}' metadata). "
            "A Hugging Face SegFormer checkpoint is used with `vivim-core train --init-segformer PATH`."
        )
    try:
        version = int(metadata.get("format_version", "0"))
    except ValueError:
        version = -1
    if version < 1 or version > FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {metadata.get('format_version')!r}; this "
                              f"vivim-core reads version {FORMAT_VERSION}. Update vivim-core to load it.")
    try:
        config = ModelConfig.from_json(metadata.get("model_config", ""))
        provenance = json.loads(metadata.get("provenance") or "{}")
    except (ConfigError, json.JSONDecodeError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path} has an unreadable model config: {exc}") from exc
    return {
        "config": config,
        "provenance": provenance,
        "vivim_version": metadata.get("vivim_version", "?"),
        "torch_version": metadata.get("torch_version", "?"),
    }


def load_model(
    path: str | os.PathLike,
    variant: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """Rebuild the Vivim stored in `path` (in eval mode) without unpickling anything.

    variant: when given, the checkpoint must hold that variant (CheckpointError otherwise).
    Raises CheckpointError for missing, truncated, non-safetensors, pickled, foreign, mismatched or
    non-finite checkpoints, each time naming the file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..model import Vivim
    from ..model.legacy_names import upgrade_legacy_names

    path = Path(path)
    info = read_checkpoint_info(path)
    config: ModelConfig = info["config"]
    if variant is not None:
        try:
            wanted = get_config(variant).variant
        except ConfigError as exc:
            raise CheckpointError(str(exc)) from exc
        if config.variant != wanted:
            raise CheckpointError(f"checkpoint {path} holds a {config.variant!r} model, but {wanted!r} was asked "
                                  f"for. Pass the matching --variant, or leave it out to use the checkpoint's own.")
    try:
        state = upgrade_legacy_names(load_file(str(path)))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"checkpoint {path} could not be read: {exc}") from exc
    try:
        model = Vivim(config)
    except (ConfigError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} has a model config this vivim-core cannot build: {exc}") from exc
    _check_state(path, model, state)
    model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in state.items()})
    return model.to(device=device, dtype=dtype).eval()


def _check_state(path: Path, model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k}: {tuple(state[k].shape)} in file, {tuple(expected[k].shape)} expected"
             for k in expected if k in state and state[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensor(s), e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[:3]}")
    if wrong:
        problems.append(f"{len(wrong)} tensor(s) of the wrong shape, e.g. {wrong[:3]}")
    if problems:
        raise CheckpointError(f"checkpoint {path} does not match its own model config "
                              f"({model.config.variant}): " + "; ".join(problems) + ". The file was altered or "
                              "written by another program: use a checkpoint written by vivim-core (train, finetune "
                              "or save_checkpoint)")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"checkpoint {path} holds NaN or infinite weights in {len(bad)} tensor(s), e.g. "
                              f"{bad[:3]}; it comes from a diverged training run. Use an earlier checkpoint.")


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
