"""Host (CPU) time of one torch.compile'd forward, by operator (torch.profiler with CPU activities), for the
Temporal Mamba blocks' two layouts: to find host work that the GPU waits on.

    TORCH_LOGS=recompiles python benchmarks/host_overhead_compiled.py [--mode default] [--layouts tokens,channels]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from vivim_core.bench.model import prepare_model
from vivim_core.model.temporal_mamba import SpatioTemporalMamba


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="default")
    parser.add_argument("--layouts", default="tokens,channels")
    parser.add_argument("--rows", type=int, default=25)
    args = parser.parse_args()
    dev = torch.device("cuda")
    for layout in args.layouts.split(","):
        SpatioTemporalMamba.layout = layout
        model, _, dtype = prepare_model("vivim-b3", dev, "bf16-weights", None, args.mode)
        clip = torch.randn(8, 5, 3, 256, 256, device=dev, dtype=dtype)
        with torch.inference_mode():
            for _ in range(5):
                model(clip)
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(10):
                model(clip)
            host = (time.perf_counter() - start) / 10 * 1000  # calls queued without a sync: host pace
            torch.cuda.synchronize()
            total = (time.perf_counter() - start) / 10 * 1000
            print(f"== {layout}: {host:.2f} ms/forward on the host without syncs, {total:.2f} ms with the GPU", flush=True)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                model(clip)
                torch.cuda.synchronize()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=70))


if __name__ == "__main__":
    main()
