"""Show versions, the compute device, which scan/conv backends are installed and which one runs,
and the known model variants. With --variant, the variant's config and parameter count.

examples:
  vivim-core info
  vivim-core info --variant vivim-b3
  vivim-core info --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform

HELP = "versions, device, scan backends and model variants"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", metavar="NAME",
                        help="also show this variant's config and parameter count (e.g. vivim-tiny, vivim-b3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def collect(variant: str | None) -> dict:
    import torch

    from .. import __version__
    from ..config import VARIANTS, get_config
    from ..engine.checkpoint import parameter_count
    from ..ops import backend_status, chosen_backend

    cuda = torch.cuda.is_available()
    info = {
        "vivim_core": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda_available": cuda,
        "device": torch.cuda.get_device_name(0) if cuda else f"cpu ({platform.processor() or platform.machine()})",
        "cpu_threads": torch.get_num_threads(),
        "scan_backends": backend_status("scan"),
        "conv_backends": backend_status("conv"),
        "chosen_scan_backend": {"cpu": chosen_backend("scan", False), "cuda": chosen_backend("scan", True) if cuda else None},
        "chosen_conv_backend": {"cpu": chosen_backend("conv", False), "cuda": chosen_backend("conv", True) if cuda else None},
        "variants": {name: v.description for name, v in VARIANTS.items()},
    }
    if variant:
        config = get_config(variant)
        info["variant"] = {"name": config.variant, "parameters": parameter_count(config), "config": config.to_dict()}
    return info


def _print_text(info: dict) -> None:
    print(f"vivim-core {info['vivim_core']}  (torch {info['torch']}, Python {info['python']})")
    print(f"device:       {info['device']}" + ("" if info["cuda_available"] else f", {info['cpu_threads']} threads"))
    for kind in ("scan", "conv"):
        chosen = info[f"chosen_{kind}_backend"]
        where = f"cpu -> {chosen['cpu']}" + (f", cuda -> {chosen['cuda']}" if chosen["cuda"] else "")
        print(f"{kind} backends: {where}")
        for name, status in info[f"{kind}_backends"].items():
            state = "available" if status["available"] else f"not available ({status['reason'] or 'needs CUDA'})"
            hint = "" if status["available"] else f"\n{'':18}install: {status['install']}"
            print(f"  {name:14s}  {state}{hint}")
    print("variants:")
    for name, description in info["variants"].items():
        print(f"  {name:12s}  {description}")
    if "variant" in info:
        v = info["variant"]
        print(f"\n{v['name']}: {v['parameters']:,} parameters ({v['parameters'] / 1e6:.1f} M)")
        for key, value in v["config"].items():
            print(f"  {key:26s} {value}")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    info = collect(args.variant)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        _print_text(info)
    return 0
