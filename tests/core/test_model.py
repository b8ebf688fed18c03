"""Every variant and ablation builds and runs on tiny clips of any length; bad shapes fail clearly."""

from __future__ import annotations

import pytest
import torch

from vivim_core.config import ABLATIONS, VARIANTS, ConfigError, ModelConfig, get_config
from vivim_core.model import build_model, count_parameters


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant_model(request):
    return build_model(request.param).eval()


@pytest.mark.parametrize("frames", [1, 3, 5, 8])
def test_every_variant_forward_on_tiny_clip(variant_model, frames):
    clip = torch.randn(1, frames, 3, 32, 64)
    with torch.no_grad():
        out = variant_model(clip)
    assert out.mask_logits.shape == (1, frames, 1, 32, 64)
    assert out.boundary_logits.shape == (1, frames, 1, 32, 64)
    assert torch.isfinite(out.mask_logits).all() and torch.isfinite(out.boundary_logits).all()


@pytest.mark.parametrize("ablation", sorted(ABLATIONS))
def test_ablations_are_config_switches(ablation):
    model = build_model("vivim-tiny", **ABLATIONS[ablation]).eval()
    mixers = [b.mamba for s in model.stages for b in s.temporal_blocks]
    expected = ABLATIONS[ablation]["scan_branches"]
    assert (len(mixers) > 0) == bool(expected)
    assert all(m.branches == tuple(expected) for m in mixers)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 3, 32, 32))
    assert out.mask_logits.shape == (2, 3, 1, 32, 32)


def test_paper_size_model_has_about_60m_parameters():
    n = count_parameters(build_model("vivim-b3"))
    assert 55e6 < n < 65e6
    basic = count_parameters(build_model("vivim-b3", **ABLATIONS["basic"]))
    assert basic < n  # "basic" drops the Temporal Mamba blocks


def test_temporal_mixing_connects_frames_and_basic_does_not():
    """A change in frame 0 reaches frame 2's output only through the temporal blocks."""
    clip = torch.randn(1, 3, 3, 32, 32)
    changed = clip.clone()
    changed[0, 0] += 1.0
    for ablation, should_mix in (("full", True), ("basic", False)):
        model = build_model("vivim-tiny", **ABLATIONS[ablation]).eval()
        with torch.no_grad():
            delta = (model(clip).mask_logits[0, 2] - model(changed).mask_logits[0, 2]).abs().max()
        assert (delta > 1e-6) == should_mix, ablation


@pytest.mark.parametrize("shape, message", [
    ((3, 32, 32), "expects a clip of shape"),
    ((1, 2, 1, 32, 32), "expects 3 channels"),
    ((1, 2, 3, 30, 32), "not divisible by 32"),
])
def test_bad_clip_shapes_raise_clear_errors(shape, message):
    model = build_model("vivim-tiny").eval()
    with pytest.raises(ValueError, match=message):
        model(torch.randn(*shape))


def test_training_backward_reaches_every_parameter():
    model = build_model("vivim-tiny").train()
    out = model(torch.randn(2, 2, 3, 32, 32))
    (out.mask_logits.mean() + out.boundary_logits.mean()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing


def test_config_round_trip_and_errors():
    config = get_config("vivim-b3", scan_branches=("forward",), decoder_dim=128)
    assert ModelConfig.from_json(config.to_json()) == config
    with pytest.raises(ConfigError, match="unknown variant"):
        get_config("vivim-huge")
    with pytest.raises(ConfigError, match="unknown model config field"):
        get_config("vivim-tiny", widths=(1, 2))
    with pytest.raises(ConfigError, match="unknown scan branch"):
        get_config("vivim-tiny", scan_branches=("diagonal",))
    with pytest.raises(ConfigError, match="one per stage"):
        get_config("vivim-tiny", num_heads=(1, 2))


def test_fresh_model_starts_with_moderate_logits():
    """Output heads start near zero, so training does not begin from saturated predictions."""
    model = build_model("vivim-tiny").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 3, 64, 64))
    assert out.mask_logits.abs().max() < 3 and out.boundary_logits.abs().max() < 3
