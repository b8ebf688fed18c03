"""EXPERIMENT: the shared-B/C Gluon scan (`scan_gluon_shared_bc`) against the Gluon one-pass kernel (GPU): outputs
compared at the issue's stage-1 shape, then GPU time per call for each (rows, stages) setting, interleaved rounds.

    python benchmarks/shared_bc_scan.py [--rounds 5] [--out results.json]
    ncu --clock-control none -k regex:_shared_bc -c 1 --section SpeedOfLight --section MemoryWorkloadAnalysis \\
        --section WarpStateStats python benchmarks/shared_bc_scan.py --rounds 1
"""

from __future__ import annotations

import argparse
import json

import torch

from vivim_core.bench.common import environment, gpu_ms_per_call
from vivim_core.bench.scan import measured_bandwidth_gbs, roofline_ms, scan_inputs
from vivim_core.ops import scan_gluon_shared_bc, scan_triton

SETTINGS = [("gluon_one_pass", None)] + [
    ("gluon_shared_bc", {"rows": rows, "stages": stages, "span": span})
    for rows, stages, span in ((4, 3, 4), (4, 2, 4), (2, 3, 4), (4, 2, 8), (2, 2, 8))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    device = torch.device("cuda")
    env = environment(device)
    rate = measured_bandwidth_gbs(device)
    print(env.get("gpu"), env["date"], f"copy rate {rate:.0f} GB/s (GPU clock)", flush=True)
    x = scan_inputs(4, 128, 20480, 16, device, torch.float32)
    roof = roofline_ms(4, 128, 20480, 16, torch.float32, rate)
    saved = dict(scan_gluon_shared_bc.SHARED_BC_TUNING)

    def use(kernel, tuning):
        scan_triton.TUNING["inference_kernel"] = kernel
        scan_gluon_shared_bc.SHARED_BC_TUNING.update(saved, **(tuning or {}))

    def call():
        with torch.no_grad():
            return scan_triton.selective_scan_triton(**x, delta_softplus=True)

    use("gluon_one_pass", None)
    reference = call().double()
    rows, times = [], {i: [] for i in range(len(SETTINGS))}
    for i, (kernel, tuning) in enumerate(SETTINGS):
        use(kernel, tuning)
        chosen = scan_triton._inference_kernel(x["u"], x["delta"], x["z"], x["B"], x["C"], 16)
        err = ((call().double() - reference).abs().max() / reference.abs().max()).item()
        rows.append({"kernel": kernel, "tuning": tuning, "chosen": chosen, "max_rel_diff_vs_one_pass": err})
        print(json.dumps(rows[-1]), flush=True)
    for _ in range(args.rounds):
        for i, (kernel, tuning) in enumerate(SETTINGS):
            use(kernel, tuning)
            times[i].append(gpu_ms_per_call(call, 20))
    for i, row in enumerate(rows):
        ms = sorted(times[i])[len(times[i]) // 2]
        row.update(gpu_ms_median=ms, gpu_ms_all=times[i], x_roofline=ms / roof)
        print(f"  {row['kernel']:16s} {json.dumps(row['tuning']):30s} {ms:.4f} ms  {ms / roof:.2f}x roofline  "
              f"rounds {' '.join(f'{t:.4f}' for t in times[i])}", flush=True)
    use("auto", None)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"environment": env, "copy_rate_gbs": rate, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
