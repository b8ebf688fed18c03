"""The one-pass inference scans (`warps`, `one_pass`) against the row and chunk kernels, with their launch
configurations (GPU).

    python benchmarks/tune_one_pass.py --out results.json
    python benchmarks/tune_one_pass.py --kernels one_pass --items 8 --warps 4 --rows 1 --pair-states 0,1 \
        --hoist-z 0,1 --maxnreg 0,128 --shapes 4,128,20480,16

For each shape ("batch,dim,L,N[,groups]") and dtype: wall time per call (synchronised, host included),
GPU time per call (back-to-back calls) and both against the HBM roofline of `vivim-core benchmark`.
"""

from __future__ import annotations

import argparse
import itertools
import json

import torch

from vivim_core.bench.common import environment, gpu_ms_per_call, print_table, time_call
from vivim_core.bench.scan import measured_bandwidth_gbs, tuning_cases
from vivim_core.ops import scan_triton, scan_triton_onepass, scan_triton_warps
from vivim_core.ops.scan_reference import selective_scan_reference


def _time(x: dict, device: torch.device) -> tuple[float, float]:
    def call():
        return scan_triton.selective_scan_triton(**x, delta_softplus=True)

    with torch.no_grad():
        wall = time_call(call, device, warmup=3, repeats=30)["median_ms"]
        gpu = gpu_ms_per_call(call, calls=30)
    return wall, gpu


def _compiled_variants() -> list[str]:
    """Registers and spills of every compiled variant of the one-pass kernels (occupancy)."""
    found = []
    for jit in (scan_triton_onepass._one_pass_kernel, scan_triton_warps._warps_kernel):
        for per_device in getattr(jit, "device_caches", {}).values():
            for kernel in per_device[0].values():
                meta = kernel.metadata
                found.append(f"{jit.__name__}: warps {meta.num_warps}, registers {getattr(kernel, 'n_regs', '?')}, "
                             f"spills {getattr(kernel, 'n_spills', '?')}")
    return found


def _measure(table: list, label: str, shape: str, name: str, x: dict, ref, floor: float, device) -> None:
    """One configuration: parity on the first rows against the float64 reference, wall and GPU time."""
    try:
        with torch.no_grad():
            mine = scan_triton.selective_scan_triton(**x, delta_softplus=True)[:1, :2].double()
        err = ((mine - ref).abs().max() / ref.abs().max()).item()
        wall, gpu = _time(x, device)
    except Exception as exc:  # a configuration that does not compile is reported, not fatal
        table.append({"shape": shape, "dtype": name, "kernel": label, "error": str(exc)[:80]})
        return
    table.append({"shape": shape, "dtype": name, "kernel": label, "wall_ms": wall, "gpu_ms": gpu,
                  "x_roofline": wall / floor, "x_roofline_gpu": gpu / floor, "rel_err_vs_reference": err})
    print(table[-1], flush=True)


def _numbers(values: str) -> list[int]:
    return [int(v) for v in values.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", default="4,128,20480,16;8,384,20480,16,3")
    parser.add_argument("--kernels", default="chunks,rows,one_pass,warps", help="which kernels to time")
    parser.add_argument("--items", default="8,16,32", help="one_pass: steps per thread")
    parser.add_argument("--warps", default="2,4,8", help="one_pass: warps per program")
    parser.add_argument("--rows", default="1,2,4", help="one_pass: rows (channels) per program")
    parser.add_argument("--pair-states", default="0", help="one_pass: two states a loop iteration (0,1)")
    parser.add_argument("--hoist-z", default="0", help="one_pass: the chunk's z loaded before the state loop (0,1)")
    parser.add_argument("--maxnreg", default="0", help="one_pass: register caps to try (0: none)")
    parser.add_argument("--lane-items", default="8,16", help="warps kernel: steps per lane")
    parser.add_argument("--split", default="1,2,4", help="warps kernel: warps per row")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    kernels = args.kernels.split(",")
    one_pass_configs = warps_configs = []
    if "one_pass" in kernels:
        one_pass_configs = list(itertools.product(*map(_numbers, (args.items, args.warps, args.rows, args.pair_states,
                                                                  args.hoist_z, args.maxnreg))))
    if "warps" in kernels:
        warps_configs = list(itertools.product(_numbers(args.lane_items), _numbers(args.split)))
    device = torch.device("cuda")
    bandwidth = measured_bandwidth_gbs(device)
    table = []
    for shape in args.shapes.split(";"):
        parts = shape.split(",")
        groups = int(parts[4]) if len(parts) > 4 else 1
        for dtype, x, floor in tuning_cases(",".join(parts[:4]), device, bandwidth, groups=groups):
            name = str(dtype).split(".")[-1]
            with torch.no_grad():  # for parity: the float64 reference on the first 2 rows
                small = {k: (v[:1, :2].double() if k in ("u", "delta", "z") else
                             v[:1, 0].double() if k in ("B", "C") and groups > 1 else v[:1].double()
                             if k in ("B", "C") else v[:2].double()) for k, v in x.items()}
                ref = selective_scan_reference(**small, delta_softplus=True)
            for kernel in [k for k in ("chunks", "rows") if k in kernels]:
                scan_triton.TUNING["inference_kernel"] = kernel
                wall, gpu = _time(x, device)
                table.append({"shape": shape, "dtype": name, "kernel": kernel, "wall_ms": wall, "gpu_ms": gpu,
                             "x_roofline": wall / floor, "x_roofline_gpu": gpu / floor})
                print(table[-1], flush=True)
            scan_triton.TUNING["inference_kernel"] = "one_pass"
            for items, warps, rows_per_program, pair, hoist, cap in one_pass_configs:
                scan_triton_onepass.ONE_PASS_TUNING.update(items=items, num_warps=warps, rows=rows_per_program,
                                                           pair_states=bool(pair), hoist_z=bool(hoist),
                                                           maxnreg=cap or None)
                label = (f"one_pass i{items} w{warps} r{rows_per_program}" + (" pair" if pair else "")
                         + (" hoist_z" if hoist else "") + (f" maxnreg {cap}" if cap else ""))
                _measure(table, label, shape, name, x, ref, floor, device)
            scan_triton_onepass.ONE_PASS_TUNING.update(pair_states=False, hoist_z=False, maxnreg=None)
            scan_triton.TUNING["inference_kernel"] = "warps"
            for items, split in warps_configs:
                scan_triton_warps.WARPS_TUNING.update(items=items, split=split)
                _measure(table, f"warps i{items} s{split}", shape, name, x, ref, floor, device)
    scan_triton.TUNING["inference_kernel"] = "auto"
    for compiled in _compiled_variants():
        print("one-pass kernel variant:", compiled)
    print(f"measured copy bandwidth {bandwidth:.0f} GB/s")
    print_table("inference scan kernels", table, ["shape", "dtype", "kernel", "wall_ms", "gpu_ms", "x_roofline",
                                                 "x_roofline_gpu", "rel_err_vs_reference", "error"])
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"environment": environment(device), "bandwidth_gbs": bandwidth, "rows": table}, f, indent=1)


if __name__ == "__main__":
    main()
