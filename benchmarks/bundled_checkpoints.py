"""Reproduce the bundled default checkpoints (resources/vivim-tiny-thyroid.safetensors, -polyp.safetensors).

They are trained only on data we may redistribute: this project's synthetic videos (ultrasound-like with
hypoechoic nodules for thyroid; colonoscopy-like with polyps for polyp). Each run:

1. writes the synthetic dataset (VTUS layout for thyroid, PNS/VPS polyp layout for polyp; seeded);
2. trains with `vivim-core train` (the exact command is stored in the checkpoint's provenance);
3. stores the best checkpoint in fp16 with its provenance (data, steps, seed, validation Dice, command).

    python benchmarks/bundled_checkpoints.py --task thyroid --steps 3000 --out resources/   # needs a GPU
    python benchmarks/bundled_checkpoints.py --task polyp --steps 3000 --out resources/

With `--from CKPT --prompts` it instead continues an image-only checkpoint with prompt inputs added (clicks and
a rough mask, `vivim_core.prompts`), its first two encoder stages fixed, on prompts simulated from the synthetic
masks (`vivim-core finetune --prompts`): how the bundled checkpoints became prompt-capable.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASKS = {
    # task: (data writer, synthetic kind)
    "thyroid": ("write_vtus_dataset", "ultrasound"),
    "polyp": ("write_polyp_dataset", "endoscopy"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=sorted(TASKS), required=True)
    parser.add_argument("--out", type=Path, default=Path("resources"), help="folder for the bundled checkpoint")
    parser.add_argument("--work", type=Path, default=None, help="data + run folder (default: a temp folder)")
    parser.add_argument("--variant", default="vivim-tiny")
    parser.add_argument("--videos", type=int, default=48, help="synthetic videos")
    parser.add_argument("--frames", type=int, default=32, help="frames per synthetic video")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--max-minutes", type=float, default=None, help="stop training after this long")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--num-workers", type=int, default=8)
    parser.add_argument("--from", dest="start", type=Path, help="continue this checkpoint (vivim-core finetune)")
    parser.add_argument("--prompts", action="store_true", help="add and train prompt inputs (with --from)")
    parser.add_argument("--freeze-stages", type=int, default=2, help="with --from: encoder stages kept fixed")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the command's)")
    parser.add_argument("--prompt-layers", action="store_true",
                        help="with --from: train only the prompt inputs and the layers after the fixed stages, on "
                             "cached features (vivim_core.engine.prompt_training)")
    args = parser.parse_args()

    from vivim_core.data import synthetic
    from vivim_core.engine.checkpoint import load_model, read_checkpoint_info, save_checkpoint

    if args.prompt_layers:
        return _prompt_layers(args)

    work = args.work or Path(tempfile.mkdtemp(prefix=f"vivim-{args.task}-"))
    data = work / "data"
    writer_name, kind = TASKS[args.task]
    started = time.time()
    getattr(synthetic, writer_name)(data, num_videos=args.videos, frames_per_video=args.frames,
                                    size=(args.size, args.size), seed=args.seed, kind=kind)
    print(f"data: {args.videos} synthetic {kind} videos x {args.frames} frames at {args.size}x{args.size} "
          f"in {time.time() - started:.0f} s -> {data}", flush=True)

    run = work / "run"
    command = [sys.executable, "-m", "vivim_core", "train", "--data", str(data), "--out", str(run),
               "--variant", args.variant, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
               "--size", f"{args.size}x{args.size}", "--seed", str(args.seed), "--device", args.device,
               "--num-workers", str(args.num_workers), "--val-split", "videos", "--no-progress"]
    if args.start is not None:
        command[3:4] = ["finetune", "--checkpoint", str(args.start), "--freeze-stages", str(args.freeze_stages),
                        "--clips-per-video", "64", "--eval-every", str(max(1, args.steps // 4))]
        command = [c for i, c in enumerate(command) if not (c == "--variant" or command[i - 1] == "--variant")]
    if args.prompts:
        command.append("--prompts")
    if args.lr is not None:
        command += ["--lr", str(args.lr)]
    if args.max_minutes:
        command += ["--max-minutes", str(args.max_minutes)]
    started = time.time()
    subprocess.run(command, check=True)
    train_seconds = time.time() - started

    # Validation scores proposals without prompts; a prompt-trained model keeps its last weights (what it learnt
    # about prompts last), not the step that proposed best without them.
    best = run / ("last.safetensors" if args.prompts else "best.safetensors")
    info = read_checkpoint_info(best)
    model = load_model(best)
    provenance = dict(info["provenance"])
    provenance["bundled"] = {
        "task": args.task,
        "data": f"{args.videos} synthetic {kind} videos x {args.frames} frames, {args.size}x{args.size}, "
                f"vivim_core.data.synthetic.{writer_name}(seed={args.seed})",
        "train_command": "vivim-core " + " ".join(shlex.quote(c) for c in command[3:]),
        "reproduce": f"python benchmarks/bundled_checkpoints.py --task {args.task} --steps {args.steps} "
                     f"--seed {args.seed} --videos {args.videos} --frames {args.frames}"
                     + (f" --max-minutes {args.max_minutes}" if args.max_minutes else "")
                     + (f" --from {args.start.name} --freeze-stages {args.freeze_stages}" if args.start else "")
                     + (" --prompts" if args.prompts else "") + (f" --lr {args.lr}" if args.lr else ""),
        "train_seconds": round(train_seconds, 1),
        "stored_dtype": "float16",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"{args.variant}-{args.task}.safetensors"
    import torch

    save_checkpoint(model, target, provenance=provenance, dtype=torch.float16)
    metrics = (run / "metrics.csv").read_text().strip().splitlines()
    print(json.dumps({"checkpoint": str(target), "bytes": target.stat().st_size, "train_seconds": train_seconds,
                      "last_metrics": metrics[-1] if metrics else None, "header": metrics[0] if metrics else None},
                     indent=2))
    return 0


def _prompt_layers(args) -> int:
    """--from CKPT --prompt-layers: prompt inputs trained on cached features of in-memory synthetic videos."""
    import numpy as np
    import torch

    from vivim_core.data.synthetic import _video_seed, make_video
    from vivim_core.engine.checkpoint import checkpoint_sha256, load_model, read_checkpoint_info, save_checkpoint
    from vivim_core.engine.distributed import resolve_device
    from vivim_core.engine.prompt_training import train_prompt_inputs

    if args.start is None:
        raise SystemExit("--prompt-layers needs --from CKPT")
    _, kind = TASKS[args.task]
    started = time.time()
    videos = [make_video(kind, args.frames, args.size, args.size, _video_seed(args.seed, 5000 + i))
              for i in range(args.videos)]
    print(f"data: {args.videos} synthetic {kind} videos x {args.frames} frames in {time.time() - started:.0f} s",
          flush=True)
    torch.manual_seed(args.seed)
    device = resolve_device(args.device)

    def report(step: int, total: int, loss: float) -> None:
        if step % 50 == 0 or step == total:
            print(f"step {step}/{total} loss {loss:.4f} ({time.time() - started:.0f} s)", flush=True)

    result = train_prompt_inputs(load_model(args.start), [(f, m.astype(bool)) for f, m in videos], steps=args.steps,
                                 lr=args.lr or 3e-4, size=(args.size, args.size), device=device, seed=args.seed,
                                 max_seconds=60 * args.max_minutes if args.max_minutes else None, progress=report)
    provenance = dict(read_checkpoint_info(args.start)["provenance"])
    provenance["prompt_training"] = {
        "start_checkpoint_sha256": checkpoint_sha256(args.start), "steps": result["steps"],
        "seconds": round(result["seconds"], 1), "final_loss": result["loss"], "device": str(device),
        "data": f"{args.videos} synthetic {kind} videos x {args.frames} frames, {args.size}x{args.size}, seed {args.seed}",
        "reproduce": f"python benchmarks/bundled_checkpoints.py --task {args.task} --from {args.start.name} "
                     f"--prompt-layers --steps {args.steps} --videos {args.videos} --frames {args.frames} "
                     f"--seed {args.seed}" + (f" --lr {args.lr}" if args.lr else "")
                     + (f" --max-minutes {args.max_minutes}" if args.max_minutes else ""),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"{args.variant}-{args.task}.safetensors"
    save_checkpoint(result["model"], target, provenance=provenance, dtype=torch.float16)
    print(json.dumps({"checkpoint": str(target), "steps": result["steps"], "seconds": round(result["seconds"], 1),
                      "loss": result["loss"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
