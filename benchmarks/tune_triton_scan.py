"""Time the Triton scan's launch configurations at one shape (GPU). Prints a table; used to pick TUNING.

    python benchmarks/tune_triton_scan.py --shape 4,128,20480,16
"""

from __future__ import annotations

import argparse
import itertools

import torch

from vivim_core.bench.common import print_table, time_call
from vivim_core.bench.scan import measured_bandwidth_gbs, tuning_cases
from vivim_core.ops import scan_triton


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="4,128,20480,16")
    parser.add_argument("--block-l", default="32,64,128,256")
    parser.add_argument("--warps", default="1,2,4")
    parser.add_argument("--stages", default="3", help="software-pipelining depths to try")
    parser.add_argument("--programs", default="1,2048,4096,8192",
                        help="target grid sizes (1 = never split the sequence)")
    args = parser.parse_args()
    device = torch.device("cuda")
    bandwidth = measured_bandwidth_gbs(device)
    rows = []
    for dtype, x, floor in tuning_cases(args.shape, device, bandwidth):
        for block, warps, programs, stages in itertools.product(
                map(int, args.block_l.split(",")), map(int, args.warps.split(",")),
                map(int, args.programs.split(",")), map(int, args.stages.split(","))):
            scan_triton.TUNING.update(block_l=block, num_warps=warps, programs=programs, num_stages=stages)
            try:
                with torch.no_grad():
                    t = time_call(lambda: scan_triton.selective_scan_triton(**x, delta_softplus=True), device,
                                  repeats=20)
            except Exception as exc:  # a config that does not compile (registers) is reported, not fatal
                rows.append({"dtype": str(dtype), "block_l": block, "warps": warps, "error": str(exc)[:60]})
                continue
            rows.append({"dtype": str(dtype).split(".")[-1], "block_l": block, "warps": warps, "programs": programs, "stages": stages,
                         "fwd_ms": t["median_ms"], "x_roofline": t["median_ms"] / floor})
    print(f"measured copy bandwidth {bandwidth:.0f} GB/s")
    print_table("triton scan forward configurations", rows, ["dtype", "block_l", "warps", "programs", "stages", "fwd_ms", "x_roofline", "error"])


if __name__ == "__main__":
    main()
