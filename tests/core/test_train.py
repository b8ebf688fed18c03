"""Training, resuming, few-frame fine-tuning, prediction + evaluation end to end, and DDP on 2 CPU processes,
on a small synthetic VTUS-layout dataset (64x64 frames, clips of 3)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from vivim_core.cli import main
from vivim_core.data.readers import read_mask
from vivim_core.data.synthetic import write_vtus_dataset
from vivim_core.engine.checkpoint import load_model, read_checkpoint_info
from vivim_core.engine.train import TrainConfig, TrainingCancelled, train
from vivim_core.engine.train_config import TrainConfigError

TINY = ["--batch-size", "2", "--clip-length", "3", "--size", "64", "--num-workers", "0", "--no-progress"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vtus")
    write_vtus_dataset(root, num_videos=3, frames_per_video=10, size=(64, 64))
    write_vtus_dataset(root, num_videos=1, frames_per_video=6, size=(64, 64), split="Test", seed=5)
    return root


@pytest.fixture(scope="module")
def trained_run(dataset, tmp_path_factory) -> Path:
    """`vivim-core train` of vivim-tiny for one epoch (8 steps), evaluating every 2 steps."""
    run = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["train", "--data", str(dataset), "--variant", "vivim-tiny", "--out", str(run), "--epochs", "1",
                 "--eval-every", "2", *TINY]) == 0
    return run


def metrics(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_one_epoch_lowers_the_loss_and_fills_the_run_folder(trained_run):
    rows = metrics(trained_run)
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert all(float(r["train_affine"]) > 0 and float(r["train_boundary"]) > 0 for r in rows)  # all three terms on
    config = json.loads((trained_run / "config.json").read_text())
    assert config["train_config"]["seed"] == 0 and config["train_config"]["size"] == [64, 64]
    assert config["resolved"]["boundary_loss"] is True and config["resolved"]["val_mode"] == "videos"
    assert config["resolved"]["affine_prior"]["training"]["config"]["seed"] == 0
    split = json.loads((trained_run / "split.json").read_text())
    assert len(split["train"]) == 2 and len(split["val"]) == 1 and not set(split["train"]) & set(split["val"])
    for name in ("best.safetensors", "last.safetensors"):
        model = load_model(trained_run / name)
        assert model.config.variant == "vivim-tiny"
    provenance = read_checkpoint_info(trained_run / "last.safetensors")["provenance"]
    assert provenance["step"] == 8 and provenance["train_size"] == [64, 64] and provenance["seed"] == 0
    header = (trained_run / "last.optim.safetensors").read_bytes()[:4096]
    assert b"vivim-optimizer-state" in header  # safetensors + JSON, nothing pickled


def test_resume_continues_from_last_and_refuses_changed_settings(trained_run, tmp_path, capsys):
    run = tmp_path / "resumed"
    shutil.copytree(trained_run, run)
    assert main(["train", "--data", str(json.loads((run / "config.json").read_text())["data"]), "--out", str(run),
                 "--resume", "--steps", "10", "--no-progress"]) == 0  # extend the run into epoch 2
    rows = metrics(run)
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8, 10]
    assert read_checkpoint_info(run / "last.safetensors")["provenance"]["step"] == 10
    assert main(["train", "--data", "unused", "--out", str(run), "--resume", "--lr", "0.5", "--no-progress"]) == 2
    assert "lr differ" in capsys.readouterr().err


def test_finetune_a_few_frame_studio_export_with_the_defaults(dataset, trained_run, tmp_path):
    """Three accepted frames of one video, numbered as in the source video: the few-frame recipe must just
    work (the frame size and clip length come from the checkpoint)."""
    export = tmp_path / "export"
    for number in (2, 5, 9):
        for split, suffix in (("Train", ".jpg"), ("Train_GT", ".png")):
            target = export / split / "case7" / f"{number:04d}{suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(dataset / split / "0001" / f"{number:04d}{suffix}", target)
    out = tmp_path / "ft"
    assert main(["finetune", "--data", str(export), "--checkpoint", str(trained_run / "best.safetensors"),
                 "--out", str(out), "--steps", "4", "--eval-every", "2", "--no-progress"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "finetune" and config["resolved"]["val_mode"] == "train"
    assert config["train_config"]["size"] == [64, 64] and config["train_config"]["augment"] is True
    assert config["start_checkpoint"]["path"].endswith("best.safetensors")
    assert len(metrics(out)) == 2 and load_model(out / "best.safetensors").config.variant == "vivim-tiny"


def test_predict_then_evaluate_end_to_end(dataset, trained_run, tmp_path):
    pred, prob, scores = tmp_path / "pred", tmp_path / "prob", tmp_path / "scores.json"
    assert main(["predict", str(dataset / "Test"), "--checkpoint", str(trained_run / "best.safetensors"),
                 "--out", str(pred), "--prob-out", str(prob), "--no-progress"]) == 0
    masks = sorted((pred / "0001").glob("*.png"))
    assert [p.name for p in masks] == [f"{i:04d}.png" for i in range(1, 7)]
    assert set(np.unique(np.stack([read_mask(p) for p in masks]).astype(np.uint8) * 255)) <= {0, 255}
    manifest = json.loads((pred / "predictions.json").read_text())
    assert manifest["size"] == [64, 64] and manifest["clip_length"] == 3 and len(manifest["checkpoint_sha256"]) == 64
    assert len(list((prob / "0001").glob("*.png"))) == 6
    assert main(["evaluate", "--pred", str(pred), "--gt", str(dataset / "Test_GT"), "--json", str(scores),
                 "--no-progress"]) == 0
    overall = json.loads(scores.read_text())["overall"]
    assert 0 <= overall["dice"] <= 1 and overall["frames"] == 6


def test_cancel_saves_last_and_raises(dataset, tmp_path):
    event = threading.Event()
    config = TrainConfig(max_steps=50, batch_size=2, clip_length=3, size=(64, 64), num_workers=0, log_every=1,
                         val_mode="none")
    with pytest.raises(TrainingCancelled, match="resume"):
        train(dataset, tmp_path / "cancelled", config, progress=lambda e: event.set(), cancel=event)
    assert read_checkpoint_info(tmp_path / "cancelled" / "last.safetensors")["provenance"]["step"] == 1


def test_c3_ablation_trains_without_the_boundary_loss(dataset, tmp_path):
    config = TrainConfig(ablation="c3", max_steps=1, batch_size=1, clip_length=3, size=(64, 64), num_workers=0,
                         val_mode="none")
    result = train(dataset, tmp_path / "c3", config)
    assert result.steps == 1 and result.best_path.is_file()
    row = metrics(tmp_path / "c3")[0]
    assert float(row["train_affine"]) == 0 and float(row["train_boundary"]) == 0
    assert json.loads((tmp_path / "c3" / "config.json").read_text())["resolved"]["boundary_loss"] is False


def test_bad_settings_and_data_are_clear_errors(tmp_path, capsys):
    with pytest.raises(TrainConfigError, match="multiple of 32"):
        TrainConfig(size=(50, 64))
    with pytest.raises(TrainConfigError, match="ablation"):
        TrainConfig(ablation="c4")
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "Traceback" not in err


DDP_WORKER = """
import json, os, sys
from vivim_core.engine.train import TrainConfig, train
config = TrainConfig(max_steps=2, batch_size=1, clip_length=3, size=(64, 64), num_workers=0, eval_every=2, device="cpu")
result = train(sys.argv[1], sys.argv[2], config)  # joins the process group and leaves it
tasks = "/proc/self/task"
threads = [open(f"{tasks}/{t}/comm").read().strip() for t in os.listdir(tasks)] if os.path.isdir(tasks) else []
report = {"main": result.is_main, "steps": result.steps,
          "checksum": float(sum(p.detach().double().sum() for p in result.model.parameters())),
          "gloo_threads_left": [name for name in threads if "gloo" in name]}
