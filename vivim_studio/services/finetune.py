"""The fine-tune job: adapt the model to the expert's corrections of one video. Qt-free; the GUI runs it in a
worker thread, a script can call it directly.

    result = finetune_on_corrections(document, "model.safetensors", "runs/site-a-0001", progress=cb, cancel=ev)
    result.checkpoint_path          # runs/site-a-0001/run/best.safetensors

It takes the frames a human edited or accepted (the corrections; proposals nobody looked at would teach the
model its own mistakes), holds every 4th out (once there are at least 4), exports the others in the VTUS
layout into `RUN_DIR/corrections`, then runs `vivim_core.engine.train.finetune` on them into `RUN_DIR/run`
(best/last checkpoints, config, metrics CSV), with the few-frame defaults of `finetune_config` unless a config
is given. Both folders stay, so the run records exactly what it learned from. The quality it reports is the
Dice of its proposals on the held-out frames, which it never trained on (nor chose its best step by). When it
completes, its best checkpoint becomes the workspace's model, with its lineage (the starting checkpoint's
SHA-256) in the provenance. Follows the services' job contract (`jobs`): progress(done, total) in
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


HOLDOUT_EVERY = 4  # every 4th corrected frame is held out to measure quality ...
MIN_FRAMES_TO_MEASURE = 4  # ... when there are at least this many (fewer: all train, quality not measured)


def split_heldout(frames: list[int]) -> tuple[list[int], list[int]]:
    """(frames to train on, frames held out to measure on): every HOLDOUT_EVERY-th corrected frame (the 4th,
    8th, ...) is held out once there are MIN_FRAMES_TO_MEASURE of them; with fewer, all train."""
    if len(frames) < MIN_FRAMES_TO_MEASURE:
        return list(frames), []
    heldout = frames[HOLDOUT_EVERY - 1::HOLDOUT_EVERY]
    return [i for i in frames if i not in set(heldout)], heldout


@dataclass
class FinetuneResult:
    run_dir: Path
    data_dir: Path
    frames_used: list[int] = field(default_factory=list)  # every corrected frame: trained on or held out
    checkpoint_path: Path | None = None  # the best checkpoint (None when cancelled before the first one)
    steps: int = 0
    stop_reason: str = ""  # completed | early_stop | time_limit | cancelled
    best_score: float | None = None  # the trainer's score on its training frames (it picks the best step)
    cancelled: bool = False
    seconds: float = 0.0
    trained_frames: list[int] = field(default_factory=list)
    heldout_frames: list[int] = field(default_factory=list)  # never trained on; quality is measured on these
    heldout_dice: float | None = None  # mean Dice of the best checkpoint's proposals on `heldout_frames`
    start_checkpoint_sha256: str = ""  # lineage: the checkpoint the run started from
    workspace_model_sha256: str = ""  # set when the best checkpoint became the workspace's model

    @property
    def quality(self) -> str:
        """The held-out quality in words, for the user."""
        if self.heldout_dice is not None:
            return (f"Dice {self.heldout_dice:.2f} on {len(self.heldout_frames)} corrected frame(s) it did not "
                    f"train on")
        return (f"quality cannot be measured yet: it needs at least {MIN_FRAMES_TO_MEASURE} corrected frames to "
                f"hold some out (it trained on {len(self.trained_frames)})")


def finetune_on_corrections(document, checkpoint: Path | str, run_dir: Path | str, *, selection: str = "reviewed",
                            config: Any = None, device: str = "auto", progress: Progress | None = None,
                            cancel: Cancel | None = None, adopt: bool = True,
                            **config_overrides: Any) -> FinetuneResult:
    """Fine-tune `checkpoint` on the corrected frames of `document`, holding every 4th out (`split_heldout`)
    to measure the result on frames it never saw.

    selection: "reviewed" (edited or accepted, default) or "accepted". config: a `TrainConfig`; default
    `finetune_config(device=device, **config_overrides)` (e.g. max_steps=100, max_minutes=5, size=(128, 128)).
    adopt: when the run completes (not cancelled) and the document has a writable workspace, its best
    checkpoint becomes the workspace's model (`document.save_workspace_model`, with the lineage and the
    held-out quality in its provenance); re-proposing the frames nobody touched is the caller's proposal job.
    Raises FinetuneError when no frame qualifies or `run_dir` is not empty; CheckpointError for a bad file.
    """
    from ..document.export import ExportCancelled, ExportOptions, export_document, select_frames

    if selection not in SELECTIONS:
        raise FinetuneError(f"selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")
    run_dir = Path(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise FinetuneError(f"{run_dir}: not empty; choose a new folder for the fine-tuning run")
    started = time.perf_counter()
    frames = select_frames(document, ExportOptions(selection=selection))
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
    trained_frames, heldout_frames = split_heldout(frames)
    data_dir = run_dir / "corrections"
    result = FinetuneResult(run_dir=run_dir, data_dir=data_dir, frames_used=frames, trained_frames=trained_frames,
                            heldout_frames=heldout_frames)
    try:  # only the training frames: the held-out ones must stay unseen
        export_document(document, data_dir, ExportOptions(format="vtus", split="Train", selection=selection,
                                                          frames=tuple(trained_frames)),
                        cancel=lambda: is_cancelled(cancel))
    except ExportCancelled:
        result.cancelled, result.stop_reason = True, "cancelled"
        result.seconds = time.perf_counter() - started
        return result

    from vivim_core.engine.checkpoint import checkpoint_sha256
    from vivim_core.engine.train import TrainingCancelled, finetune, finetune_config

    result.start_checkpoint_sha256 = checkpoint_sha256(checkpoint)
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
    if result.checkpoint_path is not None and not result.cancelled:
        model = _load(result.checkpoint_path, device)
        if heldout_frames:
            result.heldout_dice = measure_heldout(model, result.checkpoint_path, document, heldout_frames)
        if adopt and document.workspace is not None and document.writable:
            result.workspace_model_sha256 = _adopt(document, model, checkpoint, result)
    result.seconds = time.perf_counter() - started
    return result


def _load(path: Path, device: str):
    from vivim_core.engine.checkpoint import load_model
    from vivim_core.engine.distributed import resolve_device

    return load_model(path, device=resolve_device(device))


def measure_heldout(model, checkpoint: Path, document, frames: list[int]) -> float:
    """Mean Dice, on `frames`, of the masks `model` proposes for them (each predicted in a clip of its
    neighbours, at the checkpoint's size and clip length, thresholded as the document's proposals are)
    against the human masks."""
    from vivim_core.engine.checkpoint import read_checkpoint_info
    from vivim_core.engine.predict import iter_predict, settings_for_checkpoint

    from ..document.mask_ops import dice

    options = settings_for_checkpoint(read_checkpoint_info(checkpoint)["provenance"])
    length, count = options["clip_length"], document.num_frames
    scores = []
    for frame in frames:
        start = min(max(frame - length // 2, 0), max(count - length, 0))
        window = list(range(start, min(start + length, count)))
        for index, probability in iter_predict(model, [document.frame(i) for i in window], batch_size=1,
                                               **options):
            if window[index] == frame:
                scores.append(dice(probability >= document.proposal_threshold, document.mask(frame)))
    return float(sum(scores) / len(scores))


def _adopt(document, model, start_checkpoint: Path | str, result: FinetuneResult) -> str:
    """Make the fine-tuned model the workspace's model; returns its SHA-256."""
    from vivim_core.engine.checkpoint import read_checkpoint_info

    from .assist import adapted_rounds

    provenance = dict(read_checkpoint_info(result.checkpoint_path)["provenance"])
    provenance.update(kind="finetuned", parent_sha256=result.start_checkpoint_sha256,
                      rounds=adapted_rounds(start_checkpoint), run_dir=str(result.run_dir.resolve()),
                      trained_frames=result.trained_frames, heldout_frames=result.heldout_frames,
                      heldout_dice=result.heldout_dice, steps=result.steps)
    return document.save_workspace_model(model, provenance)
