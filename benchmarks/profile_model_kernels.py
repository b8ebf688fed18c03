"""Where a torch.compile'd vivim-b3 spends its GPU time: the CUDA kernels of one forward by time and by kind (scan,
DSF conv, matmul, Inductor's fused pointwise kernels, ...), beside its "basic" ablation (no Mamba), so that the
difference says what the Temporal Mamba blocks cost.

    python benchmarks/profile_model_kernels.py [--modes default,reduce-overhead] [--layouts auto,channels] [--rows 40]

bf16 weights, batch 8, T=5, 256x256 (the model suite's official setting). Every compile mode is timed; the
kernel profile is taken in "default" mode (CUDA graphs hide kernels from the profiler). --layouts forces the
Temporal Mamba blocks' layout (`SpatioTemporalMamba.layout`: auto, tokens or channels).
"""

from __future__ import annotations

import argparse
import collections

import torch
from torch.profiler import ProfilerActivity, profile

from vivim_core.bench.common import time_call
from vivim_core.bench.model import prepare_model
from vivim_core.model.temporal_mamba import SpatioTemporalMamba

KINDS = [  # (kind, substrings of kernel names), first match wins
    ("scan", ("scan",)),
    ("DSF depthwise conv3d", ("dwconv3d",)),
    ("causal conv in scan orders", ("causal_conv",)),
    ("matmul / conv (cuBLAS, cuDNN, cutlass)", ("gemm", "nvjet", "cutlass", "xmma", "sm90", "cudnn", "conv2d",
                                                "convolve", "sdpa", "flash")),
    ("layout conversions", ("nchwToNhwc", "nhwcToNchw", "tensorTransform")),
    ("fused pointwise (Inductor)", ("triton_poi", "triton_per", "triton_red")),
]


def kind_of(name: str) -> str:
    for kind, keys in KINDS:
        if any(k in name for k in keys):
            return kind
    return "other"


def _device_us(event) -> float:
    return getattr(event, "self_device_time_total", getattr(event, "self_cuda_time_total", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="default,reduce-overhead", help="torch.compile modes to time")
    parser.add_argument("--layouts", default="auto", help="Temporal Mamba layouts: auto, tokens, channels")
    parser.add_argument("--rows", type=int, default=40, help="kernels listed by time")
    args = parser.parse_args()
    device = torch.device("cuda")
    runs = [(layout, None) for layout in args.layouts.split(",")] + [("auto", "basic")]
    for mode in args.modes.split(","):
        for layout, ablation in runs:
            SpatioTemporalMamba.layout = layout
            label = "vivim-b3" + (" (basic)" if ablation else f" ({layout} layout)")
            model, _, dtype = prepare_model("vivim-b3", device, "bf16-weights", ablation, mode)
            clip = torch.randn(8, 5, 3, 256, 256, device=device, dtype=dtype)
            with torch.inference_mode():
                t = time_call(lambda: model(clip), device, warmup=5, repeats=10)
                print(f"== {label}, {mode}: {t['median_ms']:.2f} ms/batch, {40 / t['median_ms'] * 1000:.0f} frames/s",
                      flush=True)
                if mode != "default":
                    continue
                with profile(activities=[ProfilerActivity.CUDA]) as prof:
                    model(clip)
                    torch.cuda.synchronize()
            by_kind = collections.Counter()
            for event in prof.key_averages():
                by_kind[kind_of(event.key)] += _device_us(event)
            total = sum(by_kind.values())
            print(f"   CUDA time of one forward: {total / 1000:.2f} ms")
            for kind, us in by_kind.most_common():
                print(f"   {kind:42s} {us / 1000:7.2f} ms  {100 * us / total:5.1f} %")
            print("   self CUDA ms  calls  kernel (full name)")
            for event in sorted(prof.key_averages(), key=lambda e: -_device_us(e))[:args.rows]:
                print(f"   {_device_us(event) / 1000:11.3f}  {event.count:5d}  {event.key}")
    SpatioTemporalMamba.layout = "auto"


if __name__ == "__main__":
    main()
