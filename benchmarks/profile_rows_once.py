"""Inference scans at the stage-1 shape, for a profiler to look at (GPU).

    ncu -k regex:_rows --section SpeedOfLight python benchmarks/profile_rows_once.py rows
    python benchmarks/profile_rows_once.py rows --torch-profile     # kernel times, host overhead, in one table
    ncu -k regex:_warps --section WarpStateStats python benchmarks/profile_rows_once.py warps --split=2 --items=16
"""

import sys

import torch

from vivim_core.bench.scan import scan_inputs
from vivim_core.ops import scan_triton, scan_triton_warps

scan_triton.TUNING["inference_kernel"] = sys.argv[1] if len(sys.argv) > 1 else "rows"
for arg in sys.argv[2:]:  # the warps kernel's launch parameters: --items=N --split=N
    if arg.startswith(("--items=", "--split=")):
        key, value = arg[2:].split("=")
        scan_triton_warps.WARPS_TUNING[key] = int(value)
dtype = torch.bfloat16 if "--bf16" in sys.argv else torch.float32
x = scan_inputs(4, 128, 20480, 16, torch.device("cuda"), dtype)


def run():
    with torch.no_grad():
        return scan_triton.selective_scan_triton(**x, delta_softplus=True)


for _ in range(3):
    run()
torch.cuda.synchronize()
if "--torch-profile" in sys.argv:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(10):
            run()
        torch.cuda.synchronize()
    print(f"{scan_triton.TUNING['inference_kernel']} {dtype}, 10 calls")
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=40))
