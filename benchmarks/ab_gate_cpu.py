"""A/B on the CPU of where ST-Mamba applies its SiLU(z) gate: once after the branch sum
(`SpatioTemporalMamba.gate_after_branches` True, the CPU default) or inside each branch's scan (False), timed
alternately in one process: vivim-tiny inference on one 256x256 clip of T=5, the `auto` scan backend.

    python benchmarks/ab_gate_cpu.py [--rounds 12]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vivim_core.model import build_model
from vivim_core.model.temporal_mamba import SpatioTemporalMamba
from vivim_core.ops import chosen_backend


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = build_model("vivim-tiny").eval()
    clip = torch.randn(1, 5, 3, 256, 256)
    times = {True: [], False: []}
    print(f"vivim-tiny 1x5x256x256, {torch.get_num_threads()} threads, scan backend {chosen_backend('scan', False)}")
    with torch.inference_mode():
        for gate_after in times:  # warm-up
            SpatioTemporalMamba.gate_after_branches = gate_after
            model(clip)
        for _ in range(args.rounds):
            for gate_after in times:
                SpatioTemporalMamba.gate_after_branches = gate_after
                start = time.perf_counter()
                model(clip)
                times[gate_after].append(time.perf_counter() - start)
    SpatioTemporalMamba.gate_after_branches = None
    for gate_after, values in times.items():
        where = "after the branch sum" if gate_after else "inside each scan   "
        print(f"  gate {where}: median {statistics.median(values) * 1e3:.1f} ms, min {min(values) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
