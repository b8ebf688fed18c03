"""Time the Triton scan's two inference kernels at one shape (GPU): the chunked-scan kernel and the step-by-step
kernel (`_seq_scan_kernel`) with several launch settings. Prints a table; used to pick TUNING.

    python benchmarks/tune_triton_seq.py --shape 4,128,20480,16
"""

from __future__ import annotations

import argparse
import itertools

import torch

from vivim_core.bench.common import print_table, time_call
from vivim_core.bench.scan import measured_bandwidth_gbs, minimum_bytes, scan_inputs
from vivim_core.ops import scan_triton


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="4,128,20480,16")
    parser.add_argument("--block-r", default="4,8,16")
    parser.add_argument("--warps", default="1,2")
    parser.add_argument("--programs", default="8192,16384,32768")
    parser.add_argument("--min-len", default="64,128")
    args = parser.parse_args()
    b, d, length, n = (int(v) for v in args.shape.split(","))
    device = torch.device("cuda")
    bandwidth = measured_bandwidth_gbs(device)
    defaults = dict(scan_triton.TUNING)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        x = scan_inputs(b, d, length, n, device, dtype)
        floor = minimum_bytes(b, d, length, n, torch.finfo(dtype).bits // 8) / (bandwidth * 1e9) * 1000
        with torch.no_grad():
            reference = scan_triton.selective_scan_triton(**x, delta_softplus=True)
            scan_triton.TUNING.update(defaults, sequential=False)
            chunked = scan_triton.selective_scan_triton(**x, delta_softplus=True)
            t = time_call(lambda: scan_triton.selective_scan_triton(**x, delta_softplus=True), device, repeats=20)
            rows.append({"dtype": str(dtype).split(".")[-1], "kernel": "chunk scan", "fwd_ms": t["median_ms"],
                         "x_roofline": t["median_ms"] / floor,
                         "max_diff": float((reference.float() - chunked.float()).abs().max())})
            for block_r, warps, programs, min_len in itertools.product(
                    *(map(int, v.split(",")) for v in (args.block_r, args.warps, args.programs, args.min_len))):
                scan_triton.TUNING.update(defaults, sequential=True, seq_block_r=block_r, seq_num_warps=warps,
                                          seq_programs=programs, seq_min_len=min_len)
                out = scan_triton.selective_scan_triton(**x, delta_softplus=True)
                t = time_call(lambda: scan_triton.selective_scan_triton(**x, delta_softplus=True), device, repeats=20)
                rows.append({"dtype": str(dtype).split(".")[-1], "kernel": "step by step", "block_r": block_r,
                             "warps": warps, "programs": programs, "min_len": min_len, "fwd_ms": t["median_ms"],
                             "x_roofline": t["median_ms"] / floor,
                             "max_diff": float((out.float() - chunked.float()).abs().max())})
    scan_triton.TUNING.update(defaults)
    print(f"measured copy bandwidth {bandwidth:.0f} GB/s, shape b{b} d{d} L{length} N{n}")
    print_table("triton scan inference kernels", rows,
                ["dtype", "kernel", "block_r", "warps", "programs", "min_len", "fwd_ms", "x_roofline", "max_diff"])


if __name__ == "__main__":
    main()
