"""`vivim-core import-official`: an official-layout state dict (our model's, written under the official code's
names) imported from a .pth and from a Lightning .ckpt gives the same outputs; unsafe or unmappable files are
refused with a clear message."""

from __future__ import annotations

import argparse
import os

import pytest
import torch

from vivim_core.cli import main
from vivim_core.engine.checkpoint import load_model, read_checkpoint_info
from vivim_core.model import Vivim
from vivim_core.official import (OfficialImportError, import_official, official_config, official_to_ours,
                                 ours_to_official, to_official_state_dict)

VARIANT = "vivim-tiny"


class Hyper:
    """A custom class pickled into a checkpoint: the import must refuse it without building it."""

    def __init__(self):
        self.lr = 1e-4


class RunsCode:
    """Pickles as a call of os.system: unpickling it would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def official_model() -> Vivim:
    """An official-layout vivim-tiny with random norm scales, BN statistics and A matrices, so that any
    mis-mapped tensor changes the outputs."""
    torch.manual_seed(1)
    model = Vivim(official_config(VARIANT))
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(torch.rand_like(tensor) + 0.5)
            elif tensor.is_floating_point():
                tensor.add_(0.1 * torch.randn_like(tensor) * max(float(tensor.abs().mean()), 0.1))
    return model.eval()


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    return torch.randn(1, 5, 3, 64, 64, generator=torch.Generator().manual_seed(2))


def official_state(model: Vivim, edge: bool = True) -> dict:
    """What the official code's `model.state_dict()` holds: our tensors under its names, plus SegFormer's
    unused ADE20K classifier; without the edge head when trained with with_edge=False."""
    state = to_official_state_dict(model)
    state["decoder.classifier.weight"] = torch.randn(150, model.config.decoder_dim, 1, 1)
    state["decoder.classifier.bias"] = torch.randn(150)
    if not edge:
        state = {k: v for k, v in state.items() if not k.startswith("edgeocr_cls_head.")}
    return state


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_every_name_maps_both_ways_and_a_few_examples(official_model):
    for name in official_model.state_dict():
        assert official_to_ours(ours_to_official(name)) == name
    examples = {
        "encoder.stages.1.0.0.mamba.A_b_log": "stages.1.temporal_blocks.0.mamba.A_b_log",
        "encoder.stages.2.1.0.mlp.dwconv.dwconv.weight": "stages.2.temporal_blocks.1.dsf.dwconv.weight",
        "encoder.stages.0.0.0.mlp.fc1.bias": "stages.0.temporal_blocks.0.dsf.dense1.bias",
        "encoder.downsample_layers.block.3.1.attention.self.layer_norm.weight": "stages.3.blocks.1.attention.sr_norm.weight",
        "encoder.downsample_layers.layer_norm.2.bias": "stages.2.layer_norm.bias",
        "decoder.linear_c.1.proj.weight": "decoder.linear_c.1.weight",
        "out.weight": "decoder.classifier.weight",
        "edgeocr_cls_head.bias": "boundary_head.layers.0.bias",
    }
    for official, ours in examples.items():
        assert official_to_ours(official) == ours
    assert official_to_ours("decoder.classifier.weight") is None  # the ADE20K head is dropped
    assert official_to_ours("encoder.something_else.weight") is None


def test_a_pth_state_dict_imports_with_the_verb_and_gives_the_same_outputs(tmp_path, official_model, clip, capsys):
    source = tmp_path / "official.pth"
    torch.save(official_state(official_model), source)
    out = tmp_path / "imported.safetensors"
    assert main(["import-official", str(source), "--out", str(out), "--variant", VARIANT]) == 0
    printed = capsys.readouterr().out
    assert "left out 2 unused official tensor(s): decoder.classifier.bias, decoder.classifier.weight" in printed
    model = load_model(out)
    assert model.config.stage_norm == "none" and model.config.boundary_head == "conv1x1"
    assert read_checkpoint_info(out)["provenance"]["kind"] == "import-official"
    with torch.no_grad():
        expected, got = official_model(clip), model(clip)
    assert relative_error(got.mask_logits, expected.mask_logits) < 1e-5
    assert relative_error(got.boundary_logits, expected.boundary_logits) < 1e-5


def test_a_lightning_checkpoint_is_read_without_running_code(tmp_path, official_model, clip):
    """The network sits under `model.`; the hyper-parameters (an argparse.Namespace), the optimizer state and
    the loss's own tensors are left out."""
    state = {"model." + k: v for k, v in official_state(official_model).items()}
    state["criterion.inverse_distance.inversenet.fc.weight"] = torch.zeros(3, 3)
    source = tmp_path / "ultra-epoch.ckpt"
    torch.save({"epoch": 9, "global_step": 120, "pytorch-lightning_version": "2.1.3", "state_dict": state,
                "hyper_parameters": {"hparams": argparse.Namespace(epochs=200, initlr=1e-4, with_edge=True)},
                "optimizer_states": [{"state": {0: {"exp_avg": torch.zeros(2)}}, "param_groups": [{"lr": 1e-4}]}],
                "callbacks": {"ModelCheckpoint{'monitor': 'Dice'}": {"best_model_score": torch.tensor(0.8)}}},
               source)
    report = import_official(source, tmp_path / "imported.safetensors", variant=VARIANT)
    assert report.outside == ["criterion.inverse_distance.inversenet.fc.weight"]
    assert report.mapped == len(official_model.state_dict())
    with torch.no_grad():
        got = load_model(report.output)(clip)
        expected = official_model(clip)
    assert relative_error(got.mask_logits, expected.mask_logits) < 1e-5


