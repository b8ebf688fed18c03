"""Time the scan kernels, the whole model, clip-length scaling and whole-video proposal; print tables and
write one JSON report (machine, versions, date and command included).

suites:
  scan      the model's own selective-scan calls at every encoder stage of --scan-variant (default vivim-b3,
            batch --scan-batch 8, T=--clip-length 5, --size 256): inference as the compiled model runs it and
            training's forward+backward, against the HBM roofline (the measured device copy rate); then every
            scan backend at one shape (--scan-shape, default b4 d128 L20480 N16)
  model     frames/s and peak memory for each variant beside its "basic" ablation (no Mamba)
  scaling   per-frame time and memory for clip lengths 5, 16, 32, 64
  video     whole-video proposal of a synthetic video (decoding included)

examples:
  vivim-core benchmark --suite scan --out scan.json
  vivim-core benchmark --suite scan --device cpu --scan-variant none --scan-shape 1,64,4096,16
  vivim-core benchmark --suite all --device cuda --out report.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "benchmarks: scan kernels, model frames/s, clip-length scaling, whole-video proposal"
SUITES = ("scan", "model", "scaling", "video")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", default="scan,model",
                        help=f"comma-separated suites from {', '.join(SUITES)}, or 'all' (default: scan,model)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda (default: auto)")
    parser.add_argument("--scan-variant", default="vivim-b3",
                        help="scan suite: the variant whose scan calls are timed at each stage, or 'none' "
                             "(default vivim-b3)")
    parser.add_argument("--scan-batch", type=int, default=8, help="scan suite: clips a batch for the model's calls "
                        "(default 8, as the model suite's official runs)")
    parser.add_argument("--scan-shape", default="4,128,20480,16", metavar="B,D,L,N",
                        help="scan suite: batch, d_inner, sequence length, state size of the backends table "
                             "(default: one branch of vivim-b3's stage 1 at 256x256, T=5, batch 4)")
    parser.add_argument("--scan-backends", default=None,
                        help="comma-separated scan backends (default: every available one, reference included)")
    parser.add_argument("--no-backward", action="store_true", help="scan suite: time the forward only (no training rows)")
    parser.add_argument("--reference-repeats", type=int, default=5, metavar="N",
                        help="scan suite: timed runs of the slow sequential reference, the median kept, and as many "
                             "rounds of paired timings (a reference call, then each backend) for x_vs_reference "
                             "(default 5)")
    parser.add_argument("--variants", default="vivim-tiny,vivim-b3", help="model variants (comma-separated)")
    parser.add_argument("--modes", default=None,
                        help="model precisions: fp32, bf16 (autocast), bf16-weights (bf16 weights + channels-last); "
                             "default fp32 on CPU, fp32,bf16,bf16-weights on CUDA")
    parser.add_argument("--size", type=int, default=256, help="frame height and width (default 256)")
    parser.add_argument("--clip-length", type=int, default=5, help="frames per clip T (default 5)")
    parser.add_argument("--batch", type=int, default=4, help="clips per batch for the model suite (default 4)")
    parser.add_argument("--compile", nargs="?", const="default", default=None, metavar="MODE",
                        help="also time torch.compile'd models (MODE: default, reduce-overhead (CUDA graphs), "
                             "max-autotune-no-cudagraphs, ...)")
    parser.add_argument("--compile-only", default=None, metavar="VARIANT,PRECISION",
                        help="with --compile: compile only this variant and precision (e.g. vivim-b3,bf16-weights)")
    parser.add_argument("--no-basic", action="store_true", help="skip the 'basic' (no Mamba) ablation rows")
    parser.add_argument("--video-frames", type=int, default=1000, help="frames of the video suite's video")
    parser.add_argument("--video-variant", default="vivim-b3", help="variant for the video suite")
    parser.add_argument("--profile", action="store_true",
                        help="model suite: also print where one forward of each variant spends its time")
    parser.add_argument("--out", default=None, metavar="JSON", help="write the report here")


def _is_report(path: Path) -> bool:
    """Whether `path` holds a report an earlier `benchmark --out` wrote (which --out may replace)."""
    from ..checkpoint_header import loads_json
    from ..errors import VivimError
    from ..file_safety import open_regular

    try:
        with open_regular(path, "--out", max_bytes=256 * 2**20) as f:
            data = loads_json(f.read(), str(path), max_depth=64)
    except VivimError:
        return False
    return isinstance(data, dict) and {"environment", "results"} <= set(data)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..bench.common import environment, print_table, write_report
    from ..engine.distributed import resolve_device
    from ..errors import VivimError
    from ..file_safety import check_replaceable

    if args.out:
        check_replaceable(Path(args.out), "--out", _is_report)
    device = resolve_device(args.device)
    suites = SUITES if args.suite == "all" else tuple(s.strip() for s in args.suite.split(","))
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise VivimError(f"unknown suite(s) {unknown}; choose from {', '.join(SUITES)} or 'all'")
    report = {"environment": environment(device), "results": {}}
    print(f"device: {report['environment'].get('gpu', report['environment']['cpu'])}, torch {torch.__version__}")

    if "scan" in suites:
        from ..bench.scan import bench_model_scans, bench_scan, measured_bandwidth_gbs

        bandwidth = measured_bandwidth_gbs(device)
        if device.type == "cuda":
            print(f"device copy rate {bandwidth:.0f} GB/s (read + write)")
        if args.scan_variant != "none":
            rows = bench_model_scans(device, args.scan_variant, args.scan_batch, args.size, args.clip_length,
                                     backward=not args.no_backward, bandwidth_gbs=bandwidth)
            report["results"]["scan_model"] = rows
            print_table(f"selective scan: {args.scan_variant}'s calls, batch {args.scan_batch} x {args.clip_length} "
                        f"frames of {args.size}x{args.size}", rows,
                        ["stage", "call", "layout", "shape", "dtype", "gate", "kernel", "fwd_ms", "fwd_bwd_ms",
                         "gpu_ms", "host_us", "graph_ms", "MB", "roofline_ms", "x_roofline"])
        b, d, length, n = (int(v) for v in args.scan_shape.split(","))
        rows = []
        for dtype in ((torch.float32, torch.bfloat16) if device.type == "cuda" else (torch.float32,)):
            backends = args.scan_backends.split(",") if args.scan_backends else None
            rows += bench_scan(device, b, d, length, n, dtype, backends, backward=not args.no_backward,
                               reference_repeats=args.reference_repeats, bandwidth_gbs=bandwidth)
        report["results"]["scan"] = rows
        print_table("selective scan: backends at one shape", rows,
                    ["backend", "kernel", "shape", "dtype", "fwd_ms", "fwd_bwd_ms", "fwd_GB/s", "roofline_ms",
                     "x_roofline", "gpu_ms", "x_roofline_gpu", "host_us", "graph_ms", "x_roofline_graph",
                     "x_vs_reference", "x_vs_reference_unpaired", "note"])

    modes = args.modes.split(",") if args.modes else (["fp32", "bf16", "bf16-weights"] if device.type == "cuda" else ["fp32"])
    if "model" in suites:
        from ..bench.model import bench_model

        rows = []
        for variant in args.variants.split(","):
            for mode in modes:
                compile_this = args.compile and (args.compile_only is None or args.compile_only == f"{variant},{mode}")
                for compile_ in ((None, args.compile) if compile_this else (None,)):
                    for ablation in ((None,) if args.no_basic else (None, "basic")):
                        rows.append(bench_model(variant, device, mode, args.size, args.clip_length, args.batch,
                                                ablation, compile_))
                        if ablation == "basic":
                            rows[-1]["vivim_vs_basic"] = rows[-2]["frames_per_s"] / rows[-1]["frames_per_s"]
                        print("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                               for k, v in rows[-1].items()), flush=True)
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
        report["results"]["model"] = rows
        if args.profile:
            from ..bench.model import profile_model

            for variant in args.variants.split(","):
                print(f"\nprofile: {variant}, {modes[-1]}")
                print(profile_model(variant, device, modes[-1], args.size, args.clip_length, args.batch))
        print_table("model inference", rows, ["variant", "params_M", "mode", "input", "ms_per_batch", "frames_per_s",
                                              "vivim_vs_basic", "peak_mem_GiB"])

    if "scaling" in suites:
        from ..bench.model import bench_clip_length

        rows = bench_clip_length(args.video_variant, device, modes[-1] if device.type == "cuda" else "fp32",
                                 size=args.size)
        report["results"]["scaling"] = rows
        print_table("clip length scaling (one clip)", rows, ["variant", "mode", "T", "ms_per_batch", "ms_per_frame",
                                                             "per_frame_vs_T5", "peak_mem_GiB"])

    if "video" in suites:
        from ..bench.video import bench_video

        row = bench_video(args.video_variant, device, frames=args.video_frames, size=args.size,
                          clip_length=args.clip_length)
        report["results"]["video"] = [row]
        print_table("whole-video proposal", [row], list(row))

    if args.out:
        path = write_report(args.out, report)
        print(f"\nreport written to {path}")
    return 0
