"""Experiment: the row scan kernel reading u, delta, z and writing out channel-major (the model's (B, D, L)
today, each thread's row contiguous, neighbouring threads L apart) against token-major ((B, L, D) memory,
neighbouring threads' rows adjacent: coalesced). Same kernel; only the strides differ.

    python benchmarks/row_kernel_layouts.py [--shapes 8,384,20480,16,3 4,128,20480,16,1]
"""

from __future__ import annotations

import argparse
import json

import torch

from vivim_core.bench.common import gpu_ms_per_call
from vivim_core.ops import scan_triton_rows


def inputs(batch, dim, length, n, groups, dtype, token_major):
    def seq(scale=1.0):
        if token_major:
            return (torch.randn(batch, length, dim, device="cuda") * scale).to(dtype).transpose(1, 2)
        return (torch.randn(batch, dim, length, device="cuda") * scale).to(dtype)
    A = -torch.rand(dim, n, device="cuda") * 4 - 0.1
    B = torch.randn(batch, groups, n, length, device="cuda").to(dtype)
    C = torch.randn(batch, groups, n, length, device="cuda").to(dtype)
    return dict(u=seq(), delta=seq(0.5), A=A, Bg=B, Cg=C, D=torch.randn(dim, device="cuda"), z=seq(),
                delta_bias=torch.randn(dim, device="cuda") * 0.5, delta_softplus=True, out=seq())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", nargs="+", default=["8,384,20480,16,3", "4,128,20480,16,1"])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    for shape in args.shapes:
        b, d, length, n, g = (int(v) for v in shape.split(","))
        for dtype in (torch.float32, torch.bfloat16):
            results = {}
            for token_major in (False, True, False, True):  # twice, alternating
                x = inputs(b, d, length, n, g, dtype, token_major)
                ms = gpu_ms_per_call(lambda: scan_triton_rows.scan_by_rows(**x), calls=50)  # noqa: B023
                key = "token_major" if token_major else "channel_major"
                results[key] = min(ms, results.get(key, float("inf")))
            # the same values in both layouts give the same output
            xc = inputs(b, d, length, n, g, dtype, False)
            xt = {k: v.transpose(1, 2).contiguous().transpose(1, 2) if k in ("u", "delta", "z", "out") else v
                  for k, v in xc.items()}
            a = scan_triton_rows.scan_by_rows(**xc).float()
            t = scan_triton_rows.scan_by_rows(**xt).float()
            err = ((a - t).abs().max() / a.abs().max()).item()
            row = dict(shape=shape, dtype=str(dtype).split(".")[-1], **results,
                       speedup=results["channel_major"] / results["token_major"], max_rel_diff=err)
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(device=torch.cuda.get_device_name(), rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
