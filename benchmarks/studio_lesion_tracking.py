"""Lesion identities of the model's proposals: how consistently a nodule keeps its id through synthetic
multi-lesion clips whose true identities are known, and what splitting and matching cost per frame.

Identity (`--scenario-size`, default 480x360, 40 frames each): each clip draws its lesions (ellipses) with known
ids, turns them into a probability map (0.9 inside, low noise outside, a few specks) and writes it frame by frame
with `VideoDocument.set_proposal`, as the proposal job does. Per true lesion and frame it is present on, the id
the document gave it is the most common id under its pixels. Columns:

    pairs        (true lesion, frame) pairs measured
    consistent   share of pairs whose id is the id that lesion has most often in the clip (1.0: never changed)
    switches     id changes between consecutive frames of a true lesion, summed over lesions
    ids/lesion   distinct ids given to a true lesion, mean
    shared       pairs whose id another true lesion also has on that frame (two lesions seen as one)

Scenarios: steady (two nodules drifting), fast (two lesions moving half their diameter per frame), jump (1.1
diameters per frame, so consecutive masks never overlap, then still; jump-clean: the same without specks),
dropout (the model misses one lesion for 5 frames), approach (two lesions
pass within a few pixels of each other), touch (two lesions touch for 4 frames, one component, then part),
appear (a third lesion enters at frame 20), fragments (broken rims and specks around two lesions).

Cost (`--size`, default 1920x1080, `--frames` maps), per frame, medians:

    prepare      quantise + PNG-encode the map + confidence (the pool's work before lesions existed)
    split        `lesion_tracking.split_regions` (added to the pool's work)
    write        `VideoDocument.set_proposal` of the prepared map: id matching, label-map encoding, the
                 workspace save (not fsynced, as in the proposal job)
    match        of which the id matching (`_lesion_ids_for`)
    flow         DIS optical flow between the frames (640 px wide) + carrying the label map along it (not used
                 for the ids; what it would add)

    python benchmarks/studio_lesion_tracking.py [--frames 60] [--size 1920x1080] [--tag cpu_2core]

Results: tables on stdout and JSON under benchmarks/results/studio_lesion_tracking_<tag>.json with the machine,
date and command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vivim_studio.document import VideoDocument, codec, flow, lesion_tracking  # noqa: E402

SCENARIO_FRAMES = 40
MODEL = "0" * 64


# --- synthetic clips with known identities ---------------------------------------------------------------
def _draw(labels: np.ndarray, lesion: int, centre, axes, angle: float = 0.0) -> None:
    cv2.ellipse(labels, (int(round(centre[0])), int(round(centre[1]))), (int(axes[0]), int(axes[1])), angle, 0, 360,
                int(lesion), -1)


def scenario(name: str, t: int, height: int, width: int) -> np.ndarray:
    """True label map uint8 (H, W) of scenario `name` at frame t (lesion ids 1..3, 0 background)."""
    labels = np.zeros((height, width), np.uint8)
    s = height / 360  # shapes scale with the frame
    if name == "steady":
        _draw(labels, 1, (width * 0.25 + t * s, height * 0.3 + 2 * t * s), (40 * s, 28 * s + 3 * np.sin(t / 3)), 10)
        _draw(labels, 2, (width * 0.75 - t * s, height * 0.7 - 2 * t * s), (30 * s, 22 * s), -20)
    elif name == "fast":  # half a diameter per frame
        x = width * 0.08 + 10 * t * s
        _draw(labels, 1, (x, height * 0.3), (10 * s, 8 * s))
        _draw(labels, 2, (x, height * 0.7), (10 * s, 8 * s))
    elif name in ("jump", "jump-clean"):  # 1.1 diameters per frame for 30 frames (consecutive masks never overlap), then still
        x = width * 0.04 + 13 * min(t, 30) * s
        _draw(labels, 1, (x, height * 0.3), (6 * s, 5 * s))
        _draw(labels, 2, (x, height * 0.7), (6 * s, 5 * s))
    elif name == "dropout":
        _draw(labels, 1, (width * 0.3 + t * s, height * 0.5), (35 * s, 25 * s))
        if not 15 <= t < 20:
            _draw(labels, 2, (width * 0.7 - t * s, height * 0.5 + t * s), (30 * s, 20 * s))
    elif name == "approach":  # closest at t = 20: 4 px apart, never touching
        gap = 4 + abs(t - 20) * 5 * s
        _draw(labels, 1, (width / 2 - 30 * s - gap / 2, height / 2), (30 * s, 20 * s))
        _draw(labels, 2, (width / 2 + 30 * s + gap / 2, height / 2 + 0.5 * t), (30 * s, 20 * s))
    elif name == "touch":  # overlapping for t in 18..21: one component in the proposal
        gap = -4 * s if 18 <= t < 22 else 4 + abs(t - 19.5) * 4 * s
        _draw(labels, 2, (width / 2 + 30 * s + gap / 2, height / 2), (30 * s, 20 * s))
        _draw(labels, 1, (width / 2 - 30 * s - gap / 2, height / 2), (30 * s, 20 * s))
    elif name == "appear":
        _draw(labels, 1, (width * 0.25, height * 0.3 + t * s), (30 * s, 22 * s))
        _draw(labels, 2, (width * 0.75, height * 0.3 + t * s), (26 * s, 20 * s))
        if t >= 20:
            _draw(labels, 3, (width * 0.5, height * 0.8 - (t - 20) * s), (20 * s, 14 * s))
    elif name == "fragments":
        _draw(labels, 1, (width * 0.3 + t * s, height * 0.45), (40 * s, 30 * s))
        _draw(labels, 2, (width * 0.7, height * 0.55 - t * s), (34 * s, 26 * s))
    else:
        raise ValueError(name)
    return labels


SCENARIOS = ("steady", "fast", "jump", "jump-clean", "dropout", "approach", "touch", "appear", "fragments")


def probability_of(truth: np.ndarray, name: str, rng: np.random.Generator) -> np.ndarray:
    """A model-like float32 (H, W) map of the true lesions: high inside, noise outside, specks; broken rims
    (pieces of a lesion cut off from it) in the 'fragments' scenario."""
    p = rng.uniform(0.0, 0.3, truth.shape).astype(np.float32)
    p[truth > 0] = 0.9
    height, width = truth.shape
    for _ in range(0 if name.endswith("-clean") else 4):  # specks: smaller than a lesion, join the nearest one
        y, x = rng.integers(0, height - 4), rng.integers(0, width - 4)
        p[y:y + 3, x:x + 3] = 0.7
    if name == "fragments":  # a gap cut through each lesion's edge leaves a crescent apart from it
        for k in (1, 2):
            ys, xs = np.nonzero(truth == k)
            if len(xs):
                cut = int(np.percentile(xs, 80))
                p[ys.min():ys.max() + 1, cut:cut + 2] = 0.1
    return p


def identity_scores(truth: list[np.ndarray], given: list[np.ndarray]) -> dict:
    """Scores of the ids `given` (label maps from the document) against `truth` (true label maps)."""
    per_lesion: dict[int, list[tuple[int, int]]] = {}
    shared = pairs = 0
    for t, (true, ids) in enumerate(zip(truth, given)):
        frame_ids = {}
        for k in np.unique(true[true > 0]):
            under = ids[true == k]
            under = under[under > 0]
            got = int(Counter(under.tolist()).most_common(1)[0][0]) if len(under) else 0
            frame_ids[int(k)] = got
            per_lesion.setdefault(int(k), []).append((t, got))
        counts = Counter(v for v in frame_ids.values() if v)
        shared += sum(1 for v in frame_ids.values() if v and counts[v] > 1)
        pairs += len(frame_ids)
    consistent = switches = 0
    distinct = []
    for track in per_lesion.values():
        ids = [got for _, got in track]
        usual = Counter(ids).most_common(1)[0][0]
        consistent += sum(1 for got in ids if got == usual)
        switches += sum(1 for a, b in zip(ids, ids[1:]) if a != b)
        distinct.append(len(set(ids)))
    return {"pairs": pairs, "consistent": round(consistent / max(pairs, 1), 4), "switches": switches,
            "ids_per_lesion": round(float(np.mean(distinct)), 2), "shared": shared}


def run_scenario(name: str, height: int, width: int, frames: int, tmp: Path) -> dict:
    rng = np.random.default_rng(7)
    truth = [scenario(name, t, height, width) for t in range(frames)]
    folder = tmp / name
    folder.mkdir()
    for t in range(frames):  # frames are not read for proposals: blank stand-ins of the right size
        cv2.imwrite(str(folder / f"{t + 1:05d}.png"), np.zeros((height, width), np.uint8))
    with VideoDocument.open(folder, tmp / f"{name}.vivim") as doc:
        for t in range(frames):
            doc.set_proposal(t, probability_of(truth[t], name, rng), model=MODEL, durable=False)
        doc.sync()
        given = [doc.labels(t).copy() for t in range(frames)]
    return {"scenario": name, **identity_scores(truth, given)}


# --- cost per frame -------------------------------------------------------------------------------------
def cost_map(t: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    p = np.full((height, width), 0.05, np.float32)
    a, b = height // 12, height // 8
    cv2.ellipse(p, (width // 4 + 3 * t, height // 3 + t), (b, a), 10, 0, 360, 0.9, -1)
    cv2.ellipse(p, (3 * width // 4 - 3 * t, 2 * height // 3 - t), (b, a), -20, 0, 360, 0.85, -1)
    for _ in range(4):
        y, x = rng.integers(0, height - 4), rng.integers(0, width - 4)
        p[y:y + 3, x:x + 3] = 0.7
    return p


def frames_like(height: int, width: int, count: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 200, (height, width), dtype=np.uint8), (0, 0), 3)
    return np.stack([np.dstack([np.roll(base, 3 * t, axis=1)] * 3) for t in range(count)])


def median_ms(values: list[float]) -> float:
    return round(1000 * statistics.median(values), 2)


def measure_cost(height: int, width: int, count: int, tmp: Path) -> dict:
    rng = np.random.default_rng(1)
    maps = [cost_map(t, height, width, rng) for t in range(count)]
    timings: dict[str, list[float]] = {k: [] for k in ("prepare", "split", "write", "match", "flow")}
    folder = tmp / "cost"
    folder.mkdir()
    for t in range(count):
        cv2.imwrite(str(folder / f"{t + 1:05d}.png"), np.zeros((height, width), np.uint8))
    with VideoDocument.open(folder, tmp / "cost.vivim") as doc:
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
            codec.encode_probability(q)
            codec.proposal_confidence(q)
            timings["prepare"].append(time.perf_counter() - started)
            started = time.perf_counter()
            lesion_tracking.split_regions(p >= doc.proposal_threshold)
            timings["split"].append(time.perf_counter() - started)
            prepared = doc.prepare_proposal(p)
            started = time.perf_counter()
            doc.set_proposal(t, prepared, model=MODEL, durable=False)
            timings["write"].append(time.perf_counter() - started)
        doc.sync()
        labels = doc.labels(1).copy()
    frames = frames_like(height, width, 2)
    for _ in range(5):
        started = time.perf_counter()
        flow.warp_labels(labels, flow.backward_flow(frames[0], frames[1]))
        timings["flow"].append(time.perf_counter() - started)
    return {name: median_ms(values) for name, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=60, help="maps of the cost measurement")
    parser.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT of the cost measurement")
    parser.add_argument("--scenario-size", default="480x360", help="WIDTHxHEIGHT of the identity scenarios")
    parser.add_argument("--tag", default=platform.node() or "machine")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    s_width, s_height = (int(v) for v in args.scenario_size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        scenarios = [run_scenario(name, s_height, s_width, SCENARIO_FRAMES, Path(tmp)) for name in SCENARIOS]
        cost = measure_cost(height, width, args.frames, Path(tmp))
    print(f"identity, {SCENARIO_FRAMES} frames {s_width}x{s_height} per scenario")
    print(f"{'scenario':<12}{'pairs':>7}{'consistent':>12}{'switches':>10}{'ids/lesion':>12}{'shared':>8}")
    for row in scenarios:
        print(f"{row['scenario']:<12}{row['pairs']:>7}{row['consistent']:>12.3f}{row['switches']:>10}"
              f"{row['ids_per_lesion']:>12.2f}{row['shared']:>8}")
    print(f"\ncost per frame (median), {args.frames} maps {width}x{height}")
    for name, value in cost.items():
        print(f"{name:<24}{value:>8.2f} ms")
    result = {"benchmark": "studio_lesion_tracking", "scenarios": scenarios, "scenario_frames": SCENARIO_FRAMES,
              "scenario_size": [s_height, s_width], "cost_ms": cost, "cost_frames": args.frames,
              "cost_size": [height, width],
              "machine": f"{platform.machine()} ({platform.node()}), {os.cpu_count()} cores",
              "python": platform.python_version(), "date": dt.date.today().isoformat(),
              "command": "python benchmarks/studio_lesion_tracking.py " + " ".join(sys.argv[1:])}
    out = ROOT / "benchmarks" / "results" / f"studio_lesion_tracking_{args.tag}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
