"""Training and fine-tuning Vivim: the library API behind `vivim-core train` and `vivim-core finetune`.

    from vivim_core.engine.train import TrainConfig, train, finetune, finetune_config
    result = train("data/vtus", "runs/tiny", TrainConfig(variant="vivim-tiny", epochs=100), progress=print)
    result.best_path                                   # runs/tiny/best.safetensors
    tuned = finetune("studio_export", result.best_path, "runs/site-a")   # few-frame defaults

The run folder layout is described in `vivim_core.engine.runs`. Under `torchrun --nproc_per_node N` the same
call trains with DDP (one process per GPU; the batch size is per process; only rank 0 writes).
Progress goes to `progress(TrainProgress)`; `cancel` (threading.Event or callable) stops after the current
step, saves `last` and raises `TrainingCancelled`.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..config import ABLATIONS
from ..file_safety import check_output_apart
from ..losses import DEFAULT_PRIOR_PATH, LossWeights, VivimLoss, load_affine_prior, read_affine_prior_info
from ..model import build_model
from .checkpoint import checkpoint_sha256, load_model, read_checkpoint_info
from .distributed import DistributedContext, setup_distributed
from .loop import LoopState, Trainer, TrainingCancelled, TrainProgress, make_optimizer
from .runs import RunFolder, RunFolderError, load_optimizer_state
from .train_config import RESUMABLE_OVERRIDES, TrainConfig, TrainConfigError, finetune_config
from .train_data import build_datasets, find_training_videos, split_record, split_videos

__all__ = ["TrainConfig", "TrainProgress", "TrainResult", "TrainingCancelled", "finetune", "finetune_config",
           "finetune_defaults", "train"]


@dataclass
class TrainResult:
    """The outcome of a run (the same on every DDP process)."""

    run_dir: Path
    best_path: Path
    last_path: Path
    steps: int
    stop_reason: str  # completed | early_stop | time_limit
    best_step: int
    best_score: float  # validation Dice (or -train loss when there is no validation)
    history: list[dict[str, float]] = field(default_factory=list)  # the evaluation rows of this call
    model: torch.nn.Module | None = field(default=None, repr=False)  # this process's model after the last step
    is_main: bool = True  # rank 0 (the process that wrote the run folder)


def train(data: str | os.PathLike, out: str | os.PathLike, config: TrainConfig = TrainConfig(), *,
          resume: bool = False, progress: Callable[[TrainProgress], None] | None = None,
          cancel: Any = None) -> TrainResult:
    """Train a fresh `config.variant` (with `config.ablation`) on the annotated videos under `data`.

    resume=True continues the run in `out` from its `last` checkpoint and optimizer state; `config` must then
    equal the stored one except for the schedule fields (epochs, max_steps, max_minutes, ...).
    """
    return _run("train", Path(data), Path(out), config, None, resume, progress, cancel)


def finetune(data: str | os.PathLike, checkpoint: str | os.PathLike, out: str | os.PathLike,
             config: TrainConfig | None = None, *, resume: bool = False,
             progress: Callable[[TrainProgress], None] | None = None, cancel: Any = None) -> TrainResult:
    """Fine-tune the model in `checkpoint` (its own config and weights) on `data`; `config` defaults to
    `finetune_defaults(checkpoint)` (few-frame recipe at the checkpoint's training size and clip length).
    `config.variant` and the ablation's model switches are ignored: the model is the checkpoint's."""
    config = config or finetune_defaults(checkpoint)
    return _run("finetune", Path(data), Path(out), config, Path(checkpoint), resume, progress, cancel)


def finetune_defaults(checkpoint: str | os.PathLike, **overrides: Any) -> TrainConfig:
    """`finetune_config()` at the size and clip length the checkpoint was trained with (when it records them)."""
    provenance = read_checkpoint_info(checkpoint)["provenance"]
    defaults: dict[str, Any] = {"variant": read_checkpoint_info(checkpoint)["config"].variant}
    if provenance.get("train_size"):
        defaults["size"] = tuple(provenance["train_size"])
    if provenance.get("clip_length"):
        defaults["clip_length"] = int(provenance["clip_length"])
    defaults.update(overrides)
    return finetune_config(**defaults)


def _check_resume_config(run: RunFolder, config: TrainConfig) -> None:
    stored = run.stored_train_config()
    different = [name for name, value in config.to_dict().items()
                 if name not in RESUMABLE_OVERRIDES and stored.to_dict()[name] != value]
    if different:
        raise TrainConfigError(f"cannot resume {run.path} with different settings: {', '.join(different)} differ from "
                               f"{run.config_path}; only {', '.join(sorted(RESUMABLE_OVERRIDES))} may change")


def _build_model(kind: str, config: TrainConfig, checkpoint: Path | None, context: DistributedContext,
                 notes: dict[str, Any]) -> torch.nn.Module:
    torch.manual_seed(config.seed)  # same initialisation on every process (DDP also broadcasts rank 0's)
    if kind == "finetune":
        model = load_model(checkpoint, device="cpu")
        notes["start_checkpoint"] = {"path": str(checkpoint.resolve()), "sha256": checkpoint_sha256(checkpoint),
                                     "provenance": read_checkpoint_info(checkpoint)["provenance"]}
    else:
        model = build_model(config.variant, **ABLATIONS[config.ablation])
    if config.init_segformer:
        from ..model.segformer_weights import load_segformer_weights

        report = load_segformer_weights(model, config.init_segformer)
        notes["init_segformer"] = {"path": str(Path(config.init_segformer).resolve()), "loaded": len(report.loaded),
                                   "skipped": report.skipped, "summary": report.summary()}
    if config.prompt_inputs and not model.config.prompt_channels:
        from ..model import add_prompt_inputs

        model = add_prompt_inputs(model)
        notes["added_prompt_inputs"] = True
    freeze_encoder_stages(model, config.freeze_stages)
    return model.to(context.device).train()


def freeze_encoder_stages(model: torch.nn.Module, count: int) -> int:
    """Fix the parameters of the first `count` encoder stages (patch embedding, attention blocks, Temporal Mamba
    blocks, norms); returns how many parameters were frozen. No gradient flows into them, so backpropagation
    stops before the high-resolution stages, where most of a step's time goes, and a few frames cannot
    overwrite the low-level features learnt from many videos."""
    frozen = 0
    for stage in list(model.stages)[:count]:
        for parameter in stage.parameters():
            parameter.requires_grad_(False)
            frozen += parameter.numel()
    return frozen


def _run(kind: str, data: Path, out: Path, config: TrainConfig, checkpoint: Path | None, resume: bool,
         progress: Callable[[TrainProgress], None] | None, cancel: Any) -> TrainResult:
    context = setup_distributed(config.device)
    try:
        return _run_in_context(kind, data, out, config, checkpoint, resume, progress, cancel, context)
    finally:
        context.close()


def _run_in_context(kind, data, out, config, checkpoint, resume, progress, cancel, context) -> TrainResult:
    inputs = [data, checkpoint, config.init_segformer, config.affine_prior or DEFAULT_PRIOR_PATH]
    check_output_apart(out, [path for path in inputs if path is not None])
    run = RunFolder(out)
    if resume:
        run.check_resumable()
        _check_resume_config(run, config)
    elif context.is_main:
        run.check_new()
    if context.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
    videos = find_training_videos(data, config.split)
    train_videos, val_videos, val_mode = split_videos(videos, config, data)
    notes: dict[str, Any] = {}
    if resume:
        model = load_model(run.last_path, device=context.device).train()
        freeze_encoder_stages(model, config.freeze_stages)  # as the run did: the optimizer holds the rest only
        notes = {k: v for k, v in run.read_config().items() if k in ("start_checkpoint", "init_segformer")}
    else:
        model = _build_model(kind, config, checkpoint, context, notes)
    prior = None
    if config.uses_boundary_loss and config.affine_weight > 0:
        prior = load_affine_prior(config.affine_prior, device=context.device)
    criterion = VivimLoss(LossWeights(config.seg_weight, config.affine_weight, config.boundary_weight), prior,
                          boundary_loss=config.uses_boundary_loss, supervised_frames=config.supervised_frames,
                          weighted_bce=config.weighted_bce).to(context.device)
    train_set, val_set = build_datasets(train_videos, val_videos, config, model.config.input_mean,
                                        model.config.input_std)
    optimizer = make_optimizer(model, config)
    provenance = {"kind": kind, "run_dir": str(out.resolve()), "data": str(data.resolve()), "seed": config.seed,
                  "train_size": list(config.size), "clip_length": config.clip_length, "ablation": config.ablation,
                  "boundary_loss": config.uses_boundary_loss, "world_size": context.world_size,
                  "supervised_frames": config.supervised_frames, "weighted_bce": config.weighted_bce}
    if "start_checkpoint" in notes:
        provenance["start_checkpoint_sha256"] = notes["start_checkpoint"]["sha256"]
    trainer = Trainer(model, criterion, optimizer, config, context, run, train_set, val_set, provenance, progress,
                      cancel)
    if resume:
        loop_state = load_optimizer_state(optimizer, run.optimizer_path)
        rng = loop_state.pop("torch_rng_state", None)
        if rng is not None:
            torch.set_rng_state(rng)
        known = LoopState.__dataclass_fields__
        trainer.state = LoopState(**{k: v for k, v in loop_state.items() if k in known})
        if context.is_main:
            run.truncate_metrics(trainer.state.step)
    if context.is_main:
        run.write_json(run.config_path, {
            "kind": kind, "train_config": config.to_dict(), "model_config": model.config.to_dict(),
            "data": str(data.resolve()), **notes,
            "resolved": {"boundary_loss": config.uses_boundary_loss, "device": str(context.device),
                         "world_size": context.world_size, "global_batch_size": config.batch_size * context.world_size,
                         "steps_per_epoch": trainer.steps_per_epoch, "total_steps": trainer.total_steps,
                         "val_mode": val_mode, "train_clips": len(train_set), "val_clips": len(val_set or []),
                         "affine_prior": read_affine_prior_info(config.affine_prior) if prior is not None else None},
            "versions": {"vivim_core": __version__, "torch": torch.__version__, "python": platform.python_version()},
        })
        run.write_json(run.split_path, split_record(train_videos, val_videos, val_mode, data))
    reason, rows = trainer.fit()
    if not run.best_path.exists() and context.is_main:
        raise RunFolderError(f"{run.path}: the run ended without a best checkpoint")
    return TrainResult(run.path, run.best_path, run.last_path, trainer.state.step, reason, trainer.state.best_step,
                       trainer.state.best_score, rows, model.eval(), context.is_main)
