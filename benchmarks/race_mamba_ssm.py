"""Our CUDA kernels against the official fused ones (`pip install -e ".[cuda]"`: mamba-ssm's selective_scan_fn,
causal-conv1d's causal_conv1d_fn) on one GPU, at the model's own shapes, each against the HBM roofline.

    python benchmarks/race_mamba_ssm.py --out race.json

Rows, for every encoder stage of vivim-b3 (batch 8 clips of 5 frames, 256x256; all scan branches in one call):
  scan inference, channel-major (the layout the model takes with mamba-ssm), bf16, gate in the scan
  scan inference, token-major (the layout the model takes with ours), bf16, gate after the branch sum
  scan training forward + backward, channel-major, bf16 autocast, gate in the scan
  causal conv1d of one branch (B, d_inner, L), bf16, SiLU
and the whole vivim-b3 (eager, bf16 autocast, inference) with each backend. Kernel times are CUDA-graph replays
(the host out of the picture) where the call can be captured, else back-to-back CUDA events.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="vivim-b3")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import torch

    from vivim_core.bench.common import environment, print_table, write_report
    from vivim_core.errors import VivimError
    from vivim_core.ops import backend_status

    if not torch.cuda.is_available():
        raise SystemExit("race_mamba_ssm.py needs a CUDA GPU")
    status = backend_status("scan")["mamba_ssm"], backend_status("conv")["causal_conv1d"]
    if not all(s["available"] for s in status):
        raise SystemExit(f"the [cuda] extra is not usable here: mamba_ssm: {status[0]['reason'] or 'ok'}; "
                         f"causal_conv1d: {status[1]['reason'] or 'ok'}")
    device = torch.device("cuda")
    try:
        rows = race(device, args.variant, args.batch, args.frames, args.size)
    except VivimError as exc:
        raise SystemExit(str(exc)) from None
    print_table("ours against the official kernels", rows,
                ["stage", "call", "shape", "backend", "kernel_ms", "x_roofline", "x_theirs"])
    if args.out:
        write_report(args.out, {"suite": "race_mamba_ssm", "environment": environment(device), "rows": rows,
                                "command": " ".join(sys.argv)})
    return 0


def _kernel_ms(fn) -> tuple[float, str]:
    from vivim_core.bench.common import gpu_ms_graphed, gpu_ms_per_call

    try:
        return gpu_ms_graphed(fn), "graph"
    except Exception:  # a kernel that cannot be captured (host syncs): back-to-back events instead
        import torch

        torch.cuda.synchronize()
        return gpu_ms_per_call(fn), "events"


def race(device, variant: str, batch: int, frames: int, size: int) -> list[dict]:
    import torch
    import torch.nn.functional as F

    from vivim_core.bench.scan import call_bytes, measured_bandwidth_gbs, model_scan_arguments, stage_mixers
    from vivim_core.ops import causal_conv1d, selective_scan

    bandwidth = measured_bandwidth_gbs(device)
    rows: list[dict] = []

    def add(stage, call, shape, timings: dict, megabytes: float) -> None:
        roofline = megabytes * 1e6 / (bandwidth * 1e9) * 1000
        theirs = timings["mamba_ssm"][0]
        for backend, (ms, how) in timings.items():
            rows.append({"stage": stage, "call": call, "shape": shape, "backend": backend, "kernel_ms": ms,
                         "timing": how, "MB": megabytes, "roofline_ms": roofline, "x_roofline": ms / roofline,
                         "x_theirs": ms / theirs, "hbm_GB/s_measured": bandwidth})

    for stage, side, mixer in stage_mixers(variant, size):
        length = frames * side * side
        for layout in ("channels", "tokens"):
            mixer.layout = layout
            scan_args, _ = model_scan_arguments(mixer, batch, length, device, training=False)
            if layout == "channels":
                scan_args["z"] = torch.randn_like(scan_args["u"])  # the eager channel-major call gates in the scan
            timings = {}
            with torch.inference_mode():
                for name, backend in (("ours", "triton"), ("mamba_ssm", "mamba_ssm")):
                    timings[name] = _kernel_ms(lambda b=backend: selective_scan(**scan_args, backend=b))
            shape = "b{} d{} L{} G{}".format(*scan_args["u"].shape, scan_args["B"].shape[1])
            add(stage, f"scan inference {layout}", shape, timings, call_bytes(scan_args) / 1e6)
        mixer.layout = "auto"
        train_args, _ = model_scan_arguments(mixer, batch, length, device, training=True)
        leaves = [v for v in train_args.values() if torch.is_tensor(v) and v.requires_grad]
        grad = torch.randn_like(train_args["u"])
        timings = {}
        for name, backend in (("ours", "triton"), ("mamba_ssm", "mamba_ssm")):
            def step(b=backend):
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    out = selective_scan(**train_args, backend=b)
                torch.autograd.grad(out, leaves, grad)
            timings[name] = _kernel_ms(step)
        add(stage, "scan train fwd+bwd", shape, timings, call_bytes(train_args, backward=True) / 1e6)
        x = torch.randn(batch, mixer.d_inner, length, device=device, dtype=torch.bfloat16)
        weight = torch.randn(mixer.d_inner, 4, device=device, dtype=torch.bfloat16)
        bias = torch.randn(mixer.d_inner, device=device, dtype=torch.bfloat16)
        timings = {}
        with torch.inference_mode():
            for name, backend in (("ours", "torch"), ("mamba_ssm", "causal_conv1d")):
                timings[name] = _kernel_ms(lambda b=backend: causal_conv1d(x, weight, bias, "silu", backend=b))
        add(stage, "causal conv1d", f"b{batch} d{mixer.d_inner} L{length}", timings, 2 * x.numel() * 2 / 1e6)
    rows.extend(_whole_model(device, variant, batch, frames, size))
    return rows


def _whole_model(device, variant: str, batch: int, frames: int, size: int) -> list[dict]:
    import torch

    from vivim_core.bench.common import gpu_ms_per_call
    from vivim_core.model import build_model
    from vivim_core.ops import use_backends

    model = build_model(variant).to(device).eval()
    clip = torch.randn(batch, frames, 3, size, size, device=device)
    rows, times = [], {}
    for name, backends in (("ours", {}), ("mamba_ssm", {"scan": "mamba_ssm", "conv": "causal_conv1d"})):
        with use_backends(**backends), torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            times[name] = gpu_ms_per_call(lambda: model(clip), 10)
    for name, ms in times.items():
        rows.append({"stage": "all", "call": f"{variant} eager bf16 autocast", "shape": f"b{batch} T{frames} {size}px",
                     "backend": name, "kernel_ms": ms, "timing": "events", "frames_per_s": batch * frames / ms * 1000,
                     "x_theirs": ms / times["mamba_ssm"]})
    return rows


if __name__ == "__main__":
    sys.exit(main())
