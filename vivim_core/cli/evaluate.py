"""Score predicted masks against ground truth, per video and overall, with the paper's protocols.

protocols:
  vtus  thyroid ultrasound (VTUS): Dice, Jaccard, Precision, Recall of masks binarised at probability >= 0.5;
        per frame, averaged over the frames of each video, then over the videos.
  vps   video polyp segmentation (PNS-Net's evaluator): maxDice, maxIoU, maxSpe over 256 thresholds of the
        min-max normalised map, S-measure (alpha 0.5), E-measure (mean and max), MAE; the first and last
        frame of each video are dropped; averaged over frames per video, then over videos.
  official  the official Vivim code's validation scores: Dice, Jaccard, Precision, Recall, Specificity and
        F-measure each averaged over 256 thresholds (p > t, t = linspace(1, 0, 256)) with its empty-mask rules,
        S-measure and MAE of the map; averaged over all frames of all videos together. Pair it with
        `vivim-core predict --protocol official --save-prob`.

folders: --pred and --gt each hold one folder of PNGs per video (DIR/<video_id>/NNNN.png), e.g. the output of
`vivim-core predict` and a VTUS ground-truth split (ROOT/Test_GT) or a polyp dataset's GT folder
(ROOT/<dataset>/GT). Predictions are 8-bit masks {0, 255} or probability maps 0..255. Frames are matched by
name; a missing or extra video or frame, a size mismatch or a non-binary ground truth is an error.

--json must lie outside --pred and --gt, and may replace only scores an earlier `evaluate --json` wrote.

examples:
  vivim-core evaluate --pred runs/pred --gt data/vtus/Test_GT
  vivim-core evaluate --pred runs/prob --gt data/polyp/SUN-SEG/GT --protocol vps --json scores.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "score predicted masks against ground truth (VTUS, VPS or the official code's protocol)"

COLUMNS = {
    "vtus": [("dice", "Dice"), ("jaccard", "Jaccard"), ("precision", "Precision"), ("recall", "Recall")],
    "vps": [("max_dice", "maxDice"), ("max_iou", "maxIoU"), ("max_specificity", "maxSpe"), ("s_measure", "S-alpha"),
            ("mean_e_measure", "meanE"), ("max_e_measure", "maxE"), ("mae", "MAE")],
    "official": [("dice", "Dice"), ("jaccard", "Jaccard"), ("precision", "Precision"), ("recall", "Recall"),
                 ("specificity", "Spec"), ("f_measure", "F"), ("s_measure", "S-alpha"), ("mae", "MAE")],
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pred", required=True, type=Path, metavar="DIR",
                        help="predictions: DIR/<video_id>/NNNN.png (8-bit masks or probability maps 0..255)")
    parser.add_argument("--gt", required=True, type=Path, metavar="DIR",
                        help="ground-truth masks: DIR/<video_id>/NNNN.png, 8-bit {0, 255} (e.g. ROOT/Test_GT)")
    parser.add_argument("--protocol", choices=("vtus", "vps", "official"), default="vtus",
                        help="vtus: Dice/Jaccard/Precision/Recall at p >= 0.5; vps: the polyp protocol; official: the "
                             "official Vivim code's validation scores (default: vtus)")
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="also write every number (per video, overall, settings; VPS curves) to this JSON file")
    parser.add_argument("--per-frame", action="store_true",
                        help="vtus: include each frame's scores in the JSON file")
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bar")


def format_table(result: dict) -> str:
    """Per-video rows and an overall row, one column per metric."""
    columns = COLUMNS[result["protocol"]]
    counts = [("frames", "frames")] + ([("frames_used", "used")] if result["protocol"] == "vps" else [])
    width = max([len("overall")] + [len(v) for v in result["videos"]]) + 2
    header = (f"{'video':{width}s}" + "".join(f"{title:>8s}" for _, title in counts)
              + "".join(f"{title:>11s}" for _, title in columns))
    lines = [header, "-" * len(header)]
    rows = list(result["videos"].items()) + [("overall", result["overall"])]
    for index, (name, scores) in enumerate(rows):
        if index == len(rows) - 1:
            lines.append("-" * len(header))
        lines.append(f"{name:{width}s}" + "".join(f"{scores[key]:>8d}" for key, _ in counts)
                     + "".join(f"{scores[key]:>11.4f}" for key, _ in columns))
    return "\n".join(lines)


def _is_our_json(path: Path) -> bool:
    """Whether `path` holds scores an earlier `evaluate --json` wrote (a JSON object with its keys)."""
    from ..checkpoint_header import loads_json
    from ..errors import VivimError
    from ..file_safety import open_regular

    try:
        with open_regular(path, "--json", max_bytes=256 * 2**20) as f:
            data = loads_json(f.read(), str(path), max_depth=64)
    except VivimError:
        return False
    return isinstance(data, dict) and {"protocol", "overall", "videos"} <= set(data)


def check_json_target(path: Path, pred: Path, gt: Path) -> None:
    """--json may be a new file or replace scores written before, never a file inside --gt or --pred (a mask,
    a frame) nor anything else that exists."""
    from ..file_safety import UnsafePathError, check_replaceable, is_within

    for option, folder in (("--gt", gt), ("--pred", pred)):
        if is_within(path, folder):
            raise UnsafePathError(f"--json {path}: lies inside {option} {folder}; write the scores outside the "
                                  f"mask folders, so that no mask is ever overwritten")
    check_replaceable(path, "--json", _is_our_json)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..metrics.evaluate import evaluate_folders

    if args.json:
        check_json_target(args.json, args.pred, args.gt)

    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if args.no_progress:
            return
        if bar is None:
            bar = tqdm(total=total, unit="frame", desc=f"evaluate ({args.protocol})", leave=False)
        bar.update(done - bar.n)

    try:
        result = evaluate_folders(args.pred, args.gt, protocol=args.protocol, progress=progress,
                                  per_frame=args.per_frame)
    finally:
        if bar is not None:
            bar.close()
    print(format_table(result))
    print(f"averaging: {result['averaging']}")
    if result["protocol"] == "vtus":
        print(f"binarised at {result['threshold']}; empty masks: {result['empty_mask_rule']}")
    for warning in result.get("warnings", []):
        print(f"warning: {warning}")
    if args.json:
        check_json_target(args.json, args.pred, args.gt)  # again: the folders could have changed meanwhile
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
