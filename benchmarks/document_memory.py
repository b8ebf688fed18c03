"""Resident memory of the Studio document model on a long video (the GUI's targets: benchmarks/gui_speed.py).

Writes a synthetic video (default 10,000 frames of 1920x1080, MPEG-4 part 2), opens it as a document with a
workspace, steps through every frame (decoding it, as scrubbing does) while drawing a mask on each frame
(a human edit, saved durably) and a model proposal every `--proposal-every` frames, then closes and reopens
the workspace. Reports resident memory (RSS) at each phase and its peak, and timings.

    python benchmarks/document_memory.py                                   # the full figure (minutes)
    python benchmarks/document_memory.py --frames 500 --size 640x480       # quick look

Results: JSON under benchmarks/results/ with machine, date and command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import psutil

MB = 2**20


def write_video(path: Path, frames: int, width: int, height: int, fps: float) -> None:
    """A bright disk moving over a textured gradient (cheap to generate, realistic to decode)."""
    rng = np.random.default_rng(0)
    base = np.tile(np.linspace(30, 160, width, dtype=np.float32), (height, 1))
    base += cv2.resize(rng.normal(0, 12, (height // 8, width // 8)).astype(np.float32), (width, height))
    base = np.clip(base, 0, 255).astype(np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for t in range(frames):
        image = base.copy()
        cv2.circle(image, lesion_centre(t, width, height), height // 8, 220, -1)
        writer.write(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    writer.release()


def lesion_centre(t: int, width: int, height: int) -> tuple[int, int]:
    return int(width / 2 + width / 4 * np.sin(t / 50)), int(height / 2 + height / 6 * np.cos(t / 70))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--size", default="1920x1080", help="WxH")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--cache-mb", type=int, default=256, help="decoded-frame cache budget")
    parser.add_argument("--mask-every", type=int, default=1, help="draw a mask on every Nth frame (0: none)")
    parser.add_argument("--proposal-every", type=int, default=50, help="store a model proposal every Nth frame")
    parser.add_argument("--workdir", type=Path, help="where to write the video (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results") / "document_memory.json")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    from vivim_studio.document import VideoDocument

    process = psutil.Process()
    rss = lambda: process.memory_info().rss / MB  # noqa: E731
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vivim-memory-"))
    workdir.mkdir(parents=True, exist_ok=True)
    video = workdir / "long.mp4"
    results: dict = {"rss_after_imports_mb": rss()}
    started = time.perf_counter()
    write_video(video, args.frames, width, height, args.fps)
    results["write_video_s"] = time.perf_counter() - started
    results["rss_after_writing_video_mb"] = rss()

    started = time.perf_counter()
    doc = VideoDocument.open(video, workdir / "long.vivim", cache_bytes=args.cache_mb * MB)
    results["open_s"] = time.perf_counter() - started
    results["rss_after_open_mb"] = rss()
    peak, mask = rss(), np.zeros((height, width), np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    started = time.perf_counter()
    for t in range(doc.num_frames):
        doc.current_frame = t
        doc.frame(t)  # decode, as scrubbing does
        if args.mask_every and t % args.mask_every == 0:
            mask[:] = 0
            cv2.circle(mask, lesion_centre(t, width, height), height // 8, 1, -1)
            doc.set_mask(t, mask > 0)
        if args.proposal_every and t % args.proposal_every == 0:
            cx, cy = lesion_centre(t, width, height)
            logit = np.clip((height / 8 - np.hypot(xx - cx, yy - cy)) / 6, -30, 30)
            probability = (1 / (1 + np.exp(-logit))).astype(np.float32)
            doc.set_proposal(t, probability, model="0" * 64, overwrite_reviewed=True, durable=False)
        if t % 50 == 0:
            peak = max(peak, rss())
    results["step_through_s"] = time.perf_counter() - started
    results["rss_after_step_through_mb"] = rss()
    results["rss_peak_mb"] = max(peak, rss())
    results["mask_store_bytes_mb"] = doc.masks.memory_bytes() / MB
    results["frame_cache_mb"] = doc.source.cache.nbytes / MB
    results["undo_history_mb"] = doc.history.nbytes / MB
    rng = np.random.default_rng(1)
    started = time.perf_counter()
    for t in rng.integers(0, doc.num_frames, 100):
        doc.source.cache.clear()
        doc.frame(int(t))
    results["random_access_ms_per_frame"] = (time.perf_counter() - started) * 1000 / 100
    doc.close()
    started = time.perf_counter()
    doc = VideoDocument.open(video, workdir / "long.vivim", cache_bytes=args.cache_mb * MB)
    results["reopen_s"] = time.perf_counter() - started
    results["rss_after_reopen_mb"] = rss()
    doc.close()
    results["workspace_mb_on_disk"] = sum(p.stat().st_size for p in (workdir / "long.vivim").rglob("*")
                                          if p.is_file()) / MB
    results["video_mb_on_disk"] = video.stat().st_size / MB
    results["all_frames_decoded_would_be_mb"] = args.frames * width * height * 3 / MB

    record = {
        "benchmark": "document_memory",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"host": platform.node(), "platform": platform.platform(), "cpu": platform.processor(),
                    "cpu_count": os.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
                    "python": platform.python_version(), "opencv": cv2.__version__},
        "config": {"frames": args.frames, "size": [height, width], "cache_mb": args.cache_mb,
                   "mask_every": args.mask_every, "proposal_every": args.proposal_every},
        "results": {k: round(v, 3) for k, v in results.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record["results"], indent=1))
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
