"""Studio proposal throughput at full resolution: the per-frame work around the model (upsampling the map to the
frame size, quantising, PNG-encoding, writing into the document and workspace), with a very small model so that
the model's own time is small. Prints frames/s; appends a JSON line with --out.

    python benchmarks/proposal_throughput.py [--frames 60] [--height 1080] [--width 1920] [--rounds 3]

To compare two trees, run it with each on PYTHONPATH (it uses only public APIs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import torch

import vivim_core
from vivim_core.data.synthetic import make_video
from vivim_studio.document import VideoDocument
from vivim_studio.services.inference import InferenceService


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames, _ = make_video("ultrasound", args.frames, args.height, args.width, seed=0)
        (tmp / "video").mkdir()
        for i, frame in enumerate(frames):
            cv2.imwrite(str(tmp / "video" / f"{i:05d}.png"), frame)
        torch.manual_seed(0)
        model = vivim_core.build_model("vivim-tiny", embed_dims=(8, 16, 32, 64), transformer_depths=(1, 1, 1, 1),
                                       temporal_depths=(1, 0, 0, 1), num_heads=(1, 1, 1, 1), decoder_dim=32)
        checkpoint = vivim_core.save_checkpoint(model, tmp / "tiny.safetensors")
        service = InferenceService(checkpoint, "cpu", size=(32, 32))
        service.load()
        rates = []
        for round_ in range(args.rounds):
            with VideoDocument.open(tmp / "video", tmp / f"ws{round_}") as doc:
                started = time.perf_counter()
                result = service.propose(doc)
                rates.append(result.total / (time.perf_counter() - started))
            print(f"round {round_}: {rates[-1]:.1f} frames/s ({result.total} frames {args.width}x{args.height})",
                  flush=True)
    summary = {"frames_per_s_median": statistics.median(rates), "rounds": rates, "frames": args.frames,
               "size": [args.height, args.width], "cpu_threads": torch.get_num_threads(), "torch": torch.__version__}
    print(json.dumps(summary))
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
