"""The row kernel (`scan_triton_rows`) at vivim-b3's stage-1 inference size with token-major views (GPU): u, dt
and z token-major ((B, L, D) read through (B, D, L) views), B and C slices of a projection's output, laid out
either as mamba_ssm's x_proj gives them (`--x-proj mamba`: (B, G, L, dt_rank + 2N) rows of 36 values, B and C 4 and
20 values in: multiples of 4, not of 16) or as Vivim's own token path does (`--x-proj vivim`:
`SpatioTemporalMamba._token_projection`, one (B, L, P) output with every branch's B, then C, then dt, P padded to
a multiple of 8, so rows and slices are 16-byte aligned). GPU time per call for each ROWS_TUNING['lanes'] (threads
a row), and with B and C as contiguous copies; or, with --threads (and --warps), for each number of threads aimed
at (which sets the segments) and warps a program; optionally vivim-b3 compiled per lanes value beside its basic
ablation.

    python benchmarks/row_kernel_model_views.py [--shape 8,384,20480,16,3] [--x-proj mamba|vivim] [--lanes 1,2,4]
        [--threads 67584,135168 --warps 1,2] [--dt-rank 4] [--model]
        [--compare-module vivim_core.ops.some_other_rows_module]

--compare-module times another module with the same `scan_by_rows` (e.g. an earlier version of the file, copied
next to it) on the same inputs.
"""

from __future__ import annotations

import argparse
import importlib
import json

import torch

from vivim_core.bench.common import gpu_ms_per_call
from vivim_core.ops import scan_triton_rows


def model_like_inputs(batch: int, dim: int, length: int, n_state: int, groups: int, dtype: torch.dtype,
                      x_proj: str, dt_rank: int = 4) -> dict:
    """Inputs of `scan_by_rows` with token-major strides; B and C laid out per `x_proj` ("mamba" or "vivim")."""
    def tokens():
        return torch.randn(batch, length, dim, device="cuda", dtype=dtype).transpose(1, 2)

    if x_proj == "mamba":
        out = torch.randn(batch, groups, length, dt_rank + 2 * n_state, device="cuda", dtype=dtype)
        Bg = out[..., dt_rank:dt_rank + n_state].transpose(-1, -2)
        Cg = out[..., dt_rank + n_state:].transpose(-1, -2)
    else:
        width = 2 * groups * n_state + groups * dt_rank
        out = torch.randn(batch, length, width + (-width % 8), device="cuda", dtype=dtype)
        Bg = out[..., :groups * n_state].unflatten(-1, (groups, n_state)).permute(0, 2, 3, 1)
        Cg = out[..., groups * n_state:2 * groups * n_state].unflatten(-1, (groups, n_state)).permute(0, 2, 3, 1)
    return {"u": tokens(), "delta": tokens() * 0.5, "A": -torch.rand(dim, n_state, device="cuda") * 4 - 0.1,
            "Bg": Bg, "Cg": Cg,
            "D": torch.randn(dim, device="cuda"), "z": tokens(), "delta_bias": torch.randn(dim, device="cuda") * 0.5,
            "delta_softplus": True, "out": torch.empty(batch, length, dim, device="cuda", dtype=dtype).transpose(1, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="8,384,20480,16,3", help="batch,dim,L,N,groups (vivim-b3 stage 1, batch 8)")
    parser.add_argument("--x-proj", default="mamba", choices=("mamba", "vivim"), help="layout of B and C (above)")
    parser.add_argument("--lanes", default="1,2,4")
    parser.add_argument("--threads", default=None, help="ROWS_TUNING['threads'] values to try (lanes: the first)")
    parser.add_argument("--warps", default=None, help="ROWS_TUNING['num_warps'] values to try (with --threads)")
    parser.add_argument("--dt-rank", type=int, default=4, help="dt_rank of the projection (vivim-b3: 4/8/20/32)")
    parser.add_argument("--compare-module", default=None)
    parser.add_argument("--model", action="store_true", help="also vivim-b3 compiled (reduce-overhead) per lanes")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    batch, dim, length, n_state, groups = (int(v) for v in args.shape.split(","))
    lanes_values = [int(v) for v in args.lanes.split(",")]
    print(torch.cuda.get_device_name(), f"shape b{batch} d{dim} L{length} N{n_state} G{groups}, B/C as {args.x_proj}'s",
          flush=True)
    saved = dict(scan_triton_rows.ROWS_TUNING)
    rows = []
    for dtype in (torch.bfloat16, torch.float32):
        x = model_like_inputs(batch, dim, length, n_state, groups, dtype, args.x_proj, args.dt_rank)
        copies = dict(x, Bg=x["Bg"].contiguous(), Cg=x["Cg"].contiguous())
        with torch.no_grad():
            scan_triton_rows.ROWS_TUNING["lanes"] = lanes_values[0]
            first = scan_triton_rows.scan_by_rows(**x).float().clone()  # float32: .float() is the output itself
            # (label, module, lanes, inputs, ROWS_TUNING threads and num_warps or None for the defaults)
            runs = [(f"lanes {lanes}", scan_triton_rows, lanes, x, None, None) for lanes in lanes_values]
            runs += [(f"lanes {lanes_values[0]}, B/C contiguous copies", scan_triton_rows, lanes_values[0], copies,
                      None, None)]
            if args.compare_module:
                runs.append((args.compare_module, importlib.import_module(args.compare_module), None, x, None, None))
            if args.threads:
                runs = [(f"lanes {lanes_values[0]}, threads {t}, warps {w}", scan_triton_rows, lanes_values[0], x,
                         int(t), int(w))
                        for t in args.threads.split(",") for w in (args.warps or str(saved["num_warps"])).split(",")]
            for label, module, lanes, inputs, threads, warps in runs:
                scan_triton_rows.ROWS_TUNING.update(saved)
                if threads:  # this many threads for either dtype, no one-segment rule
                    scan_triton_rows.ROWS_TUNING.update(threads=threads, threads_16bit=threads, num_warps=warps,
                                                        one_segment_threads=2**40)
                if lanes is not None:
                    scan_triton_rows.ROWS_TUNING["lanes"] = lanes
                out = module.scan_by_rows(**inputs).float().clone()
                row = {"dtype": str(dtype).split(".")[-1], "kernel": label,
                       "gpu_ms": gpu_ms_per_call(lambda: module.scan_by_rows(**inputs), calls=30),
                       "rel_diff_vs_first": float((out - first).norm() / first.norm())}
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.model:
        from vivim_core.bench.model import bench_model

        device = torch.device("cuda")
        for lanes in lanes_values + [None]:
            if lanes is not None:
                scan_triton_rows.ROWS_TUNING["lanes"] = lanes
            result = bench_model("vivim-b3", device, "bf16-weights", batch=8, compile="reduce-overhead", repeats=20,
                                 ablation="basic" if lanes is None else None)
            row = {"model": "vivim-b3" + (" (basic)" if lanes is None else f", lanes {lanes}"),
                   "frames_per_s": result["frames_per_s"], "ms_per_batch": result["ms_per_batch"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
            torch.cuda.empty_cache()
    scan_triton_rows.ROWS_TUNING.update(saved)
    if args.out:
        with open(args.out, "w") as f:
            report = {"gpu": torch.cuda.get_device_name(), "shape": args.shape, "x_proj": args.x_proj, "rows": rows}
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