def test_a_checkpoint_trained_without_the_edge_head_gets_an_inert_boundary_head(tmp_path, official_model, clip):
    source = tmp_path / "official.pth"
    torch.save(official_state(official_model, edge=False), source)
    report = import_official(source, tmp_path / "imported.safetensors", variant=VARIANT)
    assert report.boundary_head == "absent (zeros)" and "constant 0.5" in report.summary()
    with torch.no_grad():
        got = load_model(report.output)(clip)
        expected = official_model(clip)
    assert relative_error(got.mask_logits, expected.mask_logits) < 1e-5
    assert torch.count_nonzero(got.boundary_logits) == 0


def test_the_official_stage_norm_placement_matters(official_model, clip):
    """The same weights with our stage LayerNorm placement compute something else: the switch is needed."""
    ours = Vivim(official_model.config.replace(stage_norm="after_temporal")).eval()
    ours.load_state_dict(official_model.state_dict())
    with torch.no_grad():
        assert relative_error(ours(clip).mask_logits, official_model(clip).mask_logits) > 0.05


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_pickled_code_is_refused_and_never_run(tmp_path, official_model, zip_format):
    marker = tmp_path / "ran"
    source = tmp_path / "evil.ckpt"
    torch.save({"state_dict": official_state(official_model), "hyper_parameters": RunsCode(marker)}, source,
               _use_new_zipfile_serialization=zip_format)
    with pytest.raises(OfficialImportError, match=r"pickles .*system.*refuses this file"):
        import_official(source, tmp_path / "out.safetensors", variant=VARIANT)
    assert not marker.exists()
    assert not (tmp_path / "out.safetensors").exists()


def test_a_custom_class_is_refused_by_name(tmp_path, official_model):
    source = tmp_path / "custom.ckpt"
    torch.save({"state_dict": official_state(official_model), "hyper_parameters": Hyper()}, source)
    with pytest.raises(OfficialImportError, match=r"pickles \S*Hyper"):
        import_official(source, tmp_path / "out.safetensors", variant=VARIANT)


def test_the_cli_refuses_in_one_line(tmp_path, official_model, capsys):
    source = tmp_path / "custom.ckpt"
    torch.save({"state_dict": official_state(official_model), "hyper_parameters": Hyper()}, source)
    assert main(["import-official", str(source), "--out", str(tmp_path / "o.safetensors"), "--variant", VARIANT]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("vivim-core import-official: error:") and "\n" not in error


def test_missing_names_are_listed(tmp_path, official_model):
    state = official_state(official_model)
    del state["encoder.stages.1.0.0.mamba.A_s_log"]
    del state["out.bias"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(OfficialImportError, match=r"2 name\(s\) missing: encoder.stages.1.0.0.mamba.A_s_log, out.bias"):
        import_official(tmp_path / "partial.pth", tmp_path / "out.safetensors", variant=VARIANT)


def test_wrong_shapes_are_listed_with_the_variant_that_fits(tmp_path, official_model):
    state = official_state(official_model)
    state["encoder.stages.0.0.0.mamba.D"] = torch.ones(3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(OfficialImportError, match=r"wrong shape: encoder.stages.0.0.0.mamba.D: \(3,\) in the file"):
        import_official(tmp_path / "bad.pth", tmp_path / "out.safetensors", variant=VARIANT)
    torch.save(official_state(official_model), tmp_path / "tiny.pth")
    with pytest.raises(OfficialImportError, match="It fits --variant vivim-tiny"):
        import_official(tmp_path / "tiny.pth", tmp_path / "out.safetensors", variant="vivim-b1")


def test_unknown_names_are_refused(tmp_path, official_model):
    state = official_state(official_model)
    state["encoder.stages.0.0.0.mamba.extra_gate.weight"] = torch.ones(2)
    state["projection_head.weight"] = torch.ones(2)
    torch.save(state, tmp_path / "extra.pth")
    with pytest.raises(OfficialImportError, match=r"2 name\(s\) this import cannot map: "
                                                  r"encoder.stages.0.0.0.mamba.extra_gate.weight, projection_head"):
        import_official(tmp_path / "extra.pth", tmp_path / "out.safetensors", variant=VARIANT)


def test_files_that_are_not_official_state_dicts_are_refused(tmp_path, official_model):
    torch.save(official_model.state_dict(), tmp_path / "ours.pth")
    with pytest.raises(OfficialImportError, match="Vivim's own"):
        import_official(tmp_path / "ours.pth", tmp_path / "out.safetensors", variant=VARIANT)
    torch.save({"weights": [1, 2, 3]}, tmp_path / "list.pth")
    with pytest.raises(OfficialImportError, match="not tensors"):
        import_official(tmp_path / "list.pth", tmp_path / "out.safetensors", variant=VARIANT)
    (tmp_path / "text.pth").write_text("not a checkpoint at all")
    with pytest.raises(OfficialImportError, match="not a PyTorch"):
        import_official(tmp_path / "text.pth", tmp_path / "out.safetensors", variant=VARIANT)
    with pytest.raises(OfficialImportError, match="not found"):
        import_official(tmp_path / "absent.pth", tmp_path / "out.safetensors", variant=VARIANT)
    torch.save(official_state(official_model), tmp_path / "ok.pth")
    with pytest.raises(OfficialImportError, match=".safetensors"):
        import_official(tmp_path / "ok.pth", tmp_path / "out.pth", variant=VARIANT)
