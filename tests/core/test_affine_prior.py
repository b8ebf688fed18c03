"""The affine prior: the bundled file (small, documented, accurate on unseen pairs), the synthetic pair
generator's transform convention, reproducible training, and the `train-affine-prior` command."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from vivim_core import build_model, save_checkpoint
from vivim_core.losses import (DEFAULT_PRIOR_PATH, AffinePriorError, load_affine_prior, read_affine_prior_info)
from vivim_core.losses.affine_training import (PriorTrainConfig, frobenius_errors, make_patch_pairs,
                                               train_affine_prior)


def test_bundled_prior_is_small_documented_and_frozen():
    assert DEFAULT_PRIOR_PATH.is_file()
    assert DEFAULT_PRIOR_PATH.stat().st_size < 2_000_000
    training = read_affine_prior_info()["training"]
    assert training["command"].startswith("vivim-core train-affine-prior")
    assert {"seed", "steps", "batch_size", "patch_size"} <= set(training["config"])
    assert training["validation"]["mean_frobenius_error"] < training["validation"]["identity_baseline_error"]
    prior = load_affine_prior()
    assert not prior.training and not any(p.requires_grad for p in prior.parameters())


def test_bundled_prior_regresses_transforms_of_unseen_pairs():
    pairs = make_patch_pairs(1024, generator=torch.Generator().manual_seed(12345))
    errors = frobenius_errors(load_affine_prior(), *pairs)
    assert errors["mean_frobenius_error"] < 0.8 * errors["identity_baseline_error"]
    assert errors["aligned_pairs_distance_from_identity"] < 0.1


def test_pairs_follow_the_affine_grid_convention():
    """target(u) = reference(theta [u, 1]): warping the reference with F.affine_grid(theta) resembles the
    target better than the reference itself does."""
    reference, target, theta = make_patch_pairs(256, generator=torch.Generator().manual_seed(1))
    moved = (theta - torch.tensor([[1.0, 0, 0], [0, 1, 0]])).flatten(1).norm(dim=1) > 0.2
    grid = F.affine_grid(theta[moved], (int(moved.sum()), 1, 16, 16), align_corners=False)
    warped = F.grid_sample(reference[moved, None], grid, align_corners=False)[:, 0]

    def correlation(a, b):
        a, b = a.flatten(1) - a.flatten(1).mean(1, keepdim=True), b.flatten(1) - b.flatten(1).mean(1, keepdim=True)
        return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-8)

    assert correlation(warped, target[moved]).mean() > correlation(reference[moved], target[moved]).mean() + 0.2
    assert reference.shape == target.shape == (256, 16, 16) and theta.shape == (256, 2, 3)
    assert (reference.sum(dim=(1, 2)) >= 4).all() and 0 <= float(target.min()) and float(target.max()) <= 1


def test_training_is_reproducible_by_seed():
    config = PriorTrainConfig(steps=4, batch_size=32, validation_pairs=64, hidden_dims=(32,))
    first, report = train_affine_prior(config)
    second, _ = train_affine_prior(config)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    assert report["config"]["seed"] == 0 and report["config"]["steps"] == 4


def test_command_writes_a_loadable_prior_and_errors_are_clear(tmp_path):
    out = tmp_path / "prior.safetensors"
    result = subprocess.run([sys.executable, "-m", "vivim_core", "train-affine-prior", "--out", str(out), "--steps",
                             "3", "--batch-size", "16", "--seed", "7", "--no-progress"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "validation" in result.stdout
    info = read_affine_prior_info(out)
    assert "--seed 7" in info["training"]["command"] and info["training"]["config"]["steps"] == 3
    assert load_affine_prior(out).patch_size == 16
    with pytest.raises(AffinePriorError, match="train-affine-prior"):
        load_affine_prior(tmp_path / "missing.safetensors")
    checkpoint = save_checkpoint(build_model("vivim-tiny"), tmp_path / "model.safetensors")
    with pytest.raises(AffinePriorError, match="not a Vivim affine prior"):
        load_affine_prior(checkpoint)
