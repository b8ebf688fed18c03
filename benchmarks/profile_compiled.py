"""Where a torch.compile'd vivim-b3 (bf16 weights, batch 8, T=5, 256x256) spends its time, on a CUDA GPU.

    python benchmarks/profile_compiled.py default reduce-overhead

Times each compile mode given; for "default", also prints the kernels of one forward by CUDA time.
"""
import sys, time
import torch
from torch.profiler import ProfilerActivity, profile
from vivim_core.bench.model import prepare_model
from vivim_core.bench.common import time_call

dev = torch.device("cuda")
for mode in sys.argv[1:]:
    model, ctx, dtype = prepare_model("vivim-b3", dev, "bf16-weights", None, mode)
    clip = torch.randn(8, 5, 3, 256, 256, device=dev, dtype=dtype)
    with torch.inference_mode():
        t = time_call(lambda: model(clip), dev, warmup=5, repeats=10)
        print(f"== {mode}: {t['median_ms']:.2f} ms/batch, {40 / t['median_ms'] * 1000:.0f} frames/s", flush=True)
        if mode == "default":
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                model(clip); torch.cuda.synchronize()
            print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=40, max_name_column_width=90))
