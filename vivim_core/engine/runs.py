"""The run folder of a training or fine-tuning run (nnU-Net / ultralytics style):

    RUN/config.json            the resolved TrainConfig plus what was derived (steps, devices, versions, data)
    RUN/split.json             which videos / frames trained and which validated
    RUN/metrics.csv            one row per evaluation (train running means, validation metrics, lr, time)
    RUN/best.safetensors       the checkpoint with the best validation score (a normal Vivim checkpoint)
    RUN/last.safetensors       the latest checkpoint, and beside it
    RUN/last.optim.safetensors the optimizer state (tensors) + loop state (JSON metadata), to resume

Nothing here is pickled: the optimizer state is stored as named tensors plus JSON.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import VivimError

METRIC_COLUMNS = ["step", "epoch", "lr", "train_loss", "train_seg", "train_affine", "train_boundary", "val_loss",
                  "val_seg", "val_affine", "val_boundary", "val_dice", "seconds", "is_best"]
OPTIMIZER_FORMAT = "vivim-optimizer-state"


class RunFolderError(VivimError, ValueError):
    """A run folder that cannot be written or resumed (the message names the folder and the fix)."""


class RunFolder:
    """Paths and small files of one run. Only rank 0 calls the writing methods."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.json")
    split_path = property(lambda self: self.path / "split.json")
    metrics_path = property(lambda self: self.path / "metrics.csv")
    best_path = property(lambda self: self.path / "best.safetensors")
    last_path = property(lambda self: self.path / "last.safetensors")
    optimizer_path = property(lambda self: self.path / "last.optim.safetensors")

    @property
    def files(self) -> tuple[Path, ...]:
        return (self.config_path, self.split_path, self.metrics_path, self.best_path, self.last_path,
                self.optimizer_path)

    def check_new(self) -> None:
        """A fresh run must not overwrite an earlier one, nor any file that happens to have a run file's name."""
        if os.path.lexists(self.path) and not self.path.is_dir():
            raise RunFolderError(f"--out {self.path} exists and is not a folder; give a folder for the run")
        if self.config_path.exists() or self.last_path.exists():
            raise RunFolderError(f"{self.path} already holds a run; continue it with --resume, or choose another --out")
        present = [p.name for p in self.files if os.path.lexists(p)]
        if present:
            raise RunFolderError(f"--out {self.path} already holds {', '.join(present)}, which a new run would "
                                 f"overwrite, but no run (no config.json or last.safetensors); move them away or "
                                 f"choose another --out")

    def check_resumable(self) -> None:
        missing = [p.name for p in (self.config_path, self.last_path, self.optimizer_path) if not p.is_file()]
        if missing:
            raise RunFolderError(f"cannot resume {self.path}: {', '.join(missing)} missing (a run saves them at its "
                                 f"first evaluation); start a new run instead")

    def write_json(self, path: Path, data: Mapping[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
        os.replace(tmp, path)

    def read_config(self) -> dict[str, Any]:
        try:
            return json.loads(self.config_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise RunFolderError(f"{self.config_path}: cannot read the run's config ({exc})") from exc

    def append_metrics(self, row: Mapping[str, Any]) -> None:
        """Append one evaluation row (header written with the first row)."""
        self.path.mkdir(parents=True, exist_ok=True)
        new = not self.metrics_path.exists()
        with open(self.metrics_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _format(row.get(k)) for k in METRIC_COLUMNS})

    def read_metrics(self) -> list[dict[str, str]]:
        if not self.metrics_path.exists():
            return []
        with open(self.metrics_path, newline="") as f:
            return list(csv.DictReader(f))

    def truncate_metrics(self, last_step: int) -> None:
        """Drop rows written after `last_step` (a run killed between an evaluation and its checkpoint)."""
        rows = [r for r in self.read_metrics() if int(r["step"]) <= last_step]
        if self.metrics_path.exists():
            self.metrics_path.unlink()
        for row in rows:
            self.append_metrics(row)


def _format(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


def save_optimizer_state(optimizer: torch.optim.Optimizer, path: str | os.PathLike,
                         loop_state: Mapping[str, Any]) -> Path:
    """Write the optimizer's state tensors and param groups, plus `loop_state` (JSON-able), without pickling."""
    from safetensors.torch import save_file

    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    extra = dict(loop_state)
    if "torch_rng_state" in extra:
        tensors["rng.torch"] = extra.pop("torch_rng_state")
    metadata = {"format": OPTIMIZER_FORMAT, "param_groups": json.dumps(state["param_groups"]),
                "scalars": json.dumps(scalars), "loop_state": json.dumps(extra, default=str)}
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file(tensors or {"empty": torch.zeros(0)}, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_optimizer_state(optimizer: torch.optim.Optimizer, path: str | os.PathLike) -> dict[str, Any]:
    """Restore what `save_optimizer_state` wrote into `optimizer`; return the loop state (with 'torch_rng_state')."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # corrupt / truncated file
        raise RunFolderError(f"{path}: unreadable optimizer state ({exc}); resume is impossible, start a new run "
                             f"(optionally with finetune --checkpoint from last.safetensors)") from exc
    if metadata.get("format") != OPTIMIZER_FORMAT:
        raise RunFolderError(f"{path} is not a Vivim optimizer-state file")
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, values in json.loads(metadata["scalars"]).items():
        state.setdefault(int(index), {}).update(values)
    groups = json.loads(metadata["param_groups"])
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as exc:
        raise RunFolderError(f"{path}: the optimizer state does not fit this model ({exc})") from exc
    loop_state = json.loads(metadata["loop_state"])
    if "rng.torch" in tensors:
        loop_state["torch_rng_state"] = tensors["rng.torch"]
    return loop_state
