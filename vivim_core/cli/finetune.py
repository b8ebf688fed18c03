"""Fine-tune a trained Vivim checkpoint on your own annotated videos, e.g. the frames an expert corrected
and exported from Vivim Studio. The model (variant, widths) comes from the checkpoint.

The defaults are made for a few annotated frames (a Studio export with 3-10 accepted frames works as is):
augmentation on, the first 2 of the encoder's 4 stages frozen, 100 steps of 2 clips, lr 2e-4 cosine to 1e-6,
validation on the annotated frames themselves every 25 steps, early stop after 4 evaluations without a better
Dice, at the frame size and clip length the checkpoint was trained with; best.safetensors is the checkpoint
to use. With more data, give --val-split videos (or frames) and more --steps.

data: the VTUS layout ROOT/Train/<video_id>/NNNN.jpg with ROOT/Train_GT/<video_id>/NNNN.png, as the Studio
exports it (or a polyp dataset). A video shorter than a clip is used as one clip (its last frame repeats).

examples:
  vivim-core finetune --data studio_export --checkpoint resources/vivim_thyroid.safetensors --out runs/site-a
  vivim-core finetune --data data/site --checkpoint runs/tiny/best.safetensors --out runs/ft --steps 2000 \\
      --val-split frames --max-minutes 15
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_training_arguments, print_result, resolve_config, run_with_progress

HELP = "fine-tune a checkpoint on a few annotated frames or videos (e.g. a Studio export)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..engine.train_config import finetune_config

    parser.add_argument("--data", required=True, type=Path, metavar="ROOT", help="dataset root (see above)")
    parser.add_argument("--checkpoint", required=True, type=Path, metavar="CKPT",
                        help="the Vivim checkpoint (.safetensors) to start from")
    parser.add_argument("--out", required=True, type=Path, metavar="RUNDIR", help="run folder to create (or resume)")
    defaults = dict(finetune_config().to_dict(), size=None, clip_length=None)  # from the checkpoint
    add_training_arguments(parser, defaults)


def run(args: argparse.Namespace) -> int:
    from ..engine.train import finetune, finetune_defaults

    config = resolve_config(args, finetune_defaults(args.checkpoint))
    result = run_with_progress(finetune, args, data=args.data, checkpoint=args.checkpoint, out=args.out,
                               config=config, resume=args.resume)
    if result is not None:
        print_result(result)
    return 0
