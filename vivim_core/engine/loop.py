"""The optimisation loop shared by `train` and `finetune` (see `vivim_core.engine.train` for the API).

One `Trainer` per process. Steps are counted globally (optimizer steps), evaluations happen every
`eval_every` steps or at each epoch's end, and each evaluation appends a metrics row and saves `last` (and
`best` when the validation Dice improved). Only rank 0 writes files or calls `progress`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import VivimError
from ..losses import VivimLoss
from .checkpoint import save_checkpoint
from .distributed import DistributedContext
from .prompt_simulation import CORRECTIVE_STEPS, PromptSimulator
from .runs import RunFolder, save_optimizer_state
from .train_config import TrainConfig
from .train_data import EpochSampler, collate_clips, make_loader


class TrainingCancelled(VivimError):
    """Training stopped because the caller cancelled it; `last` was saved, so the run can be resumed."""


@dataclass
class TrainProgress:
    """What `progress` receives: phase 'train' every `log_every` steps, 'eval' after each evaluation."""

    phase: str
    step: int
    total_steps: int
    epoch: int
    lr: float
    metrics: dict[str, float] = field(default_factory=dict)  # running train means, or the evaluation row


@dataclass
class LoopState:
    """What survives a resume (stored as JSON beside the optimizer state)."""

    step: int = 0
    best_score: float = -math.inf  # validation Dice (or -train loss without validation)
    best_step: int = 0
    evals_since_best: int = 0
    elapsed: float = 0.0  # seconds of training before the last resume of this run
    last_eval_step: int = -1


def learning_rate(step: int, total_steps: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine from `lr` to `min_lr` at the last step."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps - 1)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam (the paper) without weight decay; with weight_decay > 0, AdamW decaying weight matrices only."""
    parameters = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if config.weight_decay == 0:
        return torch.optim.Adam([p for _, p in parameters], lr=config.lr)
    decay = [p for n, p in parameters if p.ndim >= 2 and not n.endswith("A_log")]
    keep = [p for n, p in parameters if not (p.ndim >= 2 and not n.endswith("A_log"))]
    return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                              {"params": keep, "weight_decay": 0.0}], lr=config.lr)


def _cancelled(cancel: Any) -> bool:
    if cancel is None:
        return False
    return bool(cancel.is_set()) if hasattr(cancel, "is_set") else bool(cancel())


