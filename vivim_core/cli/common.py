"""Flags and progress display shared by the CLI verbs: `vivim-core train` and `finetune` (and `predict`'s --size).

Every flag defaults to None here, so that only the flags a user gives override the defaults (of a new run,
of the few-frame fine-tuning recipe, or of the stored config when resuming).
"""

from __future__ import annotations

import argparse
from typing import Any

# flag dest -> TrainConfig field (same name unless listed)
_RENAMES = {"steps": "max_steps", "early_stop": "early_stop_patience"}


def parse_size(text: str) -> tuple[int, int]:
    """'256' -> (256, 256); '256x320' -> (256, 320) (height x width)."""
    try:
        parts = [int(p) for p in text.lower().replace(",", "x").split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}: give N or HxW, e.g. 256 or 256x320") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"size {text!r}: give N or HxW, e.g. 256 or 256x320")
    return parts[0], parts[1]


def add_training_arguments(parser: argparse.ArgumentParser, defaults: dict[str, Any]) -> None:
    """The run-folder, schedule, loss, data and runtime flags; `defaults` only words the help."""
    d = defaults
    run = parser.add_argument_group("run")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in --out from its last.safetensors and optimizer state (the stored "
                          "settings are reused; --epochs/--steps/--max-minutes/--early-stop may extend them)")
    run.add_argument("--seed", type=int, help=f"random seed of initialisation, split, shuffling and augmentation "
                                              f"(default: {d['seed']})")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"),
                     help="where to train: auto = the GPU when PyTorch sees one (default: auto). Under torchrun each "
                          "process takes GPU LOCAL_RANK")
    run.add_argument("--no-amp", dest="amp", action="store_const", const=False,
                     help="train in float32 on CUDA too (default: bf16 autocast on CUDA; the CPU is always float32)")
    run.add_argument("--num-workers", type=int, metavar="N",
                     help=f"data-loader worker processes (default: {d['num_workers']})")
    run.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    schedule = parser.add_argument_group("schedule")
    schedule.add_argument("--epochs", type=int, metavar="N", help=f"passes over the training clips (default: "
                                                                  f"{d['epochs']}; ignored when --steps is given)")
    schedule.add_argument("--steps", type=int, metavar="N",
                          help="stop after N optimizer steps, overriding --epochs (default: "
                               f"{d['max_steps'] or 'none'})")
    schedule.add_argument("--max-minutes", type=float, metavar="M",
                          help="stop after M minutes of training, keeping best and last (default: no limit)")
    schedule.add_argument("--batch-size", type=int, metavar="N",
                          help=f"clips per optimizer step, per GPU under torchrun (default: {d['batch_size']})")
    schedule.add_argument("--clip-length", type=int, metavar="T",
                          help="frames per clip (default: "
                               + (f"{d['clip_length']})" if d["clip_length"] else "the checkpoint's clip length)"))
    schedule.add_argument("--clip-stride", type=int, metavar="S",
                          help=f"frame step inside a clip (default: {d['clip_stride']})")
    schedule.add_argument("--clips-per-video", type=int, metavar="K",
                          help="use K evenly spaced clips per video and epoch instead of every window (default: "
                               f"{d['clips_per_video'] or 'every window'})")
    schedule.add_argument("--size", type=parse_size, metavar="HxW",
                          help="training frame size, multiples of 32 (default: "
                               + (f"{d['size'][0]}x{d['size'][1]})" if d["size"] else
                                  "the checkpoint's training size)"))
    schedule.add_argument("--freeze-stages", type=int, metavar="N", choices=range(5),
                          help="keep the first N of the encoder's 4 stages fixed (0-4); backpropagation then stops "
                               "before them, which makes each step faster, and a few frames cannot overwrite "
                               f"what they learnt (default: {d.get('freeze_stages', 0)})")
    schedule.add_argument("--prompts", dest="prompt_inputs", action="store_const", const=True,
                          help="give the model click and rough-mask inputs and train them on prompts simulated from "
                               "the masks (the Studio's Prompt tool uses them); a checkpoint that has them keeps "
                               "training them without this flag")
    schedule.add_argument("--lr", type=float, help=f"peak learning rate of Adam (default: {d['lr']:g})")
    schedule.add_argument("--min-lr", type=float, help=f"final learning rate of the cosine schedule "
                                                       f"(default: {d['min_lr']:g})")
    schedule.add_argument("--warmup-steps", type=int, metavar="N", help="linear warm-up steps (default: 0)")
    schedule.add_argument("--weight-decay", type=float,
                          help="decoupled weight decay on weight matrices (AdamW); 0 = plain Adam (default: 0)")
    schedule.add_argument("--grad-clip", type=float, metavar="NORM",
                          help=f"clip the global gradient norm; 0 = off (default: {d['grad_clip']})")
    schedule.add_argument("--eval-every", type=int, metavar="N",
                          help=f"evaluate (and save last/best) every N steps (default: "
                               f"{d['eval_every'] or 'at the end of each epoch'})")
    schedule.add_argument("--early-stop", type=int, metavar="N",
                          help=f"stop after N evaluations without a better validation Dice (default: "
                               f"{d['early_stop_patience'] or 'off'})")
    loss = parser.add_argument_group("loss")
    loss.add_argument("--no-boundary-loss", dest="boundary_loss", action="store_const", const=False,
                      help="train with the segmentation loss only (the paper's ablation c3 does this)")
    loss.add_argument("--affine-weight", type=float, help="weight of the affine boundary constraint (default: 0.3)")
    loss.add_argument("--boundary-weight", type=float, help="weight of the boundary BCE (default: 0.3)")
    loss.add_argument("--seg-weight", type=float, help="weight of the structure (BCE + IoU) loss (default: 1)")
    loss.add_argument("--affine-prior", metavar="PATH",
                      help="affine prior file (default: the bundled resources/affine_prior.safetensors)")
    loss.add_argument("--supervised-frames", choices=("all", "centre"),
                      help="score every frame of a clip, or only its centre frame as the official code does "
                           "(default: all)")
    loss.add_argument("--unweighted-bce", dest="weighted_bce", action="store_const", const=False,
                      help="the structure loss's BCE as the official code computes it: a plain mean, without the "
                           "boundary weighting (default: weighted)")
    data = parser.add_argument_group("data")
    data.add_argument("--split", help=f"VTUS split folder to train on: ROOT/SPLIT and ROOT/SPLIT_GT (default: "
                                      f"{d['split']})")
    data.add_argument("--val-split", dest="val_mode", metavar="MODE",
                      help="validation: videos (hold out videos), frames (hold out each video's last frames), "
                           "train (score the training frames: few-frame fine-tuning), none, a VTUS split name such "
                           "as Val (ROOT/Val, ROOT/Val_GT), or auto = videos with >= 2 videos, else frames when the "
                           f"video holds >= 3 clips, else train (default: {d['val_mode']})")
    data.add_argument("--val-fraction", type=float, metavar="F",
                      help=f"fraction of videos or frames held out by 'videos'/'frames' (default: {d['val_fraction']})")
    data.add_argument("--no-augment", dest="augment", action="store_const", const=False,
                      help="no flips, rotations or colour jitter (default: augmentation on)")


