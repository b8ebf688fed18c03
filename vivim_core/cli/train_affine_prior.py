"""Train the affine prior of the boundary-aware loss: a small MLP that regresses the affine transform between
a ground-truth edge patch and a (predicted) boundary patch. It learns from synthetic edge patches under
random affine warps, on the CPU, in a few minutes; the result is a ~1.6 MB safetensors file whose metadata
records this command, the seed, the steps and the validation error. Vivim training uses it frozen.

The bundled resources/affine_prior.safetensors was made with the defaults:
  vivim-core train-affine-prior --out resources/affine_prior.safetensors

examples:
  vivim-core train-affine-prior --out my_prior.safetensors --steps 6000 --seed 1
  vivim-core train --data DATA --variant vivim-tiny --out runs/a --affine-prior my_prior.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "pre-train the affine prior (boundary loss) on synthetic edge patches"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, metavar="PATH",
                        help="where to write the prior (.safetensors)")
    parser.add_argument("--steps", type=int, default=3000,
                        help="optimisation steps, each on a fresh batch of synthetic pairs (default: 3000)")
    parser.add_argument("--batch-size", type=int, default=512, help="patch pairs per step (default: 512)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of the one-cycle schedule "
                                                               "(default: 1e-3)")
    parser.add_argument("--patch-size", type=int, default=16, help="patch side in pixels (default: 16)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same prior "
                                                            "(default: 0)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bar")


def _is_prior(path: Path) -> bool:
    """Whether `path` is an affine prior (an earlier output of this command, which --out may replace)."""
    from ..errors import VivimError
    from ..losses.affine_prior import read_affine_prior_info

    try:
        read_affine_prior_info(path)
    except VivimError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from ..errors import VivimError
    from ..file_safety import check_replaceable
    from ..losses.affine_prior import save_affine_prior
    from ..losses.affine_training import PriorTrainConfig, train_affine_prior

    if args.steps < 1 or args.batch_size < 1 or args.patch_size < 4:
        raise VivimError("--steps and --batch-size must be >= 1 and --patch-size >= 4")
    if args.out.suffix != ".safetensors":
        raise VivimError(f"--out {args.out}: the prior is written as safetensors; give a path ending in .safetensors")
    check_replaceable(args.out, "--out", _is_prior)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = PriorTrainConfig(patch_size=args.patch_size, steps=args.steps, batch_size=args.batch_size,
                              lr=args.lr, seed=args.seed)
    bar = None if args.no_progress else tqdm(total=args.steps, unit="step", desc="affine prior")

    def progress(step: int, total: int, loss: float) -> None:
        if bar is not None:
            bar.set_postfix(mse=f"{loss:.4f}")
            bar.update(step - bar.n)

    try:
        prior, report = train_affine_prior(config, progress)
    finally:
        if bar is not None:
            bar.close()
    report["command"] = (f"vivim-core train-affine-prior --out {args.out} --steps {args.steps} "
                         f"--batch-size {args.batch_size} --lr {args.lr} --patch-size {args.patch_size} "
                         f"--seed {args.seed}")
    path = save_affine_prior(prior, args.out, report)
    errors = report["validation"]
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) in {report['seconds']:.0f} s")
    print(f"validation: mean ||theta_hat - theta||_F = {errors['mean_frobenius_error']:.4f} "
          f"(always answering identity: {errors['identity_baseline_error']:.4f}); aligned pairs: "
          f"{errors['aligned_pairs_distance_from_identity']:.4f} from identity")
    return 0
