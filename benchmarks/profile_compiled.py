"""Where a torch.compile'd vivim-b3 (bf16 weights, batch 8, T=5, 256x256) spends its time, on a CUDA GPU, beside
its "basic" ablation (no Mamba).

    python benchmarks/profile_compiled.py default reduce-overhead [--rows 40] [--layouts tokens,channels]

Times each compile mode given, for the model and for the ablation; for "default", also prints the kernels of one
forward of each by CUDA time, and the CUDA time by kind of kernel (scan, DSF conv, matmul, ...), so that the
difference between the two says what the Temporal Mamba blocks cost.
"""
import collections
import sys

import torch
from torch.profiler import ProfilerActivity, profile

from vivim_core.bench.common import time_call
from vivim_core.bench.model import prepare_model
from vivim_core.model.temporal_mamba import SpatioTemporalMamba

KINDS = [  # (kind, substrings of kernel names), first match wins
    ("scan", ("scan",)),
    ("DSF depthwise conv3d", ("dwconv3d",)),
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


def main() -> None:
    args = sys.argv[1:]
    flag_values = {i + 1 for i, a in enumerate(args) if a.startswith("--")}
    modes = [a for i, a in enumerate(args) if not a.startswith("--") and i not in flag_values]
    rows = int(sys.argv[sys.argv.index("--rows") + 1]) if "--rows" in sys.argv else 40
    dev = torch.device("cuda")
    layouts = sys.argv[sys.argv.index("--layouts") + 1].split(",") if "--layouts" in sys.argv else ["auto"]
    runs = [(layout, None) for layout in layouts] + [("auto", "basic")]
    for mode in modes:
        for layout, ablation in runs:
            SpatioTemporalMamba.layout = layout  # the Temporal Mamba blocks' layout (see temporal_mamba.py)
            label = "vivim-b3" + (" (basic)" if ablation else f" ({layout} layout)")
            model, _, dtype = prepare_model("vivim-b3", dev, "bf16-weights", ablation, mode)
            clip = torch.randn(8, 5, 3, 256, 256, device=dev, dtype=dtype)
            with torch.inference_mode():
                t = time_call(lambda: model(clip), dev, warmup=5, repeats=10)
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
            events = sorted(prof.key_averages(), key=lambda e: -_device_us(e))[:rows]
            print("   self CUDA ms  calls  kernel (full name)")
            for event in events:
                print(f"   {_device_us(event) / 1000:11.3f}  {event.count:5d}  {event.key}")


def _device_us(event) -> float:
    return getattr(event, "self_device_time_total", getattr(event, "self_cuda_time_total", 0))


if __name__ == "__main__":
    main()
