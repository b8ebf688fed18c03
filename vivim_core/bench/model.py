"""Whole-model inference throughput: frames/s and peak memory per variant, precision and layout."""

from __future__ import annotations

import contextlib

import torch

from ..config import ABLATIONS
from ..model import build_model, count_parameters
from ..ops import load_backends
from .common import synchronize, time_call

MODES = {
    # name: (autocast dtype, weight dtype, channels_last)
    "fp32": (None, torch.float32, False),
    "bf16": (torch.bfloat16, torch.float32, False),  # autocast, fp32 master weights
    "bf16-weights": (None, torch.bfloat16, True),  # bf16 weights and activations, channels-last convs
}


def prepare_model(variant: str, device: torch.device, mode: str, ablation: str | None = None,
                  compile: str | None = None):
    """An eval-mode model ready for timing, and the autocast context it runs under.

    compile: None (eager) or a `torch.compile` mode ("default", "reduce-overhead", "max-autotune-no-cudagraphs").
    """
    autocast_dtype, weight_dtype, channels_last = MODES[mode]
    overrides = ABLATIONS[ablation] if ablation else {}
    model = build_model(variant, **overrides).eval().to(device=device, dtype=weight_dtype)
    if channels_last:  # 2-D convolutions only (the DSF's Conv3d and the scan's Conv1d keep their layout)
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.to(memory_format=torch.channels_last)
    if compile:
        # A clean Dynamo state for each compiled model: models timed one after another in one process share
        # their modules' code objects, and the recompilations pile up against Dynamo's recompile limit (a
        # "basic" ablation compiled third or later in one process ran 20-35 % slower than in a fresh state).
        torch._dynamo.reset()
        load_backends(device.type == "cuda")  # no first-time probes inside the traced forward (one graph)
        model = torch.compile(model, mode=None if compile == "default" else compile)
    if autocast_dtype is not None:
        ctx = lambda: torch.autocast(device.type, dtype=autocast_dtype)  # noqa: E731
    else:
        ctx = contextlib.nullcontext
    return model, ctx, weight_dtype


def bench_model(variant: str, device: torch.device, mode: str = "fp32", size: int = 256, clip_length: int = 5,
                batch: int = 4, ablation: str | None = None, compile: str | None = None, repeats: int = 10) -> dict:
    model, ctx, weight_dtype = prepare_model(variant, device, mode, ablation, compile)
    clip = torch.randn(batch, clip_length, 3, size, size, device=device, dtype=weight_dtype)

    @torch.inference_mode()
    def run():
        with ctx():
            return model(clip)

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    timing = time_call(run, device, warmup=3 if not compile else 5, repeats=repeats)
    synchronize(device)
    frames = batch * clip_length
    row = {
        "variant": variant + (f" ({ablation})" if ablation else ""),
        "params_M": count_parameters(model) / 1e6,
        "mode": mode + (f"+compile({compile})" if compile else ""),
        "input": f"{batch}x{clip_length}x{size}x{size}",
        "ms_per_batch": timing["median_ms"],
        "frames_per_s": frames / (timing["median_ms"] / 1000),
    }
    if device.type == "cuda":
        row["peak_mem_GiB"] = torch.cuda.max_memory_allocated(device) / 2**30
    return row


def bench_clip_length(variant: str, device: torch.device, mode: str, lengths=(5, 16, 32, 64), size: int = 256) -> list[dict]:
    """How time and memory grow with the clip length T (one clip per batch): the linear-complexity claim."""
    rows = []
    for t in lengths:
        row = bench_model(variant, device, mode, size=size, clip_length=t, batch=1)
        row["T"] = t
        row["ms_per_frame"] = row["ms_per_batch"] / t
        rows.append(row)
    base = rows[0]["ms_per_frame"]
    for row in rows:
        row["per_frame_vs_T5"] = row["ms_per_frame"] / base
    return rows


def profile_model(variant: str, device: torch.device, mode: str, size: int = 256, clip_length: int = 5,
                  batch: int = 4, top: int = 25) -> str:
    """Table of the kernels one forward spends its time in (torch.profiler), to see what to optimise."""
    from torch.profiler import ProfilerActivity, profile

    model, ctx, weight_dtype = prepare_model(variant, device, mode)
    clip = torch.randn(batch, clip_length, 3, size, size, device=device, dtype=weight_dtype)
    with torch.inference_mode(), ctx():
        for _ in range(3):
            model(clip)
        synchronize(device)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=activities) as prof:
            model(clip)
            synchronize(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=top)
