"""A/B of the Temporal Mamba blocks' two inference layouts inside a whole model (GPU): channel-major (B, D, L)
and token-major (B, L, D) (`SpatioTemporalMamba.layout`), timed alternately in one process, with the "basic"
ablation (no Mamba) in the same run for the vivim/basic ratio; channel- and token-major with the SiLU(z) gate inside
each branch's scan (`gate_after_branches` False: the eager default on CUDA), token-major also with the gate once
after the branch sum (True: the default under torch.compile).
Prints frames/s per setting.

    python benchmarks/ab_token_layout.py [--compile reduce-overhead] [--batch 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json

import torch

from vivim_core.bench.model import bench_model
from vivim_core.model.temporal_mamba import SpatioTemporalMamba


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", default="vivim-b3")
    parser.add_argument("--mode", default="bf16-weights")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--compile", default=None, help="torch.compile mode (default: eager)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=None, help="append JSON lines here")
    args = parser.parse_args()
    device = torch.device("cuda")
    print(torch.cuda.get_device_name(), f"{args.variant} {args.mode} batch {args.batch} compile={args.compile}",
          flush=True)
    for round_ in range(args.rounds):
        results = {}
        for layout in ("channels", "tokens", "tokens_gate_after_sum", "basic"):
            SpatioTemporalMamba.layout = "auto" if layout == "basic" else layout.split("_")[0]
            SpatioTemporalMamba.gate_after_branches = {"tokens_gate_after_sum": True, "basic": None}.get(layout, False)
            row = bench_model(args.variant, device, args.mode, batch=args.batch, compile=args.compile, repeats=20,
                              ablation="basic" if layout == "basic" else None)
            results[layout] = row["frames_per_s"]
            print(f"  round {round_}  {layout:20s} {row['ms_per_batch']:.2f} ms/batch  {row['frames_per_s']:.0f} "
                  f"frames/s", flush=True)
            torch.cuda.empty_cache()
        summary = {"round": round_, "compile": args.compile, **results,
                   "tokens_vs_channels": results["tokens"] / results["channels"],
                   "vivim_vs_basic_tokens": results["tokens"] / results["basic"],
                   "vivim_vs_basic_tokens_gate_after_sum": results["tokens_gate_after_sum"] / results["basic"],
                   "vivim_vs_basic_channels": results["channels"] / results["basic"]}
        print("  " + json.dumps(summary), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(summary) + "\n")
    SpatioTemporalMamba.layout = "auto"
    SpatioTemporalMamba.gate_after_branches = None


if __name__ == "__main__":
    main()
