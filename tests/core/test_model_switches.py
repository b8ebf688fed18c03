"""The switches that reproduce the official model (stage LayerNorm placement, boundary head), their defaults in
old checkpoints, and the renamed A matrices (older checkpoints load through the legacy name map)."""

from __future__ import annotations

import pytest
import torch

from vivim_core.config import ConfigError, ModelConfig, get_config
from vivim_core.engine.checkpoint import load_model, save_checkpoint
from vivim_core.model import Vivim, build_model
from vivim_core.model.legacy_names import current_name, upgrade_legacy_names
from vivim_core.resources import resource_path

TINY = dict(embed_dims=(16, 32, 48, 64), transformer_depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1),
            temporal_depths=(1, 1, 1, 1), decoder_dim=32, boundary_head_dim=8)


def outputs(model: Vivim, clip: torch.Tensor):
    with torch.no_grad():
        return model.eval()(clip)


def test_defaults_are_todays_behaviour_and_old_configs_get_them():
    config = ModelConfig()
    assert (config.stage_norm, config.boundary_head) == ("after_temporal", "three_layer")
    old = {k: v for k, v in config.to_dict().items() if k not in ("stage_norm", "boundary_head")}
    assert ModelConfig.from_dict(old) == config
    with pytest.raises(ConfigError, match="stage_norm 'sometimes'"):
        ModelConfig(stage_norm="sometimes")
    with pytest.raises(ConfigError, match="boundary_head"):
        ModelConfig(boundary_head="five_layer")


def test_stage_norm_none_never_applies_the_stage_layer_norm():
    clip = torch.randn(1, 3, 3, 64, 64)
    model = build_model(get_config("vivim-tiny", **TINY, stage_norm="none"))
    before = outputs(model, clip).mask_logits
    with torch.no_grad():
        for stage in model.stages:
            stage.layer_norm.weight.mul_(3.0).add_(1.0)
    assert torch.equal(outputs(model, clip).mask_logits, before)  # held, never used
    ours = Vivim(model.config.replace(stage_norm="after_temporal"))
    ours.load_state_dict(model.state_dict())
    assert not torch.allclose(outputs(ours, clip).mask_logits, before, atol=1e-3)


def test_before_and_after_temporal_agree_without_temporal_blocks_and_differ_with_them():
    clip = torch.randn(1, 3, 3, 64, 64)
    for branches, same in (((), True), (("forward", "backward", "spatial"), False)):
        after = build_model(get_config("vivim-tiny", **TINY, scan_branches=branches))
        before = Vivim(after.config.replace(stage_norm="before_temporal"))
        before.load_state_dict(after.state_dict())
        a, b = outputs(after, clip).mask_logits, outputs(before, clip).mask_logits
        assert torch.allclose(a, b, atol=1e-6) == same


def test_boundary_head_kinds():
    three = build_model(get_config("vivim-tiny", **TINY))
    one = build_model(get_config("vivim-tiny", **TINY, boundary_head="conv1x1"))
    assert [k for k in one.state_dict() if k.startswith("boundary_head.")] == ["boundary_head.layers.0.weight",
                                                                                "boundary_head.layers.0.bias"]
    assert one.boundary_head.layers[0].weight.shape == (1, 16, 1, 1)
    assert len([k for k in three.state_dict() if k.startswith("boundary_head.")]) > 2
    clip = torch.randn(1, 2, 3, 64, 64)
    assert outputs(one, clip).boundary_logits.shape == (1, 2, 1, 64, 64)
    assert float(one.boundary_head.layers[0].weight.detach().std()) < 0.05  # the output layer starts near zero


def test_a_matrices_carry_the_official_names():
    names = build_model(get_config("vivim-tiny", **TINY)).state_dict()
    mixer = "stages.0.temporal_blocks.0.mamba."
    assert {mixer + n for n in ("A_log", "A_b_log", "A_s_log", "D", "D_b", "D_s")} <= set(names)
    assert not any(k.endswith(("A_log_b", "A_log_s")) for k in names)
    assert current_name("stages.1.temporal_blocks.0.mamba.A_log_b") == "stages.1.temporal_blocks.0.mamba.A_b_log"
    assert current_name("stages.1.temporal_blocks.0.mamba.A_log") == "stages.1.temporal_blocks.0.mamba.A_log"


def test_the_bundled_checkpoints_written_under_the_old_names_still_load():
    from safetensors import safe_open

    path = resource_path("vivim-tiny-polyp.safetensors")
    with safe_open(str(path), "pt") as f:
        stored = {k: f.get_tensor(k) for k in f.keys()}
    assert "stages.0.temporal_blocks.0.mamba.A_log_b" in stored  # written before the rename
    model = load_model(path)
    state = model.state_dict()
    for old, tensor in stored.items():
        assert torch.equal(state[current_name(old)], tensor.to(state[current_name(old)].dtype))


def test_a_checkpoint_written_under_the_old_names_computes_the_same(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    model = build_model(get_config("vivim-tiny", **TINY)).eval()
    path = save_checkpoint(model, tmp_path / "new.safetensors")
    with safe_open(str(path), "pt") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    renamed = {k.replace("A_b_log", "A_log_b").replace("A_s_log", "A_log_s"): v for k, v in tensors.items()}
    assert renamed.keys() != tensors.keys() and upgrade_legacy_names(renamed).keys() == tensors.keys()
    save_file(renamed, str(tmp_path / "old.safetensors"), metadata=metadata)
    clip = torch.randn(1, 2, 3, 64, 64)
    assert torch.equal(outputs(load_model(tmp_path / "old.safetensors"), clip).mask_logits,
                       outputs(model, clip).mask_logits)


def test_every_branch_a_matrix_is_exempt_from_weight_decay():
    from vivim_core.engine.loop import make_optimizer
    from vivim_core.engine.train_config import TrainConfig

    model = build_model(get_config("vivim-tiny", **TINY))
    optimizer = make_optimizer(model, TrainConfig(weight_decay=0.01))
    decayed = {id(p) for p in optimizer.param_groups[0]["params"]}
    mixer = model.stages[0].temporal_blocks[0].mamba
    assert not {id(mixer.A_log), id(mixer.A_b_log), id(mixer.A_s_log)} & decayed
    assert id(mixer.in_proj.weight) in decayed
