"""The Gluon one-pass inference scan (`scan_gluon_onepass`) against the Triton one-pass kernel (GPU): parity
against the float64 sequential reference on several shapes and options, then GPU time per call at the issue's
stage-1 shape for each launch option.

    python benchmarks/tune_gluon_one_pass.py [--shape 4,128,20480,16] [--prefetch 0,1] [--maxnreg 0,128]
"""

from __future__ import annotations

import argparse
import itertools
import json

import torch

from vivim_core.bench.common import gpu_ms_per_call
from vivim_core.bench.scan import measured_bandwidth_gbs, scan_inputs, tuning_cases
from vivim_core.ops import scan_gluon_onepass, scan_triton
from vivim_core.ops.scan_reference import selective_scan_reference


def _scan(x: dict, kernel: str, softplus: bool = True) -> torch.Tensor:
    scan_triton.TUNING["inference_kernel"] = kernel
    with torch.no_grad():
        return scan_triton.selective_scan_triton(**x, delta_softplus=softplus)


def parity(device: torch.device) -> list[dict]:
    """Relative error (max |diff| / max |ref|) against the float64 reference, every row."""
    rows = []
    cases = [((2, 8, 4096, 16), torch.float32, {}), ((2, 8, 3000, 16), torch.float32, {}),
             ((1, 4, 2048, 8), torch.float32, {"z": None, "D": None, "delta_bias": None}),
             ((2, 6, 5000, 16), torch.bfloat16, {}), ((1, 3, 700, 16), torch.float32, {})]
    for (b, d, length, n), dtype, drop in cases:
        x = scan_inputs(b, d, length, n, device, dtype)
        x.update(drop)
        for softplus in (True, False):
            if not softplus:  # without softplus dt must be positive already (else exp overflows in every kernel)
                x = dict(x, delta=x["delta"].abs())
            ref = selective_scan_reference(**{k: (v.double() if torch.is_tensor(v) else v) for k, v in x.items()},
                                           delta_softplus=softplus)
            for kernel in ("one_pass", "gluon_one_pass"):
                out = _scan(x, kernel, softplus).double()
                err = ((out - ref).abs().max() / ref.abs().max()).item()
                rows.append({"shape": f"{b},{d},{length},{n}", "dtype": str(dtype).split(".")[-1],
                             "options": "no z/D/bias" if drop else "z, D, bias", "softplus": softplus,
                             "kernel": kernel, "rel_err": err, "finite": bool(torch.isfinite(out).all())})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="4,128,20480,16")
    parser.add_argument("--prefetch", default="0,1")
    parser.add_argument("--maxnreg", default="0,128")
    parser.add_argument("--paired", default="1", help="two states an iteration: 1, 0 or 0,1")
    parser.add_argument("--sequential", default="1", help="paired: rescan from the entering state: 0, 1 or 0,1")
    parser.add_argument("--shapes-of-work", default="8x4", help="steps a thread x warps a program, e.g. 8x4,4x8")
    parser.add_argument("--skip-parity", action="store_true")
    args = parser.parse_args()
    device = torch.device("cuda")
    print(torch.cuda.get_device_name(), flush=True)
    if not args.skip_parity:
        parity(device)
    bandwidth = measured_bandwidth_gbs(device)
    print(f"copy bandwidth {bandwidth:.0f} GB/s", flush=True)
    for dtype, x, floor in tuning_cases(args.shape, device, bandwidth):
        name = str(dtype).split(".")[-1]
        reference = _scan(x, "one_pass").float()
        for round_ in range(2):
            ms = gpu_ms_per_call(lambda: _scan(x, "one_pass"), calls=50)
            print(f"{name} round {round_} triton one_pass      {ms:.4f} ms  {ms / floor:.2f}x roofline", flush=True)
            for work, sequential, paired, prefetch, maxnreg in itertools.product(args.shapes_of_work.split(","),
                                                                     map(int, args.sequential.split(",")),
                                                                     map(int, args.paired.split(",")),
                                                                     map(int, args.prefetch.split(",")),
                                                                     map(int, args.maxnreg.split(","))):
                items, warps = map(int, work.split("x"))
                scan_gluon_onepass.GLUON_ONE_PASS_TUNING.update(prefetch_chunk=bool(prefetch), maxnreg=maxnreg or None,
                                                                paired=bool(paired), items=items, num_warps=warps,
                                                                sequential=bool(sequential))
                # (this sets one value for every dtype; the committed tuning holds one per element size)
                out = _scan(x, "gluon_one_pass").float()
                diff = ((out - reference).norm() / reference.norm()).item()
                ms = gpu_ms_per_call(lambda: _scan(x, "gluon_one_pass"), calls=50)
                print(f"{name} round {round_} gluon {work} seq {sequential} paired {paired} prefetch {prefetch} "
                      f"maxnreg {maxnreg:3d} {ms:.4f} ms  {ms / floor:.2f}x roofline  rel_diff_vs_one_pass {diff:.2e}",
                      flush=True)


if __name__ == "__main__":
    main()
