"""Time the Triton inference scans at one shape (GPU): the row kernel (`scan_triton_rows`) over its launch
parameters, beside the chunk kernel in the same run. Prints a table; used to pick ROWS_TUNING.

    python benchmarks/tune_triton_rows.py --shape 4,128,20480,16
"""

from __future__ import annotations

import argparse
import itertools

import torch

from vivim_core.bench.common import gpu_ms_per_call, print_table, time_call
from vivim_core.bench.scan import measured_bandwidth_gbs, tuning_cases
from vivim_core.ops import scan_triton, scan_triton_rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="4,128,20480,16", help="batch,dim,L,N")
    parser.add_argument("--groups", type=int, default=1, help="groups of channels sharing B and C")
    parser.add_argument("--warps", default="1,2,4")
    parser.add_argument("--threads", default="67584,135168,270336,540672", help="threads to aim for")
    parser.add_argument("--min-segment", default="64", help="shortest segments, in steps")
    parser.add_argument("--maxnreg", default="0", help="register caps to try (0: none)")
    parser.add_argument("--prefetch", default="1", help="prefetch B and C a step ahead: 1, 0 or 1,0")
    args = parser.parse_args()
    b, d, length, n = (int(v) for v in args.shape.split(","))
    device = torch.device("cuda")
    bandwidth = measured_bandwidth_gbs(device)
    rows = []
    for dtype, x, floor in tuning_cases(args.shape, device, bandwidth, args.groups):

        def run():
            return scan_triton.selective_scan_triton(**x, delta_softplus=True)

        with torch.no_grad():
            scan_triton.TUNING["inference_kernel"] = "chunks"
            reference = run().float()
            t = time_call(run, device, repeats=30)
            gpu = gpu_ms_per_call(run)
            rows.append({"dtype": str(dtype).split(".")[-1], "kernel": "chunks", "fwd_ms": t["median_ms"],
                         "x_roofline": t["median_ms"] / floor, "gpu_ms": gpu, "x_roofline_gpu": gpu / floor})
            scan_triton.TUNING["inference_kernel"] = "rows"
            for warps, threads, min_segment, maxnreg, prefetch in itertools.product(
                    map(int, args.warps.split(",")), map(int, args.threads.split(",")),
                    map(int, args.min_segment.split(",")), map(int, args.maxnreg.split(",")),
                    map(int, args.prefetch.split(","))):
                scan_triton_rows.ROWS_TUNING.update(num_warps=warps, threads=threads, threads_16bit=threads,
                                                    min_segment=min_segment, maxnreg=maxnreg or None,
                                                    prefetch_bc=bool(prefetch))
                seg_len, segments = scan_triton_rows.plan_segments(b * d, length, dtype != torch.float32)
                out = run().float()
                error = float((out - reference).norm() / reference.norm())
                t = time_call(run, device, repeats=30)
                gpu = gpu_ms_per_call(run)
                rows.append({"dtype": str(dtype).split(".")[-1], "kernel": "rows", "warps": warps, "maxnreg": maxnreg,
                             "prefetch": prefetch, "threads": threads, "segments": segments, "seg_len": seg_len,
                             "fwd_ms": t["median_ms"], "x_roofline": t["median_ms"] / floor, "gpu_ms": gpu,
                             "x_roofline_gpu": gpu / floor, "rel_diff_vs_chunks": error})
    print(f"{torch.cuda.get_device_name()}, measured copy bandwidth {bandwidth:.0f} GB/s, shape b{b} d{d} L{length} "
          f"N{n}, {args.groups} group(s)")
    print_table("triton inference scan", rows, ["dtype", "kernel", "warps", "maxnreg", "prefetch", "threads", "segments",
                                                "seg_len", "fwd_ms", "x_roofline", "gpu_ms", "x_roofline_gpu",
                                                "rel_diff_vs_chunks"])


if __name__ == "__main__":
    main()
