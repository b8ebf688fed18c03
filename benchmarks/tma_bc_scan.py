"""The TMA-staged B/C Gluon scan (`scan_gluon_tma_bc`) at several (rows, stages, span) settings against the Gluon
one-pass kernel (GPU): outputs compared at the issue's stage-1 shape (or --shape), then GPU time per call for each,
interleaved rounds: kernels alone (CUDA-graph replay, `gpu_ms_graphed`) and back-to-back calls (which read the
host's launch overhead where it exceeds the kernel's time).

    python benchmarks/tma_bc_scan.py [--rounds 5] [--out results.json] [--settings "1,2,2 2,3,4"] [--shape b,d,L,N]
    ncu --clock-control none -k regex:_tma_bc -c 1 --section SpeedOfLight --section MemoryWorkloadAnalysis \\
        --section WarpStateStats python benchmarks/tma_bc_scan.py --rounds 1
"""

from __future__ import annotations

import argparse
import json
import traceback

import torch

from vivim_core.bench.common import environment, gpu_ms_graphed, gpu_ms_per_call
from vivim_core.bench.scan import measured_bandwidth_gbs, roofline_ms, scan_inputs
from vivim_core.ops import scan_gluon_tma_bc, scan_triton

DEFAULT_SETTINGS = "1,2,2 1,3,2 2,2,2 4,3,4"  # rows,stages,span of each TMA-kernel setting timed


def parse_settings(text: str) -> list[tuple[str, dict | None]]:
    """'rows,stages,span ...' -> the one-pass kernel first, then each TMA-kernel setting."""
    settings = [("gluon_one_pass", None)]
    for triple in text.split():
        rows, stages, span = (int(v) for v in triple.split(","))
        settings.append(("gluon_tma_bc", {"rows": rows, "stages": stages, "span": span}))
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=None)
    parser.add_argument("--shape", default="4,128,20480,16", help="batch,dim,L,N (default: the issue's stage 1)")
    parser.add_argument("--settings", default=DEFAULT_SETTINGS, help="'rows,stages,span ...' (default: %(default)s)")
    args = parser.parse_args()
    SETTINGS = parse_settings(args.settings)
    device = torch.device("cuda")
    env = environment(device)
    rate = measured_bandwidth_gbs(device)
    print(env.get("gpu"), env["date"], f"copy rate {rate:.0f} GB/s (GPU clock)", flush=True)
    batch, dim, length, n_state = (int(v) for v in args.shape.split(","))
    x = scan_inputs(batch, dim, length, n_state, device, torch.float32)
    roof = roofline_ms(batch, dim, length, n_state, torch.float32, rate)
    print("shape", args.shape, flush=True)
    saved = dict(scan_gluon_tma_bc.TMA_BC_TUNING)

    def use(kernel, tuning):
        scan_triton.TUNING["inference_kernel"] = kernel
        scan_gluon_tma_bc.TMA_BC_TUNING.update(saved, **(tuning or {}))

    def call():
        with torch.no_grad():
            return scan_triton.selective_scan_triton(**x, delta_softplus=True)

    use("gluon_one_pass", None)
    reference = call().double()
    rows, times = [], {i: [] for i in range(len(SETTINGS))}
    for i, (kernel, tuning) in enumerate(SETTINGS):
        use(kernel, tuning)
        row = {"kernel": kernel, "tuning": tuning}
        try:  # a setting that fails to compile or launch is reported and left out of the timing
            row["chosen"] = scan_triton._inference_kernel(x["u"], x["delta"], x["z"], x["B"], x["C"], n_state)
            row["max_rel_diff_vs_one_pass"] = ((call().double() - reference).abs().max()
                                               / reference.abs().max()).item()
        except Exception as error:  # noqa: BLE001 - an experiment's failure is a result
            row["error"] = f"{type(error).__name__}: {error}"[:2000]
            traceback.print_exc()
        rows.append(row)
        print(json.dumps(row), flush=True)
    timed = [i for i, row in enumerate(rows) if "error" not in row]
    graph = {i: [] for i in timed}
    for _ in range(args.rounds):
        for i in timed:
            use(*SETTINGS[i])
            times[i].append(gpu_ms_per_call(call, 20))
            graph[i].append(gpu_ms_graphed(call, 20, replays=1))
    for i in timed:
        row = rows[i]
        ms = sorted(times[i])[len(times[i]) // 2]
        g_ms = sorted(graph[i])[len(graph[i]) // 2]
        row.update(gpu_ms_median=ms, gpu_ms_all=times[i], graph_ms_median=g_ms, graph_ms_all=graph[i],
                   x_roofline=g_ms / roof, x_roofline_back_to_back=ms / roof)
        print(f"  {row['kernel']:16s} {json.dumps(row['tuning']):36s} graph {g_ms:.4f} ms {g_ms / roof:.2f}x roofline "
              f"(rounds {' '.join(f'{t:.4f}' for t in graph[i])}); back-to-back {ms:.4f} ms "
              f"(rounds {' '.join(f'{t:.4f}' for t in times[i])})", flush=True)
    use("auto", None)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"environment": env, "copy_rate_gbs": rate, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
