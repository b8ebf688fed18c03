"""Cost of splitting the model's proposals into lesions and keeping their ids, at full resolution, beside the rest
of a proposal's per-frame work, and what optical flow (not used for the ids) would add.

Synthetic probability maps: two nodules (ellipses about a sixth of the frame high) drifting towards each other,
with a few specks (small components that join the nearest lesion). Per frame, medians:

    prepare      quantise + PNG-encode the map + confidence (the pool's work before lesions existed)
    split        `lesion_tracking.split_regions` (added to the pool's work)
    write        `VideoDocument.set_proposal` of the prepared map: id matching, label-map encoding, the
                 workspace save (not fsynced, as in the proposal job): the proposal writer's work per frame
    match        of which the id matching (`_lesion_ids_for`)
    flow         DIS optical flow between the frames (640 px wide) + carrying the label map along it

Also counts id switches over the clip (a lesion whose id changes between frames; 0 expected).

    python benchmarks/studio_lesion_tracking.py [--frames 60] [--size 1920x1080] [--tag cpu_2core]

Results: a table on stdout and JSON under benchmarks/results/studio_lesion_tracking_<tag>.json with the machine,
date and command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vivim_studio.document import VideoDocument, codec, flow, lesion_tracking  # noqa: E402


def probability_map(t: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    p = np.full((height, width), 0.05, np.float32)
    a, b = height // 12, height // 8
    cv2.ellipse(p, (width // 4 + 3 * t, height // 3 + t), (b, a), 10, 0, 360, 0.9, -1)
    cv2.ellipse(p, (3 * width // 4 - 3 * t, 2 * height // 3 - t), (b, a), -20, 0, 360, 0.85, -1)
    for _ in range(4):  # specks
        y, x = rng.integers(0, height - 4), rng.integers(0, width - 4)
        p[y:y + 3, x:x + 3] = 0.7
    return p


def frames_like(height: int, width: int, count: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 200, (height, width), dtype=np.uint8), (0, 0), 3)
    return np.stack([np.dstack([np.roll(base, 3 * t, axis=1)] * 3) for t in range(count)])


def median_ms(values: list[float]) -> float:
    return round(1000 * statistics.median(values), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT")
    parser.add_argument("--tag", default=platform.node() or "machine")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(1)
    maps = [probability_map(t, height, width, rng) for t in range(args.frames)]
    frames = frames_like(height, width, 2)
    timings: dict[str, list[float]] = {k: [] for k in ("prepare", "split", "write", "match", "flow")}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "video"
        folder.mkdir()
        for t in range(args.frames):  # frames are not read: tiny stand-ins of the right size
            cv2.imwrite(str(folder / f"{t + 1:05d}.png"), np.zeros((height, width), np.uint8))
        with VideoDocument.open(folder, Path(tmp) / "ws") as doc:
            original = doc._lesion_ids_for

            def timed_ids(index, regions):
                started = time.perf_counter()
                ids = original(index, regions)
                timings["match"].append(time.perf_counter() - started)
                return ids
            doc._lesion_ids_for = timed_ids
            for t, p in enumerate(maps):
                started = time.perf_counter()
                q = codec.quantize_probability(p)
                encoded = codec.encode_probability(q)
                codec.proposal_confidence(q)
                timings["prepare"].append(time.perf_counter() - started)
                started = time.perf_counter()
                lesion_tracking.split_regions(p >= doc.proposal_threshold)
                timings["split"].append(time.perf_counter() - started)
                prepared = doc.prepare_proposal(p)
                del encoded
                started = time.perf_counter()
                doc.set_proposal(t, prepared, model="0" * 64, durable=False)
                timings["write"].append(time.perf_counter() - started)
            doc.sync()
            switches = 0
            for t in range(1, args.frames):
                before = {x.id: x.centroid for x in doc.record(t - 1).lesions}
                for lesion in doc.record(t).lesions:
                    nearest = min(before, key=lambda k: np.hypot(*np.subtract(before[k], lesion.centroid)))
                    switches += int(nearest != lesion.id)
            ids = doc.lesion_ids()
            labels = doc.labels(1).copy()
    for _ in range(5):
        started = time.perf_counter()
        flow.warp_labels(labels, flow.backward_flow(frames[0], frames[1]))
        timings["flow"].append(time.perf_counter() - started)
    result = {name: median_ms(values) for name, values in timings.items()}
    result.update(id_switches=switches, lesion_ids=ids, frames=args.frames, size=[height, width],
                  machine=f"{platform.machine()} {platform.processor() or ''} ({platform.node()})".strip(),
                  cpus=__import__("os").cpu_count(), date=dt.date.today().isoformat(),
                  command="python benchmarks/studio_lesion_tracking.py " + " ".join(sys.argv[1:]))
    print(f"{'per frame (median)':<24}{'ms':>8}")
    for name in ("prepare", "split", "write", "match", "flow"):
        print(f"{name:<24}{result[name]:>8.2f}")
    print(f"id switches {switches} over {args.frames} frames; lesion ids {ids}")
    out = ROOT / "benchmarks" / "results" / f"studio_lesion_tracking_{args.tag}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
