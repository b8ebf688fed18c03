"""The expert's effort to a correct mask on every frame of a real video, measured with a simulated clinician.

    python benchmarks/annotation_effort.py --data ROOT --split Train --video 0002 --device cpu \\
        --out effort.json --plot effort.png --save-masks DIR

ROOT is a VTUS-layout dataset (ROOT/<split>/<video>/NNNN.jpg with expert masks in ROOT/<split>_GT/<video>/).
The simulated expert follows a fixed protocol (`vivim_studio.effort.protocol`, after the DAVIS interactive
benchmark and the RITM / SAM click protocols) and drives the Studio's own document and service code. Each
strategy starts from the same checkpoint and a fresh workspace:

    trace    every frame outlined by hand (the "hours" baseline)
    stamps   brush stamps only, no model
    studio   everything the Studio does: proposals, click prompts, the learning loop

Prints a table per acceptance threshold (IoU 0.85 and 0.90) and writes JSON with, per strategy and threshold,
interactions and human seconds per 100 frames, compute seconds, failed frames and the IoU of every frame, beside
the machine, date, command and the cost table. `--plot` draws mean IoU against interactions.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="VTUS-layout dataset root")
    parser.add_argument("--split", default="Train")
    parser.add_argument("--video", required=True, help="video id, e.g. 0002")
    parser.add_argument("--strategies", default="trace,stamps,studio")
    parser.add_argument("--thresholds", default="0.85,0.90")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--checkpoint", type=Path, help="starting checkpoint (default: the bundled one of --task)")
    parser.add_argument("--task", default="thyroid", choices=("thyroid", "polyp"))
    parser.add_argument("--adapt-seconds", type=float, help="training time of each learning round (default: 20 s "
                                                             "on a CPU, 5 s on a GPU)")
    parser.add_argument("--out", type=Path, help="JSON report")
    parser.add_argument("--plot", type=Path, help="PNG: mean IoU over all frames against interactions")
    parser.add_argument("--save-masks", type=Path, metavar="DIR",
                        help="write the studio strategy's final masks (IoU 0.85 run) as VTUS PNGs")
    args = parser.parse_args()

    from vivim_studio.effort.runner import load_vtus_video, measure_effort

    video = load_vtus_video(args.data, args.split, args.video)
    thresholds = tuple(float(t) for t in args.thresholds.split(","))
    studio = {"checkpoint": args.checkpoint, "device": args.device, "task": args.task,
              "adapt_seconds": args.adapt_seconds}
    report = measure_effort(video, tuple(args.strategies.split(",")), thresholds, studio, args.save_masks)
    report["command"] = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    _print_table(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    if args.plot:
        _plot(report, args.plot)
    return 0


def _print_table(report: dict) -> None:
    print(f"\n{report['video']} ({report['frames']} frames), {report['machine']}, {report['date']}")
    print(f"{'strategy':9s} {'IoU':>5s} {'interactions/100':>17s} {'human s/100':>12s} {'compute s':>10s} "
          f"{'s/round max':>12s} {'failed':>7s} {'mean IoU':>9s}")
    for name, by_threshold in report["strategies"].items():
        for threshold, r in by_threshold.items():
            print(f"{name:9s} {threshold:>5s} {r['interactions_per_100_frames']:17.1f} "
                  f"{r['human_seconds_per_100_frames']:12.1f} {r['compute_seconds']:10.1f} "
                  f"{r['compute_seconds_per_round']['max']:12.1f} {r['failed_frames']:7d} {r['mean_iou']:9.3f}")


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for axis, threshold in zip(axes, ("0.85", "0.90")):
        for name, by_threshold in report["strategies"].items():
            if threshold in by_threshold and by_threshold[threshold]["curve"]:
                n, iou = zip(*by_threshold[threshold]["curve"])
                axis.plot([v * 100 / report["frames"] for v in n], iou, label=name)
        axis.set_xscale("symlog", linthresh=10)
        axis.set_xlabel("interactions per 100 frames")
        axis.set_title(f"accept at IoU >= {threshold}")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("mean IoU over all frames")
    axes[0].legend()
    figure.suptitle(f"{report['video']}: {report['machine']}, {report['date']}", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
