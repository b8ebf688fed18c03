"""A/B of the two Triton inference scans inside vivim-b3 (GPU): the chunk kernel and the row kernel, timed
alternately in one process. Prints frames/s per kernel and mode.

    python benchmarks/ab_triton_inference.py [--compile reduce-overhead] [--batch 8]
"""

from __future__ import annotations

import argparse

import torch

from vivim_core.bench.model import bench_model
from vivim_core.ops import scan_triton


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", default="vivim-b3")
    parser.add_argument("--mode", default="bf16-weights")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--compile", default=None, help="torch.compile mode (default: eager)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    device = torch.device("cuda")
    print(torch.cuda.get_device_name(), f"{args.variant} {args.mode} batch {args.batch} compile={args.compile}")
    for round_ in range(args.rounds):
        for kernel in ("chunks", "rows"):
            scan_triton.TUNING["inference_kernel"] = kernel
            row = bench_model(args.variant, device, args.mode, batch=args.batch, compile=args.compile, repeats=20)
            print(f"  round {round_}  {kernel:6s}  {row['ms_per_batch']:.2f} ms/batch  "
                  f"{row['frames_per_s']:.0f} frames/s")


if __name__ == "__main__":
    main()
