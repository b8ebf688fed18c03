"""The learning loop on real thyroid ultrasound: how much do a few accepted frames improve the rest?

    python benchmarks/learning_loop.py --ks 3,5,10 --out benchmarks/results/learning_loop_cpu.json

1. Proposals of the starting checkpoint (default: the bundled thyroid one) on every frame of the real
   sample video: Dice against the expert masks.
2. For each k: k evenly spaced frames are "accepted" (their expert masks stand in for the clinician's
   corrections) and exported exactly as the Studio exports them (a VTUS folder with just those frames);
   `vivim_core.engine.train.finetune` adapts the checkpoint with its few-frame defaults; the whole video is
   proposed again and Dice is measured on the frames that were NOT accepted.
3. Time per loop = fine-tune + re-proposal of the whole video, on the machine it runs on.

The real sample (CC BY-NC) is read in place; the temporary export links to its files.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def dice_of(probs, masks, frames: list[int]) -> float:
    from vivim_core.metrics import VTUSEvaluation

    evaluation = VTUSEvaluation()
    for i in frames:
        evaluation.add("video", probs[i], masks[i])
    return float(evaluation.result()["overall"]["dice"])


def export_accepted(video, indices: list[int], root: Path) -> Path:
    """The Studio's VTUS export of the accepted frames: ROOT/Train/<id>/NNNN.jpg + ROOT/Train_GT/<id>/NNNN.png."""
    frames_dir, masks_dir = root / "Train" / video.video_id, root / "Train_GT" / video.video_id
    frames_dir.mkdir(parents=True)
    masks_dir.mkdir(parents=True)
    for number, i in enumerate(indices, start=1):
        os.symlink(Path(video.frame_paths[i]).resolve(), frames_dir / f"{number:04d}.jpg")
        os.symlink(Path(video.mask_paths[i]).resolve(), masks_dir / f"{number:04d}.png")
    return root


def parse_settings(items: list[str]) -> dict:
    """['lr=1e-4', 'freeze_stages=2'] -> {'lr': 0.0001, 'freeze_stages': 2} (values read as JSON when they parse)."""
    settings = {}
    for item in items:
        name, _, text = item.partition("=")
        try:
            settings[name.strip()] = json.loads(text)
        except json.JSONDecodeError:
            settings[name.strip()] = text
    return settings


def plot(report: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    ks = [row["k"] for row in report["loops"]]
    dice = [row["dice_not_accepted"] for row in report["loops"]]
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=120)
    ax.axhline(report["baseline_dice_all_frames"], color="grey", linestyle="--", label="bundled checkpoint")
    ax.plot(ks, dice, "o-", color="tab:green", label="after fine-tuning on k accepted frames")
    ax.axhline(0.85, color="tab:red", linewidth=0.8, linestyle=":", label="target 0.85")
    ax.set_xlabel("accepted frames k")
    ax.set_ylabel("Dice on the other frames")
    ax.set_ylim(0, 1)
    ax.set_xticks(ks)
    ax.set_title(f"Learning loop, real thyroid ultrasound ({report['device']})", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the bundled thyroid checkpoint")
    parser.add_argument("--sample", type=Path, default=Path("../shared/data/vtus-sample"))
    parser.add_argument("--video", default="0002")
    parser.add_argument("--ks", default="3,5,10")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-steps", type=int, default=None, help="override the fine-tune step budget")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a fine-tuning setting (TrainConfig field), e.g. --set lr=1e-4; repeatable")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="JSON report")
    parser.add_argument("--plot", type=Path, default=None, help="PNG plot (needs matplotlib)")
    args = parser.parse_args()

    import numpy as np
    import torch

    from vivim_core import load_model
    from vivim_core.data import find_vtus_videos, read_frame, read_mask
    from vivim_core.engine.predict import predict_video
    from vivim_core.engine.train import finetune, finetune_defaults
    from vivim_core.resources import resource_path

    checkpoint = args.checkpoint or resource_path("vivim-tiny-thyroid.safetensors")
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)
    video = next(v for v in find_vtus_videos(args.sample, "Train") if v.video_id == args.video)
    frames = [read_frame(p) for p in video.frame_paths]
    masks = [read_mask(p) for p in video.mask_paths]
    n = len(frames)

    started = time.perf_counter()
    baseline_probs = predict_video(load_model(checkpoint, device=device), frames)
    report = {
        "checkpoint": str(checkpoint),
        "video": f"{args.sample}/Train/{args.video} ({n} frames, {frames[0].shape[1]}x{frames[0].shape[0]})",
        "device": torch.cuda.get_device_name(0) if device == "cuda" else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(["python", *sys.argv]),
        "baseline_dice_all_frames": dice_of(baseline_probs, masks, list(range(n))),
        "baseline_propose_seconds": round(time.perf_counter() - started, 2),
        "settings": parse_settings(args.set),
        "finetune_config": finetune_defaults(checkpoint, **{"device": device, "seed": args.seed,
                                                            **parse_settings(args.set)}).to_dict(),
        "loops": [],
    }
    print(f"bundled checkpoint: Dice {report['baseline_dice_all_frames']:.3f} on all {n} frames", flush=True)
    for k in (int(v) for v in args.ks.split(",")):
        accepted = sorted({int(round(x)) for x in np.linspace(0, n - 1, k)})
        rest = [i for i in range(n) if i not in accepted]
        with tempfile.TemporaryDirectory() as tmp:
            data = export_accepted(video, accepted, Path(tmp) / "export")
            overrides = {"device": device, "seed": args.seed}
            if args.max_steps:
                overrides["max_steps"] = args.max_steps
            overrides.update(parse_settings(args.set))
            t0 = time.perf_counter()
            result = finetune(data, checkpoint, Path(tmp) / "run", finetune_defaults(checkpoint, **overrides))
            tuned_seconds = time.perf_counter() - t0
            model = load_model(result.best_path, device=device)
            t1 = time.perf_counter()
            probs = predict_video(model, frames)
            propose_seconds = time.perf_counter() - t1
        row = {"k": k, "accepted_frames": [i + 1 for i in accepted], "finetune_steps": result.steps,
               "stop_reason": result.stop_reason, "finetune_seconds": round(tuned_seconds, 1),
               "repropose_seconds": round(propose_seconds, 1),
               "loop_seconds": round(tuned_seconds + propose_seconds, 1),
               "dice_not_accepted": dice_of(probs, masks, rest),
               "baseline_dice_not_accepted": dice_of(baseline_probs, masks, rest)}
        report["loops"].append(row)
        print(f"k={k:2d}: Dice {row['baseline_dice_not_accepted']:.3f} -> {row['dice_not_accepted']:.3f} on the "
              f"{len(rest)} other frames; loop {row['loop_seconds']} s ({row['finetune_steps']} steps, "
              f"{row['stop_reason']})", flush=True)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.plot and plot(report, args.plot):
        print(f"plot: {args.plot}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
