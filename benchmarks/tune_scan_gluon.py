"""Sweep the launch parameters of the Gluon scan kernels on a CUDA GPU and print a table: how the module constants
of `vivim_core/ops/scan/gluon/{one_pass,one_pass_tma}.py` were chosen. The Triton one-pass kernel is the first row
of every call, as the baseline.

    python benchmarks/tune_scan_gluon.py --kernel one_pass                  # b4 d128 L20480 N16, fp32 and bf16
    python benchmarks/tune_scan_gluon.py --kernel one_pass --prefetch 1 --maxnreg 0,128 --shape model
    python benchmarks/tune_scan_gluon.py --kernel one_pass_tma --settings "1,2,2 1,3,2 2,2,2 4,3,4"   # Hopper

--shape "batch,dim,L,N[,groups]" (default 4,128,20480,16) random channel-major inputs, or "model": the model's
scan calls at vivim-b3's stages laid out channel-major. The TMA kernel takes float32 B and C only. Each
configuration's kernel time is a CUDA-graph replay; rel_diff compares its output with the Triton kernel's.
"""

from __future__ import annotations

import argparse
import itertools

import torch

from vivim_core.bench.scan import launch, sweep, tuning_calls
from vivim_core.ops.scan.gluon import common, one_pass, one_pass_tma
from vivim_core.ops.scan.triton.one_pass import scan_one_pass


def _numbers(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def one_pass_configurations(args) -> dict:
    configurations = {"gluon defaults": lambda x: launch(one_pass.scan_one_pass_gluon, x)}
    for work, prefetch, maxnreg in itertools.product(args.work.split(","), _numbers(args.prefetch),
                                                     _numbers(args.maxnreg)):
        items, warps = (int(v) for v in work.split("x"))
        configurations[f"{items} steps x {warps} warps, prefetch {prefetch}, maxnreg {maxnreg}"] = (
            lambda x, i=items, w=warps, p=prefetch, m=maxnreg: launch(
                one_pass.scan_one_pass_gluon, x, items=i, num_warps=w, prefetch=bool(p), maxnreg=m))
    return configurations


def tma_configurations(args) -> dict:
    configurations = {"gluon one_pass": lambda x: launch(one_pass.scan_one_pass_gluon, x)}
    for triple in args.settings.split():
        rows, stages, span = (int(v) for v in triple.split(","))
        configurations[f"tma rows {rows} stages {stages} span {span}"] = (
            lambda x, r=rows, s=stages, p=span: launch(one_pass_tma.scan_one_pass_tma, x, rows=r, stages=s, span=p))
    return configurations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kernel", choices=("one_pass", "one_pass_tma"), required=True)
    parser.add_argument("--shape", default="4,128,20480,16", help="batch,dim,L,N[,groups] or 'model'")
    parser.add_argument("--work", default="8x4,4x8", help="one_pass: steps a thread x warps a program")
    parser.add_argument("--prefetch", default="0,1", help="one_pass: the chunk's last pair loads the next chunk's dt, u")
    parser.add_argument("--maxnreg", default="0,128", help="one_pass: register caps (0: none)")
    parser.add_argument("--settings", default="1,2,2 1,3,2 2,2,2 4,3,4",
                        help="one_pass_tma: 'rows,stages,span ...' (channels a program, B/C buffers, states a buffer)")
    parser.add_argument("--out", default=None, help="also write the rows here as JSON")
    args = parser.parse_args()
    device = torch.device("cuda")
    if not common.available() or (args.kernel == "one_pass_tma" and not common.tma_available()):
        raise SystemExit("this Triton has no Gluon (with Hopper TMA for one_pass_tma)")
    configurations = {"triton one_pass": lambda x: launch(scan_one_pass, x)}
    configurations.update((one_pass_configurations if args.kernel == "one_pass" else tma_configurations)(args))
    calls = tuning_calls(args.shape, device, layout="channels")
    if args.kernel == "one_pass_tma":
        calls = ((label, x) for label, x in calls if x["B"].dtype == torch.float32)
    sweep(f"Gluon scan kernel '{args.kernel}'", calls, configurations, device, out=args.out)


if __name__ == "__main__":
    main()
