"""The real-data figure: train vivim-tiny on synthetic videos plus frames 1-60 of the real thyroid
ultrasound sample, then report Dice on its held-out frames 61-91.

    python benchmarks/real_data_figure.py --sample ../shared/data/vtus-sample --steps 2000 --out result.json

The real sample (CC BY-NC) is read in place: the training folder links to its files, nothing is copied
into the project. Validation during training uses synthetic videos only (no peeking at the test frames);
the held-out frames are evaluated once at the end, with the model predicting the whole video (frames 1-60
are then unlabeled context, as in the Studio) and Dice computed on frames 61-91 only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def link_frames(src_frames: list[Path], src_masks: list[Path], frames_dir: Path, masks_dir: Path) -> None:
    frames_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)
    for number, (frame, mask) in enumerate(zip(src_frames, src_masks), start=1):
        os.symlink(frame.resolve(), frames_dir / f"{number:04d}.jpg")
        os.symlink(mask.resolve(), masks_dir / f"{number:04d}.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=Path, default=Path("../shared/data/vtus-sample"))
    parser.add_argument("--video", default="0002")
    parser.add_argument("--train-frames", type=int, default=60, help="frames 1..N train, the rest are held out")
    parser.add_argument("--synthetic-videos", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--num-workers", type=int, default=4)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="JSON report")
    args = parser.parse_args()

    from vivim_core import load_model
    from vivim_core.data import find_vtus_videos, read_frame, read_mask, write_vtus_dataset
    from vivim_core.engine.predict import predict_video
    from vivim_core.metrics import VTUSEvaluation

    real = next(v for v in find_vtus_videos(args.sample, "Train") if v.video_id == args.video)
    work = args.work or Path(tempfile.mkdtemp(prefix="vivim-real-"))
    data = work / "data"
    write_vtus_dataset(data, num_videos=args.synthetic_videos, frames_per_video=32, size=(256, 256),
                       split="Train", seed=args.seed, kind="ultrasound")
    n = args.train_frames
    link_frames(real.frame_paths[:n], real.mask_paths[:n], data / "Train" / f"real{args.video}",
                data / "Train_GT" / f"real{args.video}")

    run = work / "run"
    command = [sys.executable, "-m", "vivim_core", "train", "--data", str(data), "--out", str(run),
               "--variant", "vivim-tiny", "--steps", str(args.steps), "--batch-size", str(args.batch_size),
               "--seed", str(args.seed), "--device", args.device, "--num-workers", str(args.num_workers),
               "--val-split", "none", "--no-progress"]
    if args.max_minutes:
        command += ["--max-minutes", str(args.max_minutes)]
    started = time.time()
    subprocess.run(command, check=True)
    train_seconds = time.time() - started

    model = load_model(run / "last.safetensors", device="cuda" if args.device != "cpu" and _cuda() else "cpu")
    frames = [read_frame(p) for p in real.frame_paths]
    probs = predict_video(model, frames)
    held_out = VTUSEvaluation()
    seen = VTUSEvaluation()
    for index, (prob, mask_path) in enumerate(zip(probs, real.mask_paths)):
        (seen if index < n else held_out).add(args.video, prob, read_mask(mask_path))
    report = {
        "experiment": f"vivim-tiny trained on {args.synthetic_videos} synthetic videos + real frames 1-{n}; "
                      f"Dice on real frames {n + 1}-{len(real.frame_paths)}",
        "command": " ".join(sys.argv),
        "train_command": " ".join(command[1:]),
        "train_seconds": round(train_seconds, 1),
        "held_out": held_out.result()["overall"],
        "training_frames": seen.result()["overall"],
        "device": _device_name(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    text = json.dumps(report, indent=2, default=float)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


if __name__ == "__main__":
    sys.exit(main())