class Trainer:
    def __init__(self, model: nn.Module, criterion: VivimLoss, optimizer: torch.optim.Optimizer, config: TrainConfig,
                 context: DistributedContext, run: RunFolder, train_set, val_set, provenance: dict[str, Any],
                 progress: Callable[[TrainProgress], None] | None = None, cancel: Any = None):
        self.model, self.criterion, self.optimizer, self.config = model, criterion, optimizer, config
        self.context, self.run, self.provenance = context, run, provenance
        self.progress, self.cancel = progress, cancel
        self.train_set, self.val_set = train_set, val_set
        self.device = context.device
        self.sampler = EpochSampler(len(train_set), context, config.seed, shuffle=True)
        self.loader = make_loader(train_set, self.sampler, config, self.device)
        self.steps_per_epoch = math.ceil(len(self.sampler) / config.batch_size)
        self.total_steps = config.max_steps or config.epochs * self.steps_per_epoch
        self.state = LoopState()
        self._started = time.perf_counter()
        # A prompt-capable model learns its prompt inputs from prompts simulated on the true masks.
        self.prompts = (PromptSimulator(config.seed + 7919 * context.rank)
                        if getattr(model.config, "prompt_channels", 0) else None)
        self.ddp = model
        if context.enabled:
            self.ddp = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=not criterion.boundary_loss)

    # ---- helpers -------------------------------------------------------------------------------------------
    def _autocast(self):
        if self.device.type == "cuda" and self.config.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _report(self, phase: str, epoch: int, metrics: dict[str, float]) -> None:
        if self.progress is not None and self.context.is_main:
            lr = self.optimizer.param_groups[0]["lr"]
            self.progress(TrainProgress(phase, self.state.step, self.total_steps, epoch, lr, dict(metrics)))

    def elapsed(self) -> float:
        """Seconds of training in this run, the time before a resume included."""
        return self.state.elapsed + time.perf_counter() - self._started

    def _to_device(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        return (batch["frames"].to(self.device, non_blocking=True), batch["masks"].to(self.device, non_blocking=True))

    def _simulated_prompts(self, batch: dict, frames: torch.Tensor) -> torch.Tensor | None:
        """Prompts (B, T, P, H, W) for a training batch of a prompt-capable model, else None; on a share of the
        steps, re-prompted from the model's own predictions (see `prompt_simulation`)."""
        if self.prompts is None:
            return None
        masks = batch["masks"][:, :, 0].numpy() > 0.5
        prompts = self.prompts(masks)
        if self.prompts.rng.random() < CORRECTIVE_STEPS:
            with torch.no_grad(), self._autocast():
                logits = self.model(frames, torch.from_numpy(prompts).to(self.device)).mask_logits[:, :, 0]
            predictions = (logits.float() >= 0).cpu().numpy()
            prompts = self.prompts.corrective(masks, predictions, prompts)
        return torch.from_numpy(prompts).to(self.device, non_blocking=True)

    # ---- one step and one evaluation ---------------------------------------------------------------------
    def train_step(self, batch: dict) -> dict[str, float]:
        frames, masks = self._to_device(batch)
        prompts = self._simulated_prompts(batch, frames)
        lr = learning_rate(self.state.step, self.total_steps, self.config)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self._autocast():
            output = self.ddp(frames, prompts)
        terms = self.criterion(output.mask_logits, output.boundary_logits, masks)
        if not torch.isfinite(terms.total):
            raise VivimError(f"the training loss became {float(terms.total)} at step {self.state.step + 1} "
                             f"(lr {lr:g}); lower --lr or keep gradient clipping on; best/last checkpoints so far "
                             f"are in {self.run.path}")
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.state.step += 1
        return terms.as_floats()

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean validation loss terms per clip and Dice per frame (p >= 0.5; both empty = 1), over all processes."""
        if self.val_set is None:
            return {}
        self.model.eval()
        self.criterion.eval()
        indices = list(range(self.context.rank, len(self.val_set), self.context.world_size))
        loader = torch.utils.data.DataLoader(self.val_set, batch_size=self.config.batch_size, sampler=indices,
                                             num_workers=min(self.config.num_workers, 2), collate_fn=collate_clips,
                                             pin_memory=self.device.type == "cuda")
        sums = torch.zeros(6, dtype=torch.float64)  # loss, seg, affine, boundary (x clips), dice sum, frames
        clips = torch.zeros(1, dtype=torch.float64)
        for batch in loader:
            frames, masks = self._to_device(batch)
            with self._autocast():
                output = self.model(frames)
            terms = self.criterion(output.mask_logits, output.boundary_logits, masks)
            n = frames.shape[0]
            values = terms.as_floats()
            for i, key in enumerate(("loss", "seg", "affine", "boundary")):
                sums[i] += values[key] * n
            predicted = (output.mask_logits.float() >= 0).flatten(2)  # sigmoid >= 0.5
            truth = masks.flatten(2) > 0.5
            overlap = (predicted & truth).sum(-1).double()
            total = predicted.sum(-1).double() + truth.sum(-1).double()
            dice = torch.where(total > 0, 2 * overlap / total.clamp(min=1), torch.ones_like(total))
            sums[4] += float(dice.sum())
            sums[5] += dice.numel()
            clips += n
        self.context.all_reduce_sum(sums)
        self.context.all_reduce_sum(clips)
        self.model.train()
        self.criterion.train()
        c = max(float(clips), 1.0)
        return {"val_loss": float(sums[0]) / c, "val_seg": float(sums[1]) / c, "val_affine": float(sums[2]) / c,
                "val_boundary": float(sums[3]) / c, "val_dice": float(sums[4]) / max(float(sums[5]), 1.0)}

    # ---- checkpoints -------------------------------------------------------------------------------------------
    def save(self, epoch: int, metrics: dict[str, float], is_best: bool) -> None:
        if not self.context.is_main:
            return
        provenance = dict(self.provenance, step=self.state.step, epoch=epoch,
                          **{k: metrics[k] for k in ("val_dice", "val_loss", "train_loss") if k in metrics})
        if is_best:
            save_checkpoint(self.model, self.run.best_path, provenance)
        save_checkpoint(self.model, self.run.last_path, provenance)
        loop_state = dict(vars(self.state), elapsed=self.elapsed(), epoch=epoch, torch_rng_state=torch.get_rng_state())
        save_optimizer_state(self.optimizer, self.run.optimizer_path, loop_state)

    def evaluate_and_save(self, epoch: int, running: dict[str, float]) -> dict[str, float]:
        if self.context.enabled and running:  # every process must score (and early-stop) on the same numbers
            keys = sorted(running)
            values = self.context.all_reduce_sum(torch.tensor([running[k] for k in keys], dtype=torch.float64))
            running = {k: float(v) / self.context.world_size for k, v in zip(keys, values)}
        metrics = {f"train_{k}": v for k, v in running.items()}
        metrics.update(self.evaluate())
        score = metrics["val_dice"] if "val_dice" in metrics else -metrics.get("train_loss", math.inf)
        is_best = score > self.state.best_score + 1e-6
        if is_best:
            self.state.best_score, self.state.best_step, self.state.evals_since_best = score, self.state.step, 0
        else:
            self.state.evals_since_best += 1
        self.state.last_eval_step = self.state.step
        row = dict(metrics, step=self.state.step, epoch=epoch, lr=self.optimizer.param_groups[0]["lr"],
                   seconds=round(self.elapsed(), 1), is_best=int(is_best))
        if self.context.is_main:
            self.run.append_metrics(row)
        self.save(epoch, metrics, is_best)
        self._report("eval", epoch, row)
        return row

    # ---- the loop ------------------------------------------------------------------------------------------
    def fit(self) -> tuple[str, list[dict[str, float]]]:
        """Run until the step budget, early stop, time limit or cancel. Returns (stop reason, evaluation rows)."""
        config, state = self.config, self.state
        self._started = time.perf_counter()
        rows: list[dict[str, float]] = []
        totals: dict[str, float] = {}
        count = 0
        reason = "completed"
        self.model.train()
        while state.step < self.total_steps and reason == "completed":
            epoch = state.step // self.steps_per_epoch
            skip = (state.step % self.steps_per_epoch) * config.batch_size
            self.sampler.set_epoch(epoch, skip)
            self.train_set.set_epoch(epoch)
            for batch in self.loader:
                values = self.train_step(batch)
                for key, value in values.items():
                    totals[key] = totals.get(key, 0.0) + value
                count += 1
                running = {k: v / count for k, v in totals.items()}
                if state.step % config.log_every == 0:
                    self._report("train", epoch, running)
                end_of_epoch = state.step % self.steps_per_epoch == 0
                due = (state.step % config.eval_every == 0) if config.eval_every else end_of_epoch
                if due or state.step >= self.total_steps:
                    rows.append(self.evaluate_and_save(epoch, running))
                    totals, count = {}, 0
                    if config.early_stop_patience and state.evals_since_best >= config.early_stop_patience:
                        reason = "early_stop"
                if reason == "completed" and config.max_minutes is not None:
                    if self.context.any(self.elapsed() > 60 * config.max_minutes):
                        reason = "time_limit"
                if reason == "completed" and self.cancel is not None and self.context.any(_cancelled(self.cancel)):
                    reason = "cancelled"
                if reason != "completed" or state.step >= self.total_steps:
                    break
        epoch = state.step // self.steps_per_epoch
        if reason == "cancelled":  # keep `last` for a resume, skip the evaluation: the caller wants to stop now
            self.save(epoch, {}, is_best=False)
            raise TrainingCancelled(f"training cancelled at step {state.step}; the run can continue with --resume "
                                    f"--out {self.run.path}")
        if state.last_eval_step != state.step:  # stopped between evaluations: evaluate what we have
            rows.append(self.evaluate_and_save(epoch, {k: v / max(count, 1) for k, v in totals.items()}))
        return reason, rows
