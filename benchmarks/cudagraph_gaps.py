"""Idle GPU time inside one forward of a compiled model (CUDA): the gaps between consecutive kernels, largest
first, with the kernels on either side. Under `torch.compile(mode="reduce-overhead")` a forward replays a CUDA
graph, so gaps there mean work that is not in the graph or waits on the host.

    TORCH_LOGS=cudagraphs python benchmarks/cudagraph_gaps.py [--variant vivim-b3] [--ablation basic]
"""

from __future__ import annotations

import argparse

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from vivim_core.bench.common import time_call
from vivim_core.bench.model import prepare_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="vivim-b3")
    parser.add_argument("--ablation", default=None)
    parser.add_argument("--mode", default="reduce-overhead")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    device = torch.device("cuda")
    model, _, dtype = prepare_model(args.variant, device, "bf16-weights", args.ablation, args.mode)
    clip = torch.randn(args.batch, 5, 3, 256, 256, device=device, dtype=dtype)
    with torch.inference_mode():
        wall = time_call(lambda: model(clip), device, warmup=5, repeats=10)["median_ms"]
        with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
            model(clip)
            torch.cuda.synchronize()
    kernels = sorted((e for e in prof.events() if e.device_type == DeviceType.CUDA),
                     key=lambda e: e.time_range.start)
    busy = sum(e.time_range.elapsed_us() for e in kernels)
    span = kernels[-1].time_range.end - kernels[0].time_range.start
    gaps = [(b.time_range.start - a.time_range.end, a.name, b.name) for a, b in zip(kernels, kernels[1:])]
    print(f"{args.variant}{' (' + args.ablation + ')' if args.ablation else ''}, {args.mode}: {wall:.2f} ms per "
          f"forward (timed); profiled forward: {len(kernels)} kernels, {busy / 1000:.2f} ms busy over a "
          f"{span / 1000:.2f} ms span, {sum(max(g, 0) for g, _, _ in gaps) / 1000:.2f} ms of gaps")
    for gap, before, after in sorted(gaps, reverse=True)[: args.top]:
        print(f"  {gap:8.1f} us  after {before[:70]}  before {after[:70]}")


if __name__ == "__main__":
    main()
