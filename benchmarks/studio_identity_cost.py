"""Cost of the Studio's source identity (`SourceIdentity`, version 2: SHA-256 of the whole content) against
the previous sampled identity (version 1: 3 x 64 KB), on frame folders and a video file.

Every open of a workspace computes the identity once. The figure that matters is the time for a folder of
1,000 frames (and 10,000, the long-video case); the files are read from the page cache (warm: the run reads
each folder once before timing), so a cold read adds the disk's time for the bytes shown.

    python benchmarks/studio_identity_cost.py                        # 1,000 and 10,000 frames of 256x256 JPEG
    python benchmarks/studio_identity_cost.py --frames 1000 --size 1920x1080 --suffix .png

Results: a table on stdout and JSON under benchmarks/results/ with machine, date and command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vivim_studio.document.sources import FrameFolderSource, VideoFileSource  # noqa: E402


def write_frames(folder: Path, count: int, width: int, height: int, suffix: str) -> int:
    """`count` textured frames (speckle-like noise over a gradient: sizes like real ultrasound frames)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    base = np.tile(np.linspace(20, 150, width, dtype=np.float32), (height, 1))
    speckle = rng.gamma(2.0, 12.0, (height, width)).astype(np.float32)
    total = 0
    for i in range(count):
        image = np.clip(base + np.roll(speckle, i, axis=1), 0, 255).astype(np.uint8)
        path = folder / f"{i + 1:05d}{suffix}"
        cv2.imwrite(str(path), image)
        total += path.stat().st_size
    return total


def write_noise_video(path: Path, frames: int, width: int, height: int) -> None:
    """An MJPG AVI of noise frames (large, and quick to write)."""
    rng = np.random.default_rng(1)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (width, height))
    noise = rng.integers(0, 256, (8, height, width, 3), dtype=np.uint8)
    for i in range(frames):
        writer.write(noise[i % 8])
    writer.release()


def time_identity(make_source, repeats: int) -> tuple[float, float]:
    """Median seconds of (identity version 2, legacy version 1), each on a fresh source object."""
    new, old = [], []
    for _ in range(repeats):
        with make_source() as source:
            start = time.perf_counter()
            source.identity
            new.append(time.perf_counter() - start)
            start = time.perf_counter()
            source.legacy_digest()
            old.append(time.perf_counter() - start)
    return float(np.median(new)), float(np.median(old))


def warm(paths) -> None:
    for path in paths:
        path.read_bytes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--size", default="256x256", help="WxH of the frames (default: the VTUS sample's)")
    parser.add_argument("--suffix", default=".jpg", choices=(".jpg", ".png", ".bmp"))
    parser.add_argument("--video-mb", type=int, default=200, help="size of the video file timed (0: none)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="where to write the inputs (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "studio_identity_cost.json")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    workdir = Path(tempfile.mkdtemp(prefix="identity-", dir=args.workdir))
    rows = []
    try:
        for count in args.frames:
            folder = workdir / f"frames-{count}"
            total = write_frames(folder, count, width, height, args.suffix)
            warm(sorted(folder.iterdir()))
            new, old = time_identity(lambda: FrameFolderSource(folder, load_ground_truth=False), args.repeats)
            rows.append({"input": f"{count} frames {width}x{height} {args.suffix}", "bytes": total,
                         "identity_v2_s": new, "identity_v1_s": old, "v2_mb_per_s": total / 2**20 / new})
            shutil.rmtree(folder)
        if args.video_mb:
            video = workdir / "clip.avi"
            write_noise_video(video, 20, width, height)  # a probe: bytes per frame
            write_noise_video(video, int(args.video_mb * 2**20 * 20 / video.stat().st_size) + 1, width, height)
            warm([video])
            new, old = time_identity(lambda: VideoFileSource(video), args.repeats)
            size = video.stat().st_size
            rows.append({"input": f"video file (MJPG AVI) {size / 2**20:.0f} MB", "bytes": size,
                         "identity_v2_s": new, "identity_v1_s": old, "v2_mb_per_s": size / 2**20 / new})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{'input':<34} {'MB':>8} {'v2 (whole) s':>13} {'v1 (sampled) s':>15} {'v2 MB/s':>9}")
    for row in rows:
        print(f"{row['input']:<34} {row['bytes'] / 2**20:>8.1f} {row['identity_v2_s']:>13.3f} "
              f"{row['identity_v1_s']:>15.4f} {row['v2_mb_per_s']:>9.0f}")
    report = {"benchmark": "studio_identity_cost", "date": dt.date.today().isoformat(),
              "machine": f"{platform.node()} ({platform.processor() or platform.machine()}), "
                         f"{__import__('os').cpu_count()} cores", "python": platform.python_version(),
              "command": "python " + " ".join(sys.argv), "page_cache": "warm", "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
