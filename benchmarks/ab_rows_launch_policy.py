"""A/B of the row kernel's launch policy inside compiled vivim-b3 (GPU, bf16 weights, reduce-overhead, batch 8 x 5
frames): the current ROWS_TUNING against session 8's (135k threads for every dtype, never one segment by rule),
with the basic ablation in the same process.

    python benchmarks/ab_rows_launch_policy.py [--rounds 2]
"""

from __future__ import annotations

import argparse

import torch

from vivim_core.bench.model import bench_model
from vivim_core.ops import scan_triton_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    current = dict(scan_triton_rows.ROWS_TUNING)
    session_8 = dict(current, threads_16bit=132 * 1024, one_segment_threads=2**40)
    device = torch.device("cuda")
    print(torch.cuda.get_device_name(), flush=True)
    for round_ in range(args.rounds):
        for name, tuning, ablation in (("current launch policy", current, None), ("session-8 policy", session_8, None),
                                       ("basic", current, "basic")):
            scan_triton_rows.ROWS_TUNING.update(tuning)
            row = bench_model("vivim-b3", device, "bf16-weights", batch=8, compile="reduce-overhead", repeats=20,
                              ablation=ablation)
            print(f"round {round_}  {name:22s} {row['ms_per_batch']:.2f} ms/batch  {row['frames_per_s']:.0f} frames/s",
                  flush=True)
            torch.cuda.empty_cache()
    scan_triton_rows.ROWS_TUNING.update(current)


if __name__ == "__main__":
    main()
