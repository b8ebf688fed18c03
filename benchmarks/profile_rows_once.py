"""One Triton inference scan at the stage-1 shape, for a profiler (ncu) to look at.

    ncu -k regex:_rows --section SpeedOfLight python benchmarks/profile_rows_once.py [rows|chunks]
"""

import sys

import torch

from vivim_core.bench.scan import scan_inputs
from vivim_core.ops import scan_triton

scan_triton.TUNING["inference_kernel"] = sys.argv[1] if len(sys.argv) > 1 else "rows"
x = scan_inputs(4, 128, 20480, 16, torch.device("cuda"))
with torch.no_grad():
    for _ in range(2):
        scan_triton.selective_scan_triton(**x, delta_softplus=True)
torch.cuda.synchronize()
