"""The training switches that reproduce the official recipe: the structure loss's unweighted BCE and
centre-frame supervision."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vivim_core.engine.train_config import TrainConfig, TrainConfigError
from vivim_core.losses import LossWeights, VivimLoss, structure_loss


def official_structure_loss(pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The official formula, as it computes: its BCE is reduced to the mean before the weighting."""
    weight = 1 + 5 * torch.abs(F.avg_pool2d(mask, kernel_size=31, stride=1, padding=15) - mask)
    bce = F.binary_cross_entropy_with_logits(pred, mask)  # what reduce='none' amounts to
    bce = (weight * bce).sum(dim=(2, 3)) / weight.sum(dim=(2, 3))
    prob = torch.sigmoid(pred)
    inter = ((prob * mask) * weight).sum(dim=(2, 3))
    union = ((prob + mask) * weight).sum(dim=(2, 3))
    return (bce + 1 - (inter + 1) / (union - inter + 1)).mean()


def maps(shape=(3, 1, 48, 48)):
    logits = torch.randn(shape) * 2
    masks = torch.zeros(shape)
    masks[..., 10:30, 12:34] = 1
    return logits, masks


def test_unweighted_bce_is_the_official_structure_loss():
    logits, masks = maps()
    assert torch.allclose(structure_loss(logits, masks, weighted_bce=False), official_structure_loss(logits, masks),
                          rtol=1e-6)
    assert not torch.allclose(structure_loss(logits, masks), official_structure_loss(logits, masks), rtol=1e-3)


def test_centre_supervision_scores_only_the_centre_frame():
    logits, masks = maps((2, 5, 1, 32, 32))
    boundary = torch.randn(2, 5, 1, 32, 32)
    centre = VivimLoss(LossWeights(), boundary_loss=False, supervised_frames="centre", weighted_bce=False)
    terms = centre(logits, boundary, masks)
    assert torch.allclose(terms.total, official_structure_loss(logits[:, 2], masks[:, 2]), rtol=1e-6)
    every = VivimLoss(LossWeights(), boundary_loss=False)(logits, boundary, masks)
    assert not torch.allclose(terms.total, every.total)
    with pytest.raises(ValueError, match="supervised_frames"):
        VivimLoss(supervised_frames="middle")


def test_train_config_defaults_and_validation():
    config = TrainConfig()
    assert (config.supervised_frames, config.weighted_bce) == ("all", True)
    old = {k: v for k, v in config.to_dict().items() if k not in ("supervised_frames", "weighted_bce")}
    assert TrainConfig.from_dict(old) == config  # run folders written before the switches resume unchanged
    with pytest.raises(TrainConfigError, match="supervised_frames"):
        TrainConfig(supervised_frames="middle")


def test_cli_flags_reach_the_train_config():
    import argparse

    from vivim_core.cli.common import add_training_arguments, config_overrides

    parser = argparse.ArgumentParser()
    add_training_arguments(parser, TrainConfig().to_dict())
    args = parser.parse_args(["--supervised-frames", "centre", "--unweighted-bce"])
    assert config_overrides(args) == {"supervised_frames": "centre", "weighted_bce": False}
