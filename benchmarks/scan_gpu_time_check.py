"""The Triton scan backend at the issue's stage-1 shape (GPU), as the scan suite calls it: which inference kernel
`auto` picks, wall time (synchronised) and GPU time (back-to-back calls) three times each, then the kernels the
profiler saw over 20 calls. Written when one suite run read 0.799 ms of GPU time for float32 where every other
run read 0.19 (results/h100_s10_scan_anomaly.log): the same calls here read 0.186-0.194.

    python benchmarks/scan_gpu_time_check.py
"""

from __future__ import annotations

import torch
from vivim_core.bench.scan import scan_inputs
from vivim_core.bench.common import gpu_ms_per_call, time_call
from vivim_core.ops.backends import resolve
from vivim_core.ops import scan_triton

device = torch.device("cuda")
_, fn = resolve("scan", "triton", True)
for dtype in (torch.float32, torch.bfloat16):
    x = scan_inputs(4, 128, 20480, 16, device, dtype)
    kernel = scan_triton._inference_kernel(x["u"], x["delta"], x["z"], x["B"], x["C"], 16)
    for r in range(3):
        wall = time_call(lambda: fn(**x, delta_softplus=True), device, warmup=3, repeats=20)["median_ms"]
        gpu = gpu_ms_per_call(lambda: fn(**x, delta_softplus=True))
        print(f"{dtype} {kernel} round {r}: wall {wall:.4f} ms  gpu {gpu:.4f} ms", flush=True)
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(20):
            fn(**x, delta_softplus=True)
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=8, max_name_column_width=50), flush=True)
