"""Import weights trained with the official Vivim code (github.com/scott-yjyang/Vivim) as a Vivim checkpoint.

CKPT is what the official code saves: a state dict (.pth) or a PyTorch Lightning checkpoint (.ckpt) whose
`state_dict` holds the network under `model.`. It is read without running any code from the file (PyTorch's
weights-only reader: a file that pickles anything but tensors and plain data is refused). Every official
tensor name is mapped to ours; unmappable, missing or wrongly shaped tensors are refused with their names.

The new checkpoint computes the official model's function: its config applies no stage LayerNorm
(stage_norm=none) and has the official one-conv boundary head (boundary_head=conv1x1); SegFormer's unused
ADE20K classifier is left out. It loads everywhere a Vivim checkpoint does (predict, evaluate, finetune, the
Studio). The official inference predicts each frame as the centre of its own 5-frame window: use
`vivim-core predict --protocol official` to reproduce it.

examples:
  vivim-core import-official ultra-epoch.ckpt --out official-b3.safetensors
  vivim-core predict --checkpoint official-b3.safetensors data/vtus/Test --out pred --protocol official
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "import a checkpoint of the official Vivim code (.pth or Lightning .ckpt) as a Vivim checkpoint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, metavar="CKPT", help="the official .pth state dict or Lightning .ckpt")
    parser.add_argument("--out", required=True, type=Path, metavar="MODEL.safetensors",
                        help="the Vivim checkpoint to write")
    parser.add_argument("--variant", default="vivim-b3", metavar="NAME",
                        help="the architecture the weights belong to; the official code builds vivim-b3 (MiT-B3 "
                             "encoder, 2 Temporal Mamba blocks per stage, decoder width 768) (default: vivim-b3)")


def run(args: argparse.Namespace) -> int:
    from ..official import import_official

    report = import_official(args.checkpoint, args.out, variant=args.variant)
    print(report.summary())
    return 0
