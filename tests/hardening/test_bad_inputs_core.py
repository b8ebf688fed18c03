"""Bad inputs through vivim-core: readers, and the verbs a user runs (predict, evaluate, train,
finetune), each case asserting what the user sees: exit code 2, one `error:` line without traceback that
names the file, the problem and the fix, and no output left that looks like a result."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from hardening_support import (MODEL_SIZE, assert_user_error, make_frames, run_cli, tiny_model, write_dicom,
                               write_images, write_video, wrong_variant_checkpoint)

from vivim_core.cli import main as core
from vivim_core.data.layouts import find_prediction_inputs, find_vtus_videos
from vivim_core.data.readers import DataError, VideoFileReader, read_frame, read_mask
from vivim_core.data.synthetic import write_video_file, write_vtus_dataset
from vivim_core.engine.checkpoint import CheckpointError, load_model, save_checkpoint
from vivim_core.engine.predict import PredictionError, iter_predict


def predict(input_path, checkpoint, out, capsys, *extra):
    return run_cli(core, ["predict", input_path, "--checkpoint", checkpoint, "--out", out, "--no-progress",
                          "--size", MODEL_SIZE, *extra], capsys)


def train_args(root, out, *extra):  # fails before the first step in every case below
    return ["train", "--data", root, "--out", out, "--no-progress", "--device", "cpu", "--size", "32", "--steps", "1",
            *extra]


@pytest.fixture
def vtus(tmp_path):
    return write_vtus_dataset(tmp_path / "vtus", num_videos=1, frames_per_video=5, size=(48, 64))


# video files ----------------------------------------------------------------------------------------------
def test_zero_byte_video(tmp_path, tiny_checkpoint, capsys):
    video = tmp_path / "scan.mp4"
    video.write_bytes(b"")
    with pytest.raises(DataError, match=r"scan\.mp4: the video file is empty \(0 bytes\)"):
        VideoFileReader(video)
    code, _, err = predict(video, tiny_checkpoint, tmp_path / "out", capsys)
    assert_user_error(code, err, str(video), "empty (0 bytes)", "copy or export it again")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["Train/0001/0002.jpg", "Train_GT/0001/0003.png"])
def test_zero_byte_frame_or_mask_in_a_dataset(tmp_path, tiny_checkpoint, capsys, vtus, name):
    (vtus / name).write_bytes(b"")
    code, _, err = run_cli(core, train_args(vtus, tmp_path / "run"), capsys)
    assert_user_error(code, err, str(vtus / name), "the file is empty (0 bytes)", "re-export or delete it")
    assert not (tmp_path / "run").exists()
    if name.startswith("Train/"):
        code, _, err = predict(vtus / "Train", tiny_checkpoint, tmp_path / "out", capsys)
        assert_user_error(code, err, str(vtus / name), "the file is empty (0 bytes)")


@pytest.mark.parametrize("suffix, fourcc, problem", [(".avi", "MJPG", "ended after"),
                                                     (".mp4", "mp4v", "OpenCV cannot open")])
def test_truncated_video(tmp_path, tiny_checkpoint, capsys, suffix, fourcc, problem):
    full = write_video(tmp_path / f"full{suffix}", make_frames(12)[0], fourcc=fourcc)
    video = tmp_path / f"cut{suffix}"
    video.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    code, _, err = predict(video, tiny_checkpoint, tmp_path / "out", capsys)
    assert_user_error(code, err, str(video), problem, "ffmpeg")
    assert not (tmp_path / "out" / "predictions.json").exists()  # no manifest: the output is not a result


def test_truncated_video_in_a_subprocess_prints_one_line(tmp_path, tiny_checkpoint):
    """The real console: exit 2, a single line on stderr (FFmpeg's own log lines silenced), no traceback."""
    full = write_video(tmp_path / "full.avi", make_frames(12)[0])
    video = tmp_path / "cut.avi"
    video.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    result = subprocess.run([sys.executable, "-m", "vivim_core", "predict", str(video), "--checkpoint",
                             str(tiny_checkpoint), "--out", str(tmp_path / "out"), "--no-progress", "--size", "64"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith("vivim-core predict: error: ") and str(video) in result.stderr


def test_not_a_video_and_unknown_file_types(tmp_path, tiny_checkpoint, capsys):
    text = tmp_path / "notes.mp4"
    text.write_text("this is a text file, not a video\n" * 50)
    code, _, err = predict(text, tiny_checkpoint, tmp_path / "out", capsys)
    assert_user_error(code, err, str(text), "OpenCV cannot open this video", "ffmpeg")
    other = tmp_path / "scan.xyz"
    other.write_bytes(b"\x00\x01binary")
    code, _, err = predict(other, tiny_checkpoint, tmp_path / "out", capsys)
    assert_user_error(code, err, str(other), "not a video")
    assert not (tmp_path / "out").exists()


def test_dicom_given_to_predict_points_to_the_studio(tmp_path, tiny_checkpoint, capsys):
    for name, frames in (("cine.dcm", make_frames(3, 32, 32)[0]), ("nopix.dcm", None)):
        dicom = write_dicom(tmp_path / name, frames)
        code, _, err = predict(dicom, tiny_checkpoint, tmp_path / "out", capsys)
        assert_user_error(code, err, str(dicom), "DICOM", "vivim-studio propose")
    renamed = tmp_path / "cine.bin"  # a DICOM without its suffix is recognised by its preamble
    renamed.write_bytes((tmp_path / "cine.dcm").read_bytes())
    with pytest.raises(DataError, match="a DICOM file"):
        find_prediction_inputs(renamed)


# frame folders --------------------------------------------------------------------------------------------
def test_mixed_frame_sizes(tmp_path, tiny_checkpoint, capsys, vtus):
    folder = write_images(tmp_path / "mixed", make_frames(5)[0])
    write_images(folder, [np.zeros((32, 40, 3), np.uint8)], names=["0004"])  # replaces frame 4
    code, _, err = predict(folder, tiny_checkpoint, tmp_path / "out", capsys)
    assert_user_error(code, err, str(folder / "0004.png"), "40x32", "64x48", "one size")
    odd = vtus / "Train" / "0001" / "0003.jpg"
    cv2.imwrite(str(odd), np.zeros((32, 40, 3), np.uint8))
    code, _, err = run_cli(core, train_args(vtus, tmp_path / "run"), capsys)
    assert_user_error(code, err, str(odd), "40x32", "one size")
    assert not (tmp_path / "run").exists()


def test_non_image_files_are_ignored_and_a_fake_image_is_named(tmp_path, tiny_checkpoint, capsys):
    folder = write_images(tmp_path / "video", make_frames(4)[0])
    (folder / "Thumbs.db").write_bytes(b"\x00\x01\x02")
    (folder / "notes.txt").write_text("exam notes")
    (folder / ".DS_Store").write_bytes(b"\x00")
    code, out, err = predict(folder, tiny_checkpoint, tmp_path / "out", capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out" / "video").iterdir()) == [f"000{i}.png" for i in range(1, 5)]
    (folder / "0005.png").write_text("a text file with an image's name")
    code, _, err = predict(folder, tiny_checkpoint, tmp_path / "out2", capsys)
    assert_user_error(code, err, str(folder / "0005.png"), "corrupt or not an image")
    with pytest.raises(DataError, match="0005.png: cannot decode"):
        read_frame(folder / "0005.png")


def test_frame_names_with_gaps_keep_their_names(tmp_path, tiny_checkpoint, capsys):
    names = ["1", "2", "5", "9", "10", "30"]  # gaps, and integer order differs from text order
    frames, masks = make_frames(6)
    root = tmp_path / "vtus"
    write_images(root / "Test" / "case", frames, names, ".jpg")
    write_images(root / "Test_GT" / "case", [m.astype(np.uint8) * 255 for m in masks], names)
    [video] = find_vtus_videos(root, "Test")
    assert [p.stem for p in video.frame_paths] == names and [p.stem for p in video.mask_paths] == names
    code, _, err = predict(root / "Test", tiny_checkpoint, tmp_path / "pred", capsys)
    assert code == 0, err
    assert sorted((p.stem for p in (tmp_path / "pred" / "case").iterdir()), key=int) == names
    code, out, err = run_cli(core, ["evaluate", "--pred", tmp_path / "pred", "--gt", root / "Test_GT",
                                    "--no-progress"], capsys)
    assert code == 0, err
    assert "case" in out and "6" in out


def test_vtus_with_missing_or_extra_ground_truth(tmp_path, tiny_checkpoint, capsys, vtus):
    gt = vtus / "Train_GT" / "0001"
    (gt / "0003.png").rename(tmp_path / "0003.png")
    for argv in (train_args(vtus, tmp_path / "run"),
                 ["finetune", "--data", vtus, "--checkpoint", tiny_checkpoint, "--out", tmp_path / "run",
                  "--no-progress", "--steps", "1"]):
        code, _, err = run_cli(core, argv, capsys)
        assert_user_error(code, err, str(gt), "no mask for 1 frame(s)", "0003.jpg", "needs a mask NAME.png")
    (tmp_path / "0003.png").rename(gt / "0003.png")
    (gt / "0099.png").write_bytes((gt / "0001.png").read_bytes())
    code, _, err = run_cli(core, train_args(vtus, tmp_path / "run"), capsys)
    assert_user_error(code, err, str(gt), "without a frame", "0099.png", "remove them")
    assert not (tmp_path / "run").exists()
    # evaluate: a ground-truth frame without prediction, then a prediction without ground truth
    pred = tmp_path / "pred" / "0001"
    pred.mkdir(parents=True)
    for p in list(gt.iterdir())[:3]:
        pred.joinpath(p.name).write_bytes(p.read_bytes())
    code, _, err = run_cli(core, ["evaluate", "--pred", tmp_path / "pred", "--gt", vtus / "Train_GT",
                                  "--no-progress"], capsys)
    assert_user_error(code, err, "no prediction for", "predict every frame")


@pytest.mark.parametrize("values, ok", [((0, 128, 255), False), ((0, 1), True), ((0, 254), False)])
def test_masks_that_are_not_0_255(tmp_path, capsys, vtus, values, ok):
    path = vtus / "Train_GT" / "0001" / "0002.png"
    mask = read_mask(path)
    encoded = np.full(mask.shape, values[0], np.uint8)
    encoded[mask] = values[-1]
    encoded[0, :2] = values[:2] if len(values) == 3 else encoded[0, :2]
    cv2.imwrite(str(path), encoded)
    if ok:
        assert np.array_equal(read_mask(path), mask)
        return
    code, _, err = run_cli(core, train_args(vtus, tmp_path / "run"), capsys)
    assert_user_error(code, err, str(path), "mask is not binary", str(values[-1]), "save masks as PNG")
    code, _, err = run_cli(core, ["evaluate", "--pred", vtus / "Train_GT", "--gt", vtus / "Train_GT",
                                  "--no-progress"], capsys)
    assert_user_error(code, err, str(path), "mask is not binary")


def test_rgb_masks(tmp_path, tiny_checkpoint, capsys, vtus):
    path = vtus / "Train_GT" / "0001" / "0002.png"
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(path), np.stack([grey] * 3, axis=-1))  # a grey mask saved as RGB: accepted
    assert np.array_equal(read_mask(path), grey == 255)
    cv2.imwrite(str(path), np.stack([grey, grey // 2, grey], axis=-1))  # a colour label image: refused
    code, _, err = run_cli(core, ["finetune", "--data", vtus, "--checkpoint", tiny_checkpoint, "--out",
                                  tmp_path / "run", "--no-progress", "--steps", "1"], capsys)
    assert_user_error(code, err, str(path), "mask has colour", "single-channel")
    assert not (tmp_path / "run").exists()


def test_16_bit_frames_and_masks(tmp_path, tiny_checkpoint, capsys):
    frames, masks = make_frames(4)
    root = tmp_path / "vtus"
    write_images(root / "Train" / "0001", [f.astype(np.uint16) * 257 for f in frames])
    write_images(root / "Train_GT" / "0001", [m.astype(np.uint16) * 65535 for m in masks])
    assert cv2.imread(str(root / "Train" / "0001" / "0001.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert np.array_equal(read_frame(root / "Train" / "0001" / "0001.png"), frames[0])  # scaled to 8 bits exactly
    from vivim_core.engine.train_data import find_training_videos

    [video] = find_training_videos(root)
    assert np.array_equal(read_mask(video.mask_paths[2]), masks[2])
    code, _, err = predict(root / "Train" / "0001", tiny_checkpoint, tmp_path / "pred", capsys)
    assert code == 0, err
    code, out, err = run_cli(core, ["evaluate", "--pred", tmp_path / "pred", "--gt", root / "Train_GT",
                                    "--no-progress"], capsys)
    assert code == 0, err


def test_16_bit_predictions_holding_8_bit_masks_are_not_scored_as_empty(tmp_path, capsys):
    _, masks = make_frames(4)
    write_images(tmp_path / "gt" / "0001", [m.astype(np.uint8) * 255 for m in masks])
    write_images(tmp_path / "pred" / "0001", [m.astype(np.uint16) * 255 for m in masks])  # 8-bit values, 16 bits
    code, out, err = run_cli(core, ["evaluate", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--no-progress",
                                    "--json", tmp_path / "scores.json"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "scores.json").read_text())["overall"]["dice"] == pytest.approx(1.0)


# huge and tiny videos -----------------------------------------------------------------------------------
def test_8k_frame_predicts_at_native_size(tmp_path, tiny_checkpoint, capsys):
    frame = np.zeros((4320, 7680, 3), np.uint8)
    cv2.circle(frame, (3000, 2000), 900, (200, 180, 160), -1)
    folder = write_images(tmp_path / "uhd", [frame])
    del frame
    code, _, err = predict(folder, tiny_checkpoint, tmp_path / "out", capsys)
    assert code == 0, err
    mask = cv2.imread(str(tmp_path / "out" / "uhd" / "0001.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (4320, 7680) and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}


def test_native_size_maps_are_made_a_bounded_number_at_a_time(monkeypatch):
    """Long videos of huge frames (8K: 133 MB per float map) never hold a whole batch of native-size maps."""
    import vivim_core.engine.predict as predict_module

    frames = make_frames(9, 96, 128)[0]
    model = tiny_model()
    expected = [p for _, p in iter_predict(model, frames, size=(64, 64))]
    sizes, real = [], predict_module.F.interpolate

    def spy(tensor, *args, **kwargs):
        if tuple(kwargs.get("size") or ()) == (96, 128):  # the resize to native size (not the model's own)
            sizes.append(tensor.shape[0])
        return real(tensor, *args, **kwargs)

    monkeypatch.setattr(predict_module, "NATIVE_CHUNK_BYTES", 2 * 4 * 96 * 128)  # two frames' worth
    monkeypatch.setattr(predict_module.F, "interpolate", spy)
    got = [p for _, p in iter_predict(model, frames, size=(64, 64))]
    assert sizes and max(sizes) <= 2 and sum(sizes) == 9
    assert all(np.array_equal(a, b) for a, b in zip(expected, got))


@pytest.mark.parametrize("kind", ["mp4", "avi", "folder"])
def test_a_one_frame_video_predicts(tmp_path, tiny_checkpoint, capsys, kind):
    frames = make_frames(1)[0]
    if kind == "folder":
        source = write_images(tmp_path / "one", frames)
    else:
        source = write_video_file(tmp_path / f"one.{kind}", frames)
    assert [len(v) for v in find_prediction_inputs(source)] == [1]
    code, out, err = predict(source, tiny_checkpoint, tmp_path / "out", capsys)
    assert code == 0, err
    written = list((tmp_path / "out" / "one").glob("*.png"))
    assert len(written) == 1 and cv2.imread(str(written[0]), cv2.IMREAD_UNCHANGED).shape == (48, 64)
    assert json.loads((tmp_path / "out" / "predictions.json").read_text())["videos"]["one"]["frames"] == 1


# checkpoints ------------------------------------------------------------------------------------------------
def test_checkpoint_of_the_wrong_variant(tmp_path, tiny_checkpoint, capsys, vtus):
    with pytest.raises(CheckpointError, match="holds a 'vivim-tiny' model, but 'vivim-b1' was asked for.*--variant"):
        load_model(tiny_checkpoint, variant="vivim-b1")
    wrong = wrong_variant_checkpoint(tiny_checkpoint, tmp_path / "wrong.safetensors")
    folder = write_images(tmp_path / "video", make_frames(3)[0])
    code, _, err = predict(folder, wrong, tmp_path / "out", capsys)
    assert_user_error(code, err, str(wrong), "does not match its own model config (vivim-b1)",
                      "use a checkpoint written by vivim-core")
    code, _, err = run_cli(core, ["finetune", "--data", vtus, "--checkpoint", wrong, "--out", tmp_path / "run",
                                  "--no-progress", "--steps", "1"], capsys)
    assert_user_error(code, err, str(wrong), "does not match")
    assert not (tmp_path / "out").exists() and not (tmp_path / "run" / "best.safetensors").exists()


def test_nan_weights(tmp_path, tiny_checkpoint, capsys, vtus):
    model = tiny_model()
    with torch.no_grad():
        model.decoder.classifier.weight.view(-1)[0] = float("nan")
    nan = save_checkpoint(model, tmp_path / "nan.safetensors")
    folder = write_images(tmp_path / "video", make_frames(3)[0])
    code, _, err = predict(folder, nan, tmp_path / "out", capsys)
    assert_user_error(code, err, str(nan), "NaN or infinite weights", "Use an earlier checkpoint")
    code, _, err = run_cli(core, ["finetune", "--data", vtus, "--checkpoint", nan, "--out", tmp_path / "run",
                                  "--no-progress", "--steps", "1"], capsys)
    assert_user_error(code, err, str(nan), "NaN or infinite weights")
    assert not (tmp_path / "out").exists()


def test_weights_that_overflow_to_nan_never_give_silently_empty_masks():
    """Finite weights can still overflow to NaN probabilities: prediction refuses instead of thresholding NaN
    (which would give empty masks and a wrong metric without any warning)."""
    model = tiny_model()
    with torch.no_grad():
        for parameter in model.decoder.parameters():
            parameter.fill_(3e38)
    with pytest.raises(PredictionError, match="NaN or infinite probabilities for frames 0..2.*another checkpoint"):
        list(iter_predict(model, make_frames(3)[0], size=(64, 64)))
