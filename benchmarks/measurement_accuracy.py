"""Accuracy of the lesion measurements (`vivim_studio.document.measurements`) against continuous shapes.

Random ellipses and rectangles, at random angles and sub-pixel centres, are rasterized (a pixel belongs to the
shape when its centre does) and measured; each long axis, short axis and area is compared with the continuous
shape's: ellipse 2a, 2b, pi a b; w x h rectangle hypot(w, h), h hypot(w, h) / w (the longest chord
perpendicular to the diagonal joins the long sides), w h. Reports the error distribution and how many
measurements fall outside 2 % and one pixel (the bound the tests hold the report to), and the time per
measurement.

    python benchmarks/measurement_accuracy.py                      # 2,000 shapes of each kind
    python benchmarks/measurement_accuracy.py --shapes 200         # quick look

Results: JSON under benchmarks/results/ with machine, date and command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vivim_studio.document.measurements import measure_lesion  # noqa: E402


def rotated(shape: tuple[int, int], centre, angle: float):
    y, x = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    theta = np.deg2rad(angle)
    dx, dy = x - centre[0], y - centre[1]
    return dx * np.cos(theta) + dy * np.sin(theta), -dx * np.sin(theta) + dy * np.cos(theta)


def shapes(kind: str, count: int, rng: np.random.Generator, min_aspect: float):
    """(mask, (long, short, area)) of `count` random shapes of `kind`."""
    for _ in range(count):
        angle, size = rng.uniform(0, 180), 260
        centre = (size / 2 + rng.uniform(-0.5, 0.5), size / 2 + rng.uniform(-0.5, 0.5))
        u, v = rotated((size, size), centre, angle)
        if kind == "ellipse":
            a = rng.uniform(3, 120)
            b = rng.uniform(min(1.5, a), a)
            yield (u / a) ** 2 + (v / b) ** 2 <= 1, (2 * a, 2 * b, np.pi * a * b)
        else:
            w = rng.uniform(10, 180)
            h = rng.uniform(min(5.0, w / min_aspect), w / min_aspect)
            diagonal = float(np.hypot(w, h))
            yield (np.abs(u) <= w / 2) & (np.abs(v) <= h / 2), (diagonal, h * diagonal / w, w * h)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", type=int, default=2000, help="shapes of each kind (default 2000)")
    parser.add_argument("--min-aspect", type=float, default=1.5,
                        help="rectangles at least this elongated (near-squares: the short axis ends in corners, "
                             "which the pixels round off; default 1.5)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "measurement_accuracy.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    results, rows = {}, []
    for kind in ("ellipse", "rectangle"):
        errors = {"long_axis": [], "short_axis": [], "area": []}
        outside = {name: 0 for name in errors}
        seconds = 0.0
        for mask, truth in shapes(kind, args.shapes, rng, args.min_aspect):
            start = time.perf_counter()
            m = measure_lesion(mask)
            seconds += time.perf_counter() - start
            for name, measured, true in (("long_axis", m.long_axis.length, truth[0]),
                                         ("short_axis", m.short_axis.length, truth[1]),
                                         ("area", m.area_px, truth[2])):
                error = float(measured - true)
                errors[name].append(error)
                pixel = 1.0 if name != "area" else (truth[0] + truth[1])  # area: one pixel around the outline
                outside[name] += abs(error) > max(0.02 * true, pixel)
        results[kind] = {name: {"mean_px": float(np.mean(e)), "p95_abs_px": float(np.percentile(np.abs(e), 95)),
                                "max_abs_px": float(np.max(np.abs(e))), "outside_2pct_or_1px": outside[name]}
                         for name, e in errors.items()}
        results[kind]["ms_per_measurement"] = 1000 * seconds / args.shapes
        for name in errors:
            r = results[kind][name]
            rows.append(f"{kind:9s} {name:10s} {r['mean_px']:+8.3f} {r['p95_abs_px']:8.3f} {r['max_abs_px']:8.3f} "
                        f"{r['outside_2pct_or_1px']:6d}/{args.shapes}")
    print("shape     quantity    mean(px)  p95|e|   max|e|  outside 2 % and 1 px")
    print("\n".join(rows))
    print(", ".join(f"{kind}: {results[kind]['ms_per_measurement']:.1f} ms per measurement" for kind in results))
    import os

    report = {"machine": {"platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
                          "cpu_count": os.cpu_count(), "python": platform.python_version(),
                          "numpy": np.__version__},
              "date": dt.date.today().isoformat(), "command": " ".join(["python", *sys.argv]),
              "shapes_per_kind": args.shapes, "rectangle_min_aspect": args.min_aspect, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
