"""A/B of the Triton inference scans inside vivim-b3 (GPU): the chunk kernel and the row kernel (and with
--rows-prefetch 1,0 the row kernel with and without B/C loaded a step ahead), timed alternately in one process.
Prints frames/s per variant.

    python benchmarks/ab_triton_inference.py [--compile reduce-overhead] [--batch 8] [--rows-prefetch 1,0]
"""

from __future__ import annotations

import argparse

import torch

from vivim_core.bench.model import bench_model
from vivim_core.ops import scan_triton, scan_triton_rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", default="vivim-b3")
    parser.add_argument("--mode", default="bf16-weights")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--compile", default=None, help="torch.compile mode (default: eager)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rows-prefetch", default="1", help="row kernel variants: 1 (B/C a step ahead), 0, or 1,0")
    parser.add_argument("--kernels", default="chunks,rows")
    args = parser.parse_args()
    variants = [(k, p) for k in args.kernels.split(",") for p in (args.rows_prefetch.split(",") if k == "rows" else "1")]
    device = torch.device("cuda")
    print(torch.cuda.get_device_name(), f"{args.variant} {args.mode} batch {args.batch} compile={args.compile}")
    for round_ in range(args.rounds):
        for kernel, prefetch in variants:
            scan_triton.TUNING["inference_kernel"] = kernel
            scan_triton_rows.ROWS_TUNING["prefetch_bc"] = prefetch == "1"
            row = bench_model(args.variant, device, args.mode, batch=args.batch, compile=args.compile, repeats=20)
            label = kernel if kernel == "chunks" else f"rows prefetch={prefetch}"
            print(f"  round {round_}  {label:18s}  {row['ms_per_batch']:.2f} ms/batch  "
                  f"{row['frames_per_s']:.0f} frames/s", flush=True)


if __name__ == "__main__":
    main()
