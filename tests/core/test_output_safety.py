"""Every verb that writes keeps its outputs apart from its inputs and from files it did not write: an --out on,
inside or around the data, a JSON file that is an expert mask, two videos whose names collide: each is refused
with one clear line (exit code 2), and nothing outside the chosen output changes."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from vivim_core.cli import main
from vivim_core.data.synthetic import write_vtus_dataset
from vivim_core.engine.checkpoint import save_checkpoint
from vivim_core.model import build_model


def tree(root):
    """Every file (bytes) and folder (None) under `root`, symlinks listed as their target."""
    root = root.resolve()
    found = {}
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        found[key] = ("->" + str(path.readlink())) if path.is_symlink() else (path.read_bytes() if path.is_file()
                                                                             else None)
    return found


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("vivim-tiny", embed_dims=(8, 16, 32, 64), transformer_depths=(1,) * 4,
                        temporal_depths=(1, 0, 0, 1), num_heads=(1,) * 4, decoder_dim=32, boundary_head_dim=8)
    return save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "tiny.safetensors",
                           provenance={"train_size": [64, 64], "clip_length": 3})


def frames_folder(folder, count=3, names=None):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        name = names[i] if names else f"{i + 1:04d}.png"
        cv2.imwrite(str(folder / name), np.full((32, 32, 3), 30 * i + 20, np.uint8))
    return folder


def avi(path, count=3):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 32))
    for i in range(count):
        writer.write(np.full((32, 32, 3), 30 * i + 20, np.uint8))
    writer.release()
    return path


def run(argv, capsys):
    capsys.readouterr()
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def refused(code, err, *needles):
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


def predict(source, checkpoint, out, *extra):
    return ["predict", source, "--checkpoint", checkpoint, "--out", out, "--no-progress", *extra]


# predict ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["same", "parent", "inside", "video_folder", "checkpoint_folder"])
def test_predict_never_writes_on_inside_or_around_its_input(tmp_path, checkpoint, capsys, where):
    data = tmp_path / "data"
    video = frames_folder(data / "case1")
    clip = avi(data / "clip.avi")
    local_checkpoint = shutil.copy(checkpoint, data / "model.safetensors")
    source, out = {"same": (video, video), "parent": (video, data), "inside": (video, video / "pred"),
                   "video_folder": (clip, data), "checkpoint_folder": (video, data)}[where]
    if where == "checkpoint_folder":
        source = video = frames_folder(tmp_path / "elsewhere")
    before = tree(tmp_path)
    code, err = run(predict(source, local_checkpoint, out), capsys)
    refused(code, err, "overlaps", "--out")
    assert tree(tmp_path) == before


def test_predict_refuses_a_folder_of_someone_elses_files(tmp_path, checkpoint, capsys):
    """`predict ROOT/Test --out ROOT/Test_GT` must not overwrite the expert masks."""
    root = write_vtus_dataset(tmp_path / "vtus", num_videos=1, frames_per_video=3, size=(32, 32), split="Test")
    before = tree(tmp_path)
    code, err = run(predict(root / "Test", checkpoint, root / "Test_GT"), capsys)
    refused(code, err, "already holds files that vivim-core did not write", "new or empty folder")
    assert tree(tmp_path) == before


def test_predict_may_write_again_into_its_own_output(tmp_path, checkpoint, capsys):
    video = frames_folder(tmp_path / "case1")
    out = tmp_path / "pred"
    for _ in range(2):
        code, err = run(predict(video, checkpoint, out), capsys)
        assert code == 0, err
    assert sorted(p.name for p in (out / "case1").iterdir()) == ["0001.png", "0002.png", "0003.png"]


def test_prob_out_must_be_apart_from_out(tmp_path, checkpoint, capsys):
    video = frames_folder(tmp_path / "case1")
    for prob in (tmp_path / "pred", tmp_path / "pred" / "prob"):
        code, err = run(predict(video, checkpoint, tmp_path / "pred", "--prob-out", prob), capsys)
        refused(code, err, "--prob-out", "overlap")
        assert not (tmp_path / "pred").exists()


@pytest.mark.parametrize("names, problem", [
    (["a:b.avi", "a_b.avi"], "a:b.avi"),
    (["Case.avi", "case.avi"], "Case.avi"),
])
def test_inputs_whose_names_collide_once_made_safe_are_refused(tmp_path, checkpoint, capsys, names, problem):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in names:
        avi(folder / name)
    code, err = run(predict(folder, checkpoint, tmp_path / "out"), capsys)
    refused(code, err, problem, "rename")
    assert not (tmp_path / "out").exists()


def test_frames_whose_masks_would_share_a_name_are_refused(tmp_path, checkpoint, capsys):
    video = frames_folder(tmp_path / "case1", 2, ["0001.png", "0001.jpg"])
    code, err = run(predict(video, checkpoint, tmp_path / "out"), capsys)
    refused(code, err, "0001.jpg", "0001.png", "rename")


def test_a_name_of_dots_stays_inside_out(tmp_path, checkpoint, capsys):
    source = avi(tmp_path / "in" / "....avi") if (tmp_path / "in").mkdir() is None else None
    out = tmp_path / "deep" / "out"
    code, err = run(predict(source, checkpoint, out), capsys)
    assert code == 0, err
    written = [p for p in tmp_path.rglob("*.png")]
    assert written and all(out in p.parents for p in written)
    manifest = json.loads((out / "predictions.json").read_text())
    assert list(manifest["videos"]) == ["_"]


def test_a_symlink_in_out_that_leads_elsewhere_is_refused(tmp_path, checkpoint, capsys):
    video = frames_folder(tmp_path / "case1")
    out, elsewhere = tmp_path / "pred", tmp_path / "elsewhere"
    assert run(predict(video, checkpoint, out), capsys)[0] == 0
    shutil.rmtree(out / "case1")
    elsewhere.mkdir()
    (out / "case1").symlink_to(elsewhere)
    code, err = run(predict(video, checkpoint, out), capsys)
    refused(code, err, "outside")
    assert not any(elsewhere.iterdir())


# evaluate ---------------------------------------------------------------------------------------------------
@pytest.fixture
def scored(tmp_path, checkpoint, capsys):
    root = write_vtus_dataset(tmp_path / "vtus", num_videos=1, frames_per_video=3, size=(32, 32), split="Test")
    pred = tmp_path / "pred"
    assert run(predict(root / "Test", checkpoint, pred), capsys)[0] == 0
    return root / "Test_GT", pred


def test_evaluate_never_writes_its_json_over_a_mask_or_inside_the_data(tmp_path, scored, capsys):
    gt, pred = scored
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": 1}')
    image = tmp_path / "figure.png"
    image.write_bytes(b"\x89PNG not really")
    mask = next(gt.rglob("*.png"))
    before = tree(tmp_path)
    for target, needle in ((mask, "--json"), (gt / "scores.json", "--gt"), (pred / "0001" / "scores.json", "--pred"),
                           (notes, "did not write"), (image, "did not write"), (gt, "--json")):
        code, err = run(["evaluate", "--pred", pred, "--gt", gt, "--json", target, "--no-progress"], capsys)
        refused(code, err, needle)
    assert tree(tmp_path) == before


def test_evaluate_may_replace_its_own_json(tmp_path, scored, capsys):
    gt, pred = scored
    scores = tmp_path / "results" / "scores.json"
    for _ in range(2):
        code, err = run(["evaluate", "--pred", pred, "--gt", gt, "--json", scores, "--no-progress"], capsys)
        assert code == 0, err
    assert json.loads(scores.read_text())["protocol"] == "vtus"


# train, finetune, train-affine-prior, benchmark --------------------------------------------------------------
TRAIN = ["--no-progress", "--device", "cpu", "--size", "32", "--steps", "1", "--num-workers", "0", "--batch-size",
         "1", "--clip-length", "2"]


@pytest.fixture
def dataset(tmp_path):
    return write_vtus_dataset(tmp_path / "vtus", num_videos=1, frames_per_video=3, size=(32, 32))


@pytest.mark.parametrize("where", ["root", "inside", "split"])
def test_train_out_apart_from_the_data(tmp_path, dataset, capsys, where):
    out = {"root": dataset, "inside": dataset / "runs" / "a", "split": dataset / "Train"}[where]
    before = tree(tmp_path)
    code, err = run(["train", "--data", dataset, "--out", out, *TRAIN], capsys)
    refused(code, err, "overlaps")
    assert tree(tmp_path) == before


def test_train_refuses_a_folder_with_files_a_run_would_overwrite(tmp_path, dataset, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "metrics.csv").write_text("my own spreadsheet\n")
    before = tree(tmp_path)
    code, err = run(["train", "--data", dataset, "--out", out, *TRAIN], capsys)
    refused(code, err, "metrics.csv")
    assert tree(tmp_path) == before


def test_finetune_never_writes_over_its_checkpoint(tmp_path, dataset, checkpoint, capsys):
    folder = tmp_path / "models"
    folder.mkdir()
    start = shutil.copy(checkpoint, folder / "best.safetensors")
    before = tree(tmp_path)
    code, err = run(["finetune", "--data", dataset, "--checkpoint", start, "--out", folder, *TRAIN], capsys)
    refused(code, err, "overlaps")
    assert tree(tmp_path) == before


def test_single_file_outputs_replace_only_their_own_kind(tmp_path, capsys):
    notes = tmp_path / "notes.safetensors"
    notes.write_text("not a prior")
    report = tmp_path / "report.json"
    report.write_text('{"mine": true}')
    before = tree(tmp_path)
    code, err = run(["train-affine-prior", "--out", notes, "--steps", "1", "--batch-size", "2", "--no-progress"],
                    capsys)
    refused(code, err, str(notes), "did not write")
    code, err = run(["benchmark", "--suite", "model", "--variants", "vivim-tiny", "--device", "cpu", "--out", report],
                    capsys)
    refused(code, err, str(report), "did not write")
    assert tree(tmp_path) == before
