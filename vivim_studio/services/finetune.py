"""The fine-tune job: adapt the model to the expert's corrections of one video. Qt-free; the GUI runs it in a
worker thread, a script can call it directly.

    result = finetune_on_corrections(document, "model.safetensors", "runs/site-a-0001", progress=cb, cancel=ev)
    result.checkpoint_path          # runs/site-a-0001/run/best.safetensors

It exports the frames a human edited or accepted (the corrections; proposals nobody looked at would teach the
model its own mistakes) in the VTUS layout into `RUN_DIR/corrections`, then runs
`vivim_core.engine.train.finetune` on them into `RUN_DIR/run` (best/last checkpoints, config, metrics CSV),
with the few-frame defaults of `finetune_config` unless a config is given. Both folders stay, so the run
records exactly what it learned from. Follows the services' job contract (`jobs`): progress(done, total) in
optimizer steps, cancel between steps; a cancelled job returns `cancelled=True` (with the best checkpoint
saved so far, if any).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vivim_core.errors import VivimError

from .checkpoint_header import is_vivim_checkpoint
from .jobs import Cancel, Progress, is_cancelled

SELECTIONS = ("reviewed", "accepted")
DEFAULT_MAX_MINUTES = 15.0  # a coffee break: the run stops there and keeps its best checkpoint


@dataclass(frozen=True)
class FinetuneLimits:
    """When a fine-tuning run stops at the latest: optimizer steps, wall-clock minutes."""

    max_steps: int
    max_minutes: float


def default_limits() -> FinetuneLimits:
    """The limits a run gets unless the user changes them: the step budget of the few-frame recipe
    (`finetune_config`) and DEFAULT_MAX_MINUTES. Imports no torch."""
    from vivim_core.engine.train_config import finetune_config

    return FinetuneLimits(max_steps=int(finetune_config().max_steps), max_minutes=DEFAULT_MAX_MINUTES)


class FinetuneError(VivimError, ValueError):
    """Fine-tuning cannot start (nothing corrected yet, a run folder in the way, ...)."""


@dataclass
class FinetuneResult:
    run_dir: Path
    data_dir: Path
    frames_used: list[int] = field(default_factory=list)
    checkpoint_path: Path | None = None  # the best checkpoint (None when cancelled before the first one)
    steps: int = 0
    stop_reason: str = ""  # completed | early_stop | time_limit | cancelled
    best_score: float | None = None  # validation Dice on the corrected frames (see finetune_config)
    cancelled: bool = False
    seconds: float = 0.0


def finetune_on_corrections(document, checkpoint: Path | str, run_dir: Path | str, *, selection: str = "reviewed",
                            config: Any = None, device: str = "auto", progress: Progress | None = None,
                            cancel: Cancel | None = None, **config_overrides: Any) -> FinetuneResult:
    """Fine-tune `checkpoint` on the corrected frames of `document`.

    selection: "reviewed" (edited or accepted, default) or "accepted". config: a `TrainConfig`; default
    `finetune_config(device=device, **config_overrides)` (e.g. max_steps=100, max_minutes=5, size=(128, 128)).
    Raises FinetuneError when no frame qualifies or `run_dir` is not empty; CheckpointError for a bad file.
    """
    from ..document.export import ExportCancelled, ExportOptions, export_document, select_frames

    if selection not in SELECTIONS:
        raise FinetuneError(f"selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")
    run_dir = Path(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise FinetuneError(f"{run_dir}: not empty; choose a new folder for the fine-tuning run")
    started = time.perf_counter()
    options = ExportOptions(format="vtus", split="Train", selection=selection)
    frames = select_frames(document, options)
    if not frames:
        what = "edited or accepted" if selection == "reviewed" else "accepted"
        raise FinetuneError(f"no frame of {document.source.name} is {what} yet: correct a few frames (brush, "
                            f"eraser...) and accept them (A), then fine-tune")
    if not is_vivim_checkpoint(Path(checkpoint)):  # a header read, no torch: before anything is written
        from vivim_core.engine.checkpoint import read_checkpoint_info

        read_checkpoint_info(checkpoint)  # says precisely what is wrong (a pickle, truncated...): CheckpointError
        raise FinetuneError(f"{checkpoint}: not a Vivim checkpoint (missing, unreadable or another kind of file); "
                            f"choose a .safetensors checkpoint made by vivim-core or by the Studio. Nothing was "
                            f"exported or trained")
    data_dir = run_dir / "corrections"
    result = FinetuneResult(run_dir=run_dir, data_dir=data_dir, frames_used=frames)
    try:
        export_document(document, data_dir, options, cancel=lambda: is_cancelled(cancel))
    except ExportCancelled:
        result.cancelled, result.stop_reason = True, "cancelled"
        result.seconds = time.perf_counter() - started
        return result

    from vivim_core.engine.train import TrainingCancelled, finetune, finetune_config

    if config is None:
        config = finetune_config(device=device, **config_overrides)
    elif config_overrides:
        config = config.replace(**config_overrides)
    total_steps = config.max_steps or 0

    def on_progress(report) -> None:
        if progress is not None:
            progress(min(report.step, report.total_steps or report.step), report.total_steps or total_steps)

    try:
        trained = finetune(data_dir, checkpoint, run_dir / "run", config, progress=on_progress, cancel=cancel)
    except TrainingCancelled:
        best = run_dir / "run" / "best.safetensors"
        result.cancelled, result.stop_reason = True, "cancelled"
        result.checkpoint_path = best if best.is_file() else None
    else:
        result.checkpoint_path = trained.best_path
        result.steps, result.stop_reason = trained.steps, trained.stop_reason
        result.best_score = trained.best_score
        if progress is not None:
            progress(trained.steps, trained.steps)
    result.seconds = time.perf_counter() - started
    return result