with open(os.path.join(sys.argv[3], f"rank{os.environ['RANK']}.json"), "w") as f:
    json.dump(report, f)
"""


def test_ddp_with_two_cpu_processes(dataset, tmp_path):
    """torchrun, gloo: every rank takes half of the clips, replicas stay identical, only rank 0 writes, and the
    process group is gone (its worker threads stopped) when train() returns: a gloo thread left running at exit
    could abort the process while the interpreter finalises."""
    script = tmp_path / "ddp_worker.py"
    script.write_text(DDP_WORKER)
    out, reports = tmp_path / "ddp", tmp_path / "reports"
    reports.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             str(script), str(dataset), str(out), str(reports)], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ranks = [json.loads((reports / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [(r["main"], r["steps"]) for r in ranks] == [(True, 2), (False, 2)]
    assert ranks[0]["checksum"] == ranks[1]["checksum"]  # DDP kept the replicas identical
    assert ranks[0]["gloo_threads_left"] == ranks[1]["gloo_threads_left"] == []
    resolved = json.loads((out / "config.json").read_text())["resolved"]
    assert resolved["world_size"] == 2 and resolved["global_batch_size"] == 2 and resolved["steps_per_epoch"] == 8
    assert len(metrics(out)) == 1  # one writer
    assert load_model(out / "best.safetensors").config.variant == "vivim-tiny"
    assert torch.cuda.is_available() or resolved["device"] == "cpu"


def test_validation_split_modes():
    from vivim_core.data.layouts import VideoRecord
    from vivim_core.engine.train_data import split_videos

    def video(name, n):
        return VideoRecord(name, [Path(f"{i:04d}.jpg") for i in range(1, n + 1)],
                           [Path(f"{i:04d}.png") for i in range(1, n + 1)])

    config = TrainConfig(clip_length=5)
    train_v, val_v, mode = split_videos([video("a", 40)], config, "root")
    assert mode == "frames" and len(train_v[0]) == 32 and [p.name for p in val_v[0].frame_paths][0] == "0033.jpg"
    assert split_videos([video("a", 6)], config, "root")[2] == "train"  # a few accepted frames
    assert split_videos([video("a", 40)], config.replace(val_fraction=0.0), "root")[:2] == ([video("a", 40)], [])
    train_v, val_v, mode = split_videos([video(c, 10) for c in "abcde"], config, "root")
    assert mode == "videos" and len(val_v) == 1 and len(train_v) == 4
