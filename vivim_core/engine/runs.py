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
import math
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import VivimError
from ..file_safety import UnsafePathError, open_regular

METRIC_COLUMNS = ["step", "epoch", "lr", "train_loss", "train_seg", "train_affine", "train_boundary", "val_loss",
                  "val_seg", "val_affine", "val_boundary", "val_dice", "seconds", "is_best"]
OPTIMIZER_FORMAT = "vivim-optimizer-state"
MAX_SMALL_FILE = 64 * 2**20  # config.json, metrics.csv


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

    def _damaged(self, path: Path, problem: str) -> RunFolderError:
        return RunFolderError(f"{path}: {problem}; this run cannot be resumed as it is: restore the file from a copy, "
                              f"or start a new run (`vivim-core finetune --checkpoint {self.last_path}` continues "
                              f"from its weights)")

    def read_config(self) -> dict[str, Any]:
        """config.json as written by the run (checked: a JSON object whose train_config is an object)."""
        from ..checkpoint_header import loads_json

        try:
            with open_regular(self.config_path, "run config", max_bytes=MAX_SMALL_FILE) as f:
                data = f.read()
        except VivimError as exc:
            raise self._damaged(self.config_path, f"cannot read the run's config ({exc})") from None
        try:
            config = loads_json(data, "its content", error=RunFolderError)
        except RunFolderError as exc:
            raise self._damaged(self.config_path, str(exc)) from None
        if not isinstance(config, dict) or not isinstance(config.get("train_config"), dict):
            raise self._damaged(self.config_path, "not a run config (no train_config object)")
        return config

    def stored_train_config(self):
        """The TrainConfig the run was started with, validated like any other."""
        from .train_config import TrainConfig

        try:
            return TrainConfig.from_dict(self.read_config()["train_config"])
        except RunFolderError:
            raise
        except VivimError as exc:
            raise self._damaged(self.config_path, f"its train_config is damaged ({exc})") from None

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
        """The evaluation rows, each with an integer step (RunFolderError naming the file and line otherwise)."""
        if not self.metrics_path.exists():
            return []

        def damaged(problem: str) -> RunFolderError:
            return RunFolderError(f"{self.metrics_path}: {problem}; it is only the log of the evaluations: repair "
                                  f"or delete the damaged lines (or the whole file) and resume again")

        try:
            with open_regular(self.metrics_path, "metrics", max_bytes=MAX_SMALL_FILE) as f:
                text = f.read().decode("utf-8")
            if "\x00" in text:
                raise damaged("it holds binary data (NUL bytes)")
            reader = csv.DictReader(text.splitlines())
            if "step" not in (reader.fieldnames or []):
                raise damaged("its header has no 'step' column")
            rows = []
            for row in reader:
                step = row.get("step") or ""
                if not step.isdigit():
                    raise damaged(f"line {reader.line_num} has step {step[:20]!r}, not a step number")
                rows.append(row)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise damaged(f"not a readable CSV file ({exc})") from None
        except UnsafePathError as exc:
            raise damaged(str(exc)) from None
        return rows

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
    """Restore what `save_optimizer_state` wrote into `optimizer`; return the loop state (with 'torch_rng_state').
    The file is checked like a checkpoint (header, JSON metadata) and its state must fit `optimizer` exactly
    (groups, parameters, value types); RunFolderError naming the file otherwise."""
    from ..checkpoint_header import loads_json, read_safetensors_header
    from .checkpoint import read_tensors

    path = Path(path)

    def damaged(problem: str) -> RunFolderError:
        return RunFolderError(f"{path}: {problem}; resume is impossible, start a new run (optionally with "
                              f"finetune --checkpoint from last.safetensors)")

    try:
        header = read_safetensors_header(path, "optimizer state", error=RunFolderError)
        if header.metadata.get("format") != OPTIMIZER_FORMAT:
            raise RunFolderError(f"{path} is not a Vivim optimizer-state file")
        metadata = {key: loads_json(header.metadata.get(key, ""), f"{path}: its {key}", error=RunFolderError,
                                    allow_infinity=key == "loop_state")  # best_score starts at -Infinity
                    for key in ("param_groups", "scalars", "loop_state")}
        tensors = read_tensors(header, "optimizer state", RunFolderError)
    except RunFolderError as exc:
        raise damaged(f"unreadable optimizer state ({exc})") from None
    fresh = optimizer.state_dict()
    groups, scalars, loop_state = metadata["param_groups"], metadata["scalars"], metadata["loop_state"]
    problem = _param_groups_problem(groups, fresh["param_groups"])
    if problem:
        raise RunFolderError(f"{path}: the optimizer state does not fit this model ({problem})")
    state: dict[int, dict[str, Any]] = {}
    known = {index for group in fresh["param_groups"] for index in group["params"]}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, index, name = key.split(".", 2)
            if not index.isdigit() or int(index) not in known:
                raise damaged(f"tensor {key[:60]!r} names no parameter of this model")
            state.setdefault(int(index), {})[name] = value
    if not isinstance(scalars, dict) or not all(
            str(k).isdigit() and int(k) in known and isinstance(v, dict) and
            all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v.values())
            for k, v in scalars.items()):
        raise damaged("its scalars are not numbers per parameter")
    for index, values in scalars.items():
        state.setdefault(int(index), {}).update(values)
    for index, values in state.items():
        if "step" in values and isinstance(values["step"], torch.Tensor) and values["step"].numel() != 1:
            raise damaged(f"parameter {index}'s step is not one number")
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as exc:
        raise RunFolderError(f"{path}: the optimizer state does not fit this model ({exc})") from None
    problem = _loop_state_problem(loop_state)
    if problem:
        raise damaged(f"its loop state is damaged ({problem})")
    rng = tensors.get("rng.torch")
    if rng is not None:
        if rng.dtype != torch.uint8 or rng.shape != torch.get_rng_state().shape:
            raise damaged("its random-number state has the wrong size")
        loop_state["torch_rng_state"] = rng
    return loop_state


