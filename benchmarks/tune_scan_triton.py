"""Sweep the launch parameters of the Triton scan kernels on a CUDA GPU and print a table: how the module constants
of `vivim_core/ops/scan/triton/{chunk,rows,one_pass}.py` were chosen.

    python benchmarks/tune_scan_triton.py --kernel rows                   # the model's calls, vivim-b3's 4 stages
    python benchmarks/tune_scan_triton.py --kernel one_pass --shape 4,128,20480,16
    python benchmarks/tune_scan_triton.py --kernel chunk                  # training: forward + backward
    python benchmarks/tune_scan_triton.py --kernel rows --threads 135168,270336 --warps 1 --out rows.json

--shape model (the default) times the model's own scan call at each encoder stage (`bench.scan.tuning_calls`;
token-major for the row kernel, channel-major for the others); "batch,dim,L,N[,groups]" random channel-major
inputs in float32 and bfloat16. Each configuration's kernel time is a CUDA-graph replay; rel_diff compares its
output with the first configuration's (the kernel's defaults).
"""

from __future__ import annotations

import argparse
import itertools

import torch

from vivim_core.bench.scan import launch, sweep, tuning_calls
from vivim_core.ops.scan.common import as_groups
from vivim_core.ops.scan.triton import chunk, one_pass, rows


def _numbers(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def row_configurations(args) -> dict:
    configurations = {"defaults": lambda x: launch(rows.scan_rows, x)}
    for warps, threads in itertools.product(_numbers(args.warps or "1,2,4"),
                                            _numbers(args.threads or "67584,135168,270336,540672")):
        configurations[f"warps {warps} threads {threads}"] = (
            lambda x, w=warps, t=threads: launch(rows.scan_rows, x, num_warps=w, threads=t))
    return configurations


def one_pass_configurations(args) -> dict:
    configurations = {"defaults": lambda x: launch(one_pass.scan_one_pass, x)}
    for items, warps, per_program in itertools.product(_numbers(args.items), _numbers(args.warps or "2,4,8"),
                                                       _numbers(args.rows)):
        configurations[f"items {items} warps {warps} rows {per_program}"] = (
            lambda x, i=items, w=warps, r=per_program: launch(one_pass.scan_one_pass, x, items=i, num_warps=w, rows=r))
    return configurations


def _train_step(x: dict, block_l: int | None = None, warps: int = chunk.NUM_WARPS, stages: int = chunk.NUM_STAGES,
                backward_warps: int = chunk.BACKWARD_NUM_WARPS) -> torch.Tensor:
    """The chunk kernels' forward (saving states) and backward on x; returns the gradient of u."""
    u = x["u"].detach()
    batch, _, length = u.shape
    blocks = {4: block_l, 2: block_l} if block_l else chunk.BLOCK_L
    Bg, Cg = as_groups(x["B"].detach(), batch, length), as_groups(x["C"].detach(), batch, length)
    rest = [x[k].detach() if x.get(k) is not None else None for k in ("D", "z", "delta_bias")]
    out = torch.empty_like(u)
    states = chunk.chunk_forward(u, x["delta"].detach(), x["A"].detach(), Bg, Cg, *rest, True, out, save_states=True,
                                 block_l=blocks, num_warps=warps, num_stages=stages)
    grads = chunk.chunk_backward(u, x["delta"].detach(), x["A"].detach(), Bg, Cg, *rest, True, states,
                                 torch.ones_like(u), block_l=blocks, num_warps=backward_warps)
    return grads["u"]


def chunk_configurations(args) -> dict:
    configurations = {"defaults": _train_step}
    for block_l, warps, stages, backward_warps in itertools.product(_numbers(args.block_l), _numbers(args.warps or "1,2,4"),
                                                                    _numbers(args.stages), _numbers(args.backward_warps)):
        configurations[f"block {block_l} warps {warps} stages {stages} bwd warps {backward_warps}"] = (
            lambda x, b=block_l, w=warps, s=stages, bw=backward_warps: _train_step(x, b, w, s, bw))
    return configurations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kernel", choices=("rows", "one_pass", "chunk"), required=True)
    parser.add_argument("--shape", default="model", help="'model' or batch,dim,L,N[,groups] (default: model)")
    parser.add_argument("--warps", default=None, help="warps a program (rows, one_pass: forward; chunk: forward)")
    parser.add_argument("--threads", default=None, help="rows: threads to aim for (sets the segments)")
    parser.add_argument("--items", default="4,8,16", help="one_pass: steps a thread")
    parser.add_argument("--rows", default="1,2", help="one_pass: channels a program")
    parser.add_argument("--block-l", default="64,128,256", help="chunk: steps a chunk")
    parser.add_argument("--stages", default="2,3", help="chunk: software-pipelining stages of the forward")
    parser.add_argument("--backward-warps", default="4,8", help="chunk: warps of a backward program")
    parser.add_argument("--out", default=None, help="also write the rows here as JSON")
    args = parser.parse_args()
    device = torch.device("cuda")
    training = args.kernel == "chunk"
    layout = "tokens" if args.kernel == "rows" else "channels"
    configurations = {"rows": row_configurations, "one_pass": one_pass_configurations,
                      "chunk": chunk_configurations}[args.kernel](args)
    calls = tuning_calls(args.shape, device, training=training, layout=layout)
    sweep(f"Triton scan kernel '{args.kernel}'", calls, configurations, device, backward=training, out=args.out)


if __name__ == "__main__":
    main()
