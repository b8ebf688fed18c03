"""Resuming a run: an intact default fine-tune resumes (frozen stages included), and a run folder whose
config.json, metrics.csv or optimizer state is damaged gives one clear line naming the file and what to do."""

from __future__ import annotations

import json
import shutil
import struct

import pytest
import torch

from vivim_core.cli import main
from vivim_core.data.synthetic import write_vtus_dataset
from vivim_core.engine.checkpoint import load_model, read_checkpoint_info, save_checkpoint
from vivim_core.model import build_model

FAST = ["--no-progress", "--device", "cpu", "--num-workers", "0"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_vtus_dataset(tmp_path_factory.mktemp("vtus"), num_videos=1, frames_per_video=4, size=(32, 32))


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("vivim-tiny", embed_dims=(8, 16, 32, 64), transformer_depths=(1,) * 4,
                        temporal_depths=(1, 0, 0, 1), num_heads=(1,) * 4, decoder_dim=32, boundary_head_dim=8)
    return save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "start.safetensors",
                           provenance={"train_size": [32, 32], "clip_length": 2})


@pytest.fixture(scope="module")
def finetuned(dataset, start, tmp_path_factory):
    """`vivim-core finetune` with the default recipe (first 2 stages frozen), 4 steps."""
    run = tmp_path_factory.mktemp("runs") / "ft"
    assert main(["finetune", "--data", str(dataset), "--checkpoint", str(start), "--out", str(run), "--steps", "4",
                 *FAST]) == 0
    return run


def copy_of(run, tmp_path):
    return shutil.copytree(run, tmp_path / "run")


def resume(dataset, start, run, steps=8):
    return ["finetune", "--data", dataset, "--checkpoint", start, "--out", run, "--resume", "--steps", str(steps),
            *FAST]


def call(argv, capsys):
    capsys.readouterr()
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_an_intact_default_finetune_run_resumes(dataset, start, finetuned, tmp_path, capsys):
    run = copy_of(finetuned, tmp_path)
    code, err = call(resume(dataset, start, run), capsys)
    assert code == 0, err
    assert read_checkpoint_info(run / "last.safetensors")["provenance"]["step"] == 8
    before, after = load_model(start).stages[:2].state_dict(), load_model(run / "last.safetensors").stages[:2]
    for name, tensor in after.state_dict().items():  # the frozen stages stayed frozen after the resume
        assert torch.equal(tensor, before[name]), name


def damage_json(text):
    def damage(run):
        (run / "config.json").write_text(text)
    return damage


def damage_train_config(**changes):
    def damage(run):
        config = json.loads((run / "config.json").read_text())
        config["train_config"].update(changes)
        (run / "config.json").write_text(json.dumps(config))
    return damage


def damage_metrics(text):
    def damage(run):
        (run / "metrics.csv").write_text(text)
    return damage


def damage_optimizer_metadata(key, value):
    def damage(run):
        path = run / "last.optim.safetensors"
        raw = path.read_bytes()
        (length,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + length])
        header["__metadata__"][key] = value
        text = json.dumps(header).encode()
        path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + length:])
    return damage


@pytest.mark.parametrize("damage, needles", [
    (damage_json("{ not json"), ["config.json", "not valid JSON"]),
    (damage_json("[1, 2]"), ["config.json", "train_config"]),
    (damage_json('{"kind": "finetune"}'), ["config.json", "train_config"]),
    (damage_json('{"train_config": "fast"}'), ["config.json", "train_config"]),
    (damage_train_config(epochs="ten"), ["config.json", "epochs"]),
    (damage_train_config(size=[32]), ["config.json", "size"]),
    (damage_train_config(batch_size=10 ** 12), ["config.json", "batch_size"]),
    (damage_train_config(split="../../elsewhere"), ["config.json", "split"]),
    (damage_train_config(turbo=True), ["config.json", "turbo"]),
    (damage_metrics("step,epoch\nfour,0\n"), ["metrics.csv", "line 2"]),
    (damage_metrics("epoch,lr\n0,1\n"), ["metrics.csv", "step"]),
    (damage_metrics("step,epoch\n\x00\x01\x02\n"), ["metrics.csv"]),
    (damage_optimizer_metadata("param_groups", "[{]"), ["last.optim.safetensors", "not valid JSON"]),
    (damage_optimizer_metadata("param_groups", '[{"lr": "fast", "params": [0]}]'), ["last.optim.safetensors"]),
    (damage_optimizer_metadata("loop_state", '{"step": "four"}'), ["last.optim.safetensors", "step"]),
    (damage_optimizer_metadata("scalars", '{"0": {"step": "x"}}'), ["last.optim.safetensors"]),
])
def test_a_damaged_run_folder_is_a_clear_error(dataset, start, finetuned, tmp_path, capsys, damage, needles):
    run = copy_of(finetuned, tmp_path)
    damage(run)
    code, err = call(resume(dataset, start, run), capsys)
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    assert str(run) in err


def test_train_resume_reports_a_damaged_config_too(dataset, finetuned, tmp_path, capsys):
    run = copy_of(finetuned, tmp_path)
    damage_json("{ not json")(run)
    code, err = call(["train", "--data", dataset, "--out", run, "--resume", "--steps", "8", *FAST], capsys)
    assert code == 2 and "config.json" in err and "Traceback" not in err, err
