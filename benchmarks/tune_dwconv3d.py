"""Sweep the tiles of the DSF's depthwise conv3d + GELU kernels on a CUDA GPU at vivim-b3's four stages and print a
table: how `GENERIC_TILE`, `BF16_TILE` (vivim_core/ops/conv/dwconv3d_triton.py) and `BF16_MIN_PLANE`
(vivim_core/ops/conv/dwconv3d.py, the frame size from which bf16 clips take the bf16 kernel) were chosen.

    python benchmarks/tune_dwconv3d.py [--batch 8] [--frames 5] [--size 256] [--out dwconv3d.json]

Inputs as the model's DSF gets them (channels-last, 4 x the stage's width, bfloat16); kernel time per call
(CUDA-graph replay) against the time to read the clip once and write the output once at the measured copy rate;
max_rel_diff against the generic kernel's default tile.
"""

from __future__ import annotations

import argparse
import json

import torch

from vivim_core.bench.common import environment, gpu_ms_graphed, print_table, write_report
from vivim_core.bench.scan import measured_bandwidth_gbs
from vivim_core.config import get_config
from vivim_core.ops.conv import dwconv3d_triton

GENERIC = [{"block_w": 16, "block_c": 128, "warps": 4}, {"block_w": 32, "block_c": 64, "warps": 4},
           {"block_w": 8, "block_c": 128, "warps": 4}, {"block_w": 16, "block_c": 64, "warps": 2}]
BF16 = [{"rows": 2, "block_w": 16, "block_p": 64, "warps": 4}, {"rows": 2, "block_w": 16, "block_p": 32, "warps": 4},
        {"rows": 1, "block_w": 16, "block_p": 64, "warps": 4}, {"rows": 4, "block_w": 8, "block_p": 32, "warps": 4},
        {"rows": 2, "block_w": 32, "block_p": 32, "warps": 8}, {"rows": 2, "block_w": 16, "block_p": 16, "warps": 2}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", default=None, help="also write the rows here as JSON")
    args = parser.parse_args()
    device = torch.device("cuda")
    rate = measured_bandwidth_gbs(device)
    print(f"{torch.cuda.get_device_name(device)}, copy rate {rate:.0f} GB/s", flush=True)
    config = get_config("vivim-b3")
    rows = []
    for stage, dim in enumerate(config.embed_dims):
        side, hidden = args.size // (4 * 2**stage), dim * config.dsf_ratio
        x = torch.randn(args.batch, args.frames, side, side, hidden, device=device, dtype=torch.bfloat16)
        weight = torch.randn(hidden, 1, 3, 3, 3, device=device, dtype=torch.bfloat16)
        bias = torch.randn(hidden, device=device, dtype=torch.bfloat16)
        roofline = 2 * x.numel() * x.element_size() / (rate * 1e9) * 1000
        with torch.inference_mode():
            reference = dwconv3d_triton.dwconv3d_gelu_generic(x, weight, bias).float()
            for kernel, tiles in (("generic", GENERIC), ("bf16", BF16)):
                launcher = getattr(dwconv3d_triton, f"dwconv3d_gelu_{kernel}")
                for tile in tiles:
                    out = launcher(x, weight, bias, **tile).float()
                    ms = gpu_ms_graphed(lambda: launcher(x, weight, bias, **tile))
                    rows.append({"stage": stage + 1, "frame": f"{side}x{side}", "channels": hidden, "kernel": kernel,
                                 "tile": json.dumps(tile), "kernel_ms": ms, "x_roofline": ms / roofline,
                                 "max_rel_diff": float((out - reference).abs().max() / reference.abs().max())})
                    print(rows[-1], flush=True)
        torch.cuda.empty_cache()
    print_table("DSF depthwise conv3d + GELU", rows,
                ["stage", "frame", "channels", "kernel", "tile", "kernel_ms", "x_roofline", "max_rel_diff"])
    if args.out:
        write_report(args.out, {"environment": environment(device), "copy_rate_gbs": rate, "rows": rows})


if __name__ == "__main__":
    main()
