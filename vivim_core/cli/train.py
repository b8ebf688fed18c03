"""Train a Vivim model from scratch on annotated videos, with the paper's recipe by default: Adam, lr 1e-4
cosine to 1e-6, clips of 5 frames, 256x256, batch 4, loss = structure loss + 0.3 affine boundary constraint
+ 0.3 boundary BCE.

data: the VTUS layout ROOT/Train/<video_id>/NNNN.jpg with ROOT/Train_GT/<video_id>/NNNN.png (masks {0, 255}),
or a polyp dataset ROOT/<dataset>/Frame/<case>/*.jpg with ROOT/<dataset>/GT/<case>/*.png.

The run folder (--out) receives config.json (every setting, resolved), split.json (training / validation
frames), metrics.csv (one row per evaluation), best.safetensors (best validation Dice), last.safetensors and
last.optim.safetensors (to --resume). Several GPUs: launch the same command with torchrun; --batch-size is
then per GPU and only rank 0 writes.

examples:
  vivim-core train --data data/vtus --variant vivim-tiny --out runs/tiny
  vivim-core train --data data/vtus --variant vivim-b3 --out runs/b3 --init-segformer downloads/segformer-b3-ade
  vivim-core train --data data/vtus --variant vivim-b3 --ablation c3 --out runs/c3       # paper ablation
  vivim-core train --data data/vtus --out runs/tiny --resume --epochs 150                 # continue, extend
  torchrun --nproc_per_node 2 -m vivim_core train --data data/vtus --variant vivim-b3 --out runs/b3-ddp
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_training_arguments, print_result, resolve_config, run_with_progress

HELP = "train a Vivim model on annotated videos (VTUS or polyp layout)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..engine.train_config import TrainConfig

    parser.add_argument("--data", required=True, type=Path, metavar="ROOT", help="dataset root (see above)")
    parser.add_argument("--out", required=True, type=Path, metavar="RUNDIR", help="run folder to create (or resume)")
    parser.add_argument("--variant", metavar="NAME",
                        help="model variant: vivim-tiny (laptop CPU), vivim-b1, vivim-b3 (the paper) "
                             "(default: vivim-tiny)")
    parser.add_argument("--ablation", choices=("basic", "c1", "c2", "c3", "full"),
                        help="the paper's ablations: basic = no Mamba, c1 forward scan, c2 forward+backward, c3 all "
                             "scans without boundary loss, full = everything (default: full)")
    parser.add_argument("--init-segformer", metavar="PATH",
                        help="initialise the encoder (and the decoder when it fits) from a local Hugging Face "
                             "SegFormer checkpoint: a folder with model.safetensors + config.json, or a "
                             ".safetensors file; its size must match the variant (tiny: MiT-B0, b1: B1, b3: B3)")
    add_training_arguments(parser, TrainConfig().to_dict())


def run(args: argparse.Namespace) -> int:
    from ..engine.train import TrainConfig, train

    config = resolve_config(args, TrainConfig())
    result = run_with_progress(train, args, data=args.data, out=args.out, config=config, resume=args.resume)
    if result is not None:
        print_result(result)
    return 0