def config_overrides(args: argparse.Namespace, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """TrainConfig fields given on the command line."""
    from ..engine.train_config import TrainConfig

    fields = set(TrainConfig.__dataclass_fields__)
    overrides = {}
    for dest, value in vars(args).items():
        name = _RENAMES.get(dest, dest)
        if value is None or name not in fields:
            continue
        if dest == "val_mode" and value not in ("auto", "videos", "frames", "train", "none"):
            value = value if value.startswith("split:") else f"split:{value}"
        overrides[name] = value
    if overrides.get("grad_clip") == 0:
        overrides["grad_clip"] = None
    return overrides


def resolve_config(args: argparse.Namespace, base) -> Any:
    """The TrainConfig of this command: the stored one when resuming, else `base`, with the given flags applied."""
    from ..engine.runs import RunFolder
    from ..errors import VivimError

    overrides = config_overrides(args)
    if args.resume:
        run = RunFolder(args.out)
        if not run.config_path.is_file():
            raise VivimError(f"--resume: {run.config_path} not found; is --out the folder of an earlier run?")
        base = run.stored_train_config()
    return base.replace(**overrides)


def run_with_progress(fn, args: argparse.Namespace, **kwargs):
    """Call train/finetune with a tqdm bar (rank 0 only; train emits progress there only)."""
    from tqdm import tqdm

    bar = None

    def progress(event) -> None:
        nonlocal bar
        if args.no_progress:
            if event.phase == "eval":
                print(_eval_line(event), flush=True)
            return
        if bar is None:
            bar = tqdm(total=event.total_steps, unit="step", desc=fn.__name__, dynamic_ncols=True)
        bar.update(event.step - bar.n)
        if event.phase == "train":
            bar.set_postfix(loss=f"{event.metrics.get('loss', float('nan')):.4f}", lr=f"{event.lr:.2e}")
        else:
            bar.write(_eval_line(event))

    try:
        return fn(progress=progress, **kwargs)
    finally:
        if bar is not None:
            bar.close()


def _eval_line(event) -> str:
    m = event.metrics
    parts = [f"step {event.step}/{event.total_steps}", f"epoch {event.epoch}"]
    if "train_loss" in m:
        parts.append(f"train loss {m['train_loss']:.4f}")
    if "val_dice" in m:
        parts.append(f"val loss {m['val_loss']:.4f}  val Dice {m['val_dice']:.4f}")
    if m.get("is_best"):
        parts.append("(best)")
    return "  ".join(parts)


def print_result(result) -> None:
    if not result.is_main:  # under torchrun only rank 0 reports
        return
    score = (f"best validation Dice {result.best_score:.4f}" if result.best_score >= 0 else
             f"best train loss {-result.best_score:.4f}")
    print(f"{result.stop_reason.replace('_', ' ')} after {result.steps} steps; {score} at step {result.best_step}")
    print(f"best checkpoint: {result.best_path}")
    print(f"run folder:      {result.run_dir} (config.json, split.json, metrics.csv, last.safetensors)")
