"""A/B timing of the chunked (PyTorch) scan against its version at another git revision, on the CPU.

    python benchmarks/compare_chunked_scan.py --against 7f212fb

Both versions run in one process on the same inputs, calls alternating, so a noisy machine affects both
alike. Prints the median forward and forward + backward times.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from vivim_core.bench.scan import scan_inputs
from vivim_core.ops import scan_chunked

ROOT = Path(__file__).resolve().parents[1]


def load_revision(revision: str):
    source = subprocess.run(["git", "show", f"{revision}:vivim_core/ops/scan_chunked.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "scan_chunked_at_revision.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("vivim_core.ops._scan_chunked_at_revision", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def median_ms(times: list[float]) -> float:
    return sorted(times)[len(times) // 2] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", required=True, help="git revision of the other version")
    parser.add_argument("--shape", default="1,64,4096,16", help="batch,dim,L,N")
    parser.add_argument("--repeats", type=int, default=12)
    args = parser.parse_args()
    b, d, length, n = (int(v) for v in args.shape.split(","))
    versions = {"this tree": scan_chunked, args.against: load_revision(args.against)}
    x = scan_inputs(b, d, length, n, torch.device("cpu"))
    xg = scan_inputs(b, d, length, n, torch.device("cpu"), requires_grad=True)
    fwd = {name: [] for name in versions}
    both = {name: [] for name in versions}
    with torch.no_grad():
        for module in versions.values():
            module.selective_scan_chunked(**x, delta_softplus=True)
        for _ in range(args.repeats):
            for name, module in versions.items():
                start = time.perf_counter()
                module.selective_scan_chunked(**x, delta_softplus=True)
                fwd[name].append(time.perf_counter() - start)
    for _ in range(max(3, args.repeats // 3)):
        for name, module in versions.items():
            start = time.perf_counter()
            module.selective_scan_chunked(**xg, delta_softplus=True).sum().backward()
            both[name].append(time.perf_counter() - start)
    print(f"chunked scan, shape b{b} d{d} L{length} N{n}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    for name in versions:
        print(f"  {name:>12s}: forward {median_ms(fwd[name]):7.1f} ms   forward + backward {median_ms(both[name]):7.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