def _param_groups_problem(groups: Any, fresh: list[dict[str, Any]]) -> str | None:
    """What makes stored param groups unusable for an optimizer whose own groups are `fresh` (None: fine)."""
    if not isinstance(groups, list) or len(groups) != len(fresh):
        return f"{len(fresh)} parameter group(s) expected"
    for number, (group, mine) in enumerate(zip(groups, fresh)):
        if not isinstance(group, dict) or set(group) != set(mine):
            return f"group {number} has other settings than this optimizer's"
        if not isinstance(group["params"], list) or len(group["params"]) != len(mine["params"]):
            return f"group {number} holds {len(group['params']) if isinstance(group['params'], list) else '?'} " \
                   f"parameters, this model trains {len(mine['params'])}"
        for key, value in mine.items():
            if key != "params" and not _same_kind(group[key], value):
                return f"group {number}'s {key} is {str(group[key])[:30]!r}"
    return None


def _same_kind(stored: Any, mine: Any) -> bool:
    if isinstance(mine, bool) or mine is None:
        return type(stored) is type(mine)
    if isinstance(mine, (int, float)):
        return isinstance(stored, (int, float)) and not isinstance(stored, bool) and math.isfinite(stored)
    if isinstance(mine, (list, tuple)):
        return isinstance(stored, list) and len(stored) == len(mine) and all(map(_same_kind, stored, mine))
    return isinstance(stored, type(mine))


def _loop_state_problem(loop_state: Any) -> str | None:
    from .loop import LoopState

    if not isinstance(loop_state, dict):
        return "not a JSON object"
    for name, default in vars(LoopState()).items():
        value = loop_state.get(name, default)
        if isinstance(default, int):
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= -1):
                return f"{name} {str(value)[:20]!r} is not a step count"
        elif not (isinstance(value, (int, float)) and not isinstance(value, bool)
                  and (math.isfinite(value) or (name == "best_score" and value == -math.inf))):
            return f"{name} {str(value)[:20]!r} is not a number"
    return None
