"""Predict a lesion mask for every frame of one or more videos with a trained checkpoint.

INPUT is a video file (.mp4, .avi, ...), a folder of frames, or a folder of videos (e.g. a VTUS split folder
ROOT/Test holding one frame folder per video, or a folder of video files). Masks are written as
DIR/<video_id>/<frame>.png, 8-bit {0, 255}; <frame> is the frame file's own name for frame folders and the
1-based, 4-digit frame number (0001, 0002, ...) for video files. DIR/predictions.json records the checkpoint
(path, SHA-256), the settings and the videos.

DIR must be a new or empty folder, or one an earlier `predict` wrote (it holds .vivim-predict or
predictions.json), and apart from INPUT and CKPT: a folder of other files (e.g. ROOT/Test_GT) is refused, so
that no expert mask is ever overwritten. Names that are not safe file names on every system are made safe
(characters such as : \\ * ? become _); two inputs that would share an output name are refused.

Each video is cut into clips of --clip-length frames sharing --overlap frames; frames covered twice get the
weighted mean of their probabilities. Frames are resized to --size for the model and the probability map
back to the frame's own size. Videos of any length stream through in bounded memory. --protocol official
predicts each frame as the centre of its own clip instead, as the official Vivim code does (see import-official).

examples:
  vivim-core predict --checkpoint runs/tiny/best.safetensors data/vtus/Test --out runs/tiny/pred
  vivim-core evaluate --pred runs/tiny/pred --gt data/vtus/Test_GT
  vivim-core predict --checkpoint model.safetensors scan.mp4 --out pred --save-prob     # probability maps
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import parse_size

HELP = "predict masks for video files, frame folders or VTUS split folders"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, metavar="INPUT", help="a video file, a folder of frames, or a folder of "
                                                                  "videos / frame folders (e.g. ROOT/Test)")
    parser.add_argument("--checkpoint", required=True, type=Path, metavar="CKPT",
                        help="Vivim checkpoint (.safetensors)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder: DIR/<video_id>/*.png")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="probability at or above which a pixel is lesion (default: 0.5)")
    parser.add_argument("--save-prob", action="store_true",
                        help="write 8-bit probability maps (round(255 p)) instead of {0, 255} masks (for the VPS "
                             "protocol of `vivim-core evaluate`, which thresholds itself)")
    parser.add_argument("--prob-out", type=Path, metavar="DIR2",
                        help="also write the probability maps to DIR2/<video_id>/*.png, beside the masks in --out")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto = the GPU when PyTorch sees one (default: auto)")
    parser.add_argument("--size", type=parse_size, metavar="HxW",
                        help="model input size, multiples of 32 (default: the checkpoint's training size, else 256)")
    parser.add_argument("--clip-length", type=int, metavar="T",
                        help="frames per clip (default: the checkpoint's training clip length, else 5)")
    parser.add_argument("--overlap", type=int, metavar="K",
                        help="frames shared by consecutive clips, 0 <= K < T (default: T // 2, i.e. 2 for T = 5)")
    parser.add_argument("--batch-size", type=int, default=4, metavar="N", help="clips per forward pass (default: 4)")
    parser.add_argument("--protocol", choices=("vivim", "official"), default="vivim",
                        help="vivim: overlapping clips, blended; official: the official code's inference, each frame "
                             "the centre of its own clip (edge frames repeat), about T times slower (default: vivim)")
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bar")


MARKER = ".vivim-predict"  # written first into an output folder: marks it as ours, for later runs


def run(args: argparse.Namespace) -> int:
    import json

    import numpy as np
    from tqdm import tqdm

    from ..data.layouts import find_prediction_inputs
    from ..engine.checkpoint import checkpoint_sha256, load_model, read_checkpoint_info
    from ..engine.distributed import resolve_device
    from ..engine.predict import iter_predict, settings_for_checkpoint
    from ..errors import VivimError
    from ..file_safety import check_output_apart, check_output_folder, check_outputs_separate, confined

    if not 0 <= args.threshold <= 1:
        raise VivimError(f"--threshold {args.threshold}: give a probability between 0 and 1")
    inputs = find_prediction_inputs(args.input)  # fails early, before the model loads
    outputs = {"--out": args.out, "--prob-out": args.prob_out}
    check_outputs_separate(outputs)
    for option, folder in outputs.items():
        if folder is not None:
            check_output_apart(folder, [args.input, args.checkpoint], option)
            check_output_folder(folder, option, ours=(MARKER, "predictions.json"))
    device = resolve_device(args.device)
    settings = settings_for_checkpoint(read_checkpoint_info(args.checkpoint)["provenance"], args.size,
                                       args.clip_length, args.overlap)
    size, clip_length, overlap = settings["size"], settings["clip_length"], settings["overlap"]
    model = load_model(args.checkpoint, device=device)
    for folder in (args.out, args.prob_out):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            confined(folder, MARKER).write_text(json.dumps({"written_by": "vivim-core predict"}) + "\n")
    written = {}
    for number, video in enumerate(inputs, start=1):
        names = video.frame_names
        bar = None if args.no_progress else tqdm(total=video.num_frames, unit="frame", leave=False,
                                                 desc=f"[{number}/{len(inputs)}] {video.video_id}")
        frames = _SizedFrames(video)
        try:
            for index, prob in iter_predict(model, frames, clip_length=clip_length, overlap=overlap,
                                            size=size, batch_size=args.batch_size, device=device,
                                            protocol=args.protocol,
                                            progress=(lambda done, total: bar.update(done - bar.n)) if bar else None):
                probability = np.rint(prob * 255).astype(np.uint8)
                mask = np.where(prob >= args.threshold, 255, 0).astype(np.uint8)
                _write_png(confined(args.out, video.video_id, f"{names[index]}.png"),
                           probability if args.save_prob else mask)
                if args.prob_out:
                    _write_png(confined(args.prob_out, video.video_id, f"{names[index]}.png"), probability)
        finally:
            if bar is not None:
                bar.close()
        written[video.video_id] = {"source": str(video.source), "frames": video.num_frames}
        print(f"{video.video_id}: {video.num_frames} frames -> {args.out / video.video_id}")
        if video.unread_warning:
            written[video.video_id]["warning"] = video.unread_warning
            print(f"warning: {video.unread_warning}")
    manifest = {"checkpoint": str(args.checkpoint.resolve()), "checkpoint_sha256": checkpoint_sha256(args.checkpoint),
                "output": "probability maps (round(255 p))" if args.save_prob else f"masks {{0, 255}}, p >= "
                          f"{args.threshold}", "size": list(size), "clip_length": clip_length,
                "overlap": overlap if args.protocol == "vivim" else None, "protocol": args.protocol,
                "device": str(device), "videos": written}
    confined(args.out, "predictions.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


class _SizedFrames:
    """A PredictionInput as a sized iterable of frames (decoded lazily, once)."""

    def __init__(self, video):
        self.video = video

    def __len__(self) -> int:
        return self.video.num_frames

    def __iter__(self):
        return self.video.frames()


def _write_png(path: Path, image) -> None:
    """Write `image` as PNG at `path` (already confined to the output folder)."""
    import cv2

    from ..data.readers import DataError

    path.parent.mkdir(exist_ok=True)
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise DataError(f"{path}: could not encode the PNG")
    data.tofile(path)
