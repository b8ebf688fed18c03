"""Which CPU scan backend makes whole-model inference faster, by thread count: numba or chunked.

    python benchmarks/cpu_inference_backends.py --threads 2,4,16 --rounds 3 --out results/cpu_backends.json

Each (backend, threads) measurement runs in a fresh process (numba's and PyTorch's worker threads would
otherwise slow each other), in alternation, `rounds` times; a process times `calls` forwards of the variant
after two warm-up calls and reports their median. Prints a table and writes JSON with the machine and command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ONE_MEASUREMENT = r"""
import sys, time, torch
from vivim_core import build_model, ops
backend, threads, variant, size, calls = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
torch.manual_seed(0)
model = build_model(variant).eval()
clip = torch.randn(1, 5, 3, size, size)
with torch.inference_mode(), ops.use_backends(scan=backend):
    for _ in range(2):
        model(clip)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        model(clip)
        times.append(time.perf_counter() - start)
times.sort()
print(times[len(times) // 2])
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default=str(os.cpu_count() or 1), help="comma-separated thread counts")
    parser.add_argument("--backends", default="numba,chunked")
    parser.add_argument("--variant", default="vivim-tiny")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    backends = args.backends.split(",")
    seconds: dict[tuple[str, int], list[float]] = {(b, t): [] for t in threads for b in backends}
    for _ in range(args.rounds):
        for key in seconds:
            backend, count = key
            result = subprocess.run([sys.executable, "-c", ONE_MEASUREMENT, backend, str(count), args.variant,
                                     str(args.size), str(args.calls)], capture_output=True, text=True, check=True)
            seconds[key].append(float(result.stdout.strip().splitlines()[-1]))
    rows = []
    for (backend, count), values in seconds.items():
        median = statistics.median(values)
        rows.append({"backend": backend, "threads": count, "ms_per_clip": median * 1000,
                     "frames_per_s": 5 / median, "runs_ms": [round(v * 1000, 1) for v in values]})
    print(f"{args.variant}, 1 x 5 x {args.size} x {args.size}, inference; medians over {args.rounds} processes")
    print(f"{'backend':8} {'threads':>7} {'ms/clip':>9} {'frames/s':>9}  runs (ms)")
    for row in rows:
        print(f"{row['backend']:8} {row['threads']:>7} {row['ms_per_clip']:>9.0f} {row['frames_per_s']:>9.2f}  "
              f"{row['runs_ms']}")
    if args.out:
        import torch

        report = {"environment": {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                  "command": " ".join(sys.argv), "cpu_count": os.cpu_count(),
                                  "platform": platform.platform(), "torch": torch.__version__},
                  "results": rows}
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
