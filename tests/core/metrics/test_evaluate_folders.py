"""Folder evaluation: matching by name, prediction encodings, and every mismatch is an error naming files."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from vivim_core.data.readers import DataError, read_mask, write_mask
from vivim_core.data.synthetic import write_polyp_dataset, write_vtus_dataset
from vivim_core.metrics.evaluate import evaluate_folders


@pytest.fixture
def gt_dir(tmp_path):
    return write_vtus_dataset(tmp_path / "vtus", num_videos=2, frames_per_video=4, size=(24, 24), seed=4) / "Train_GT"


@pytest.fixture
def pred_dir(tmp_path, gt_dir):
    return shutil.copytree(gt_dir, tmp_path / "pred")


def test_perfect_predictions_score_one(pred_dir, gt_dir):
    calls = []
    result = evaluate_folders(pred_dir, gt_dir, "vtus", progress=lambda done, total: calls.append((done, total)))
    assert list(result["videos"]) == ["0001", "0002"]
    assert result["overall"]["dice"] == 1.0 and result["overall"]["frames"] == 8
    assert calls[-1] == (8, 8) and len(calls) == 8
    vps = evaluate_folders(pred_dir, gt_dir, "vps")
    assert vps["overall"]["max_dice"] == 1.0 and vps["overall"]["mae"] == 0.0 and vps["overall"]["frames_used"] == 4


def test_one_wrong_frame_changes_the_right_numbers(pred_dir, gt_dir):
    write_mask(pred_dir / "0002" / "0003.png", np.zeros((24, 24), bool))
    result = evaluate_folders(pred_dir, gt_dir, "vtus")
    expected_dice = 0.0 if read_mask(gt_dir / "0002" / "0003.png").any() else 1.0
    assert result["videos"]["0002"]["dice"] == pytest.approx((3 + expected_dice) / 4)
    assert result["overall"]["dice"] == pytest.approx((1 + (3 + expected_dice) / 4) / 2)


def test_probability_maps_are_binarised_at_128(tmp_path):
    gt = np.zeros((4, 4), bool)
    gt[:2] = True
    write_mask(tmp_path / "gt" / "v" / "0001.png", gt)
    probability = np.where(gt, 128, 127).astype(np.uint8)  # 128/255 >= 0.5 > 127/255
    (tmp_path / "pred" / "v").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "pred" / "v" / "0001.png"), probability)
    assert evaluate_folders(tmp_path / "pred", tmp_path / "gt")["overall"]["dice"] == 1.0


def test_zero_one_encoded_predictions_are_read_as_masks_with_a_warning(pred_dir, gt_dir):
    for path in pred_dir.rglob("*.png"):
        cv2.imwrite(str(path), (read_mask(path)).astype(np.uint8))
    result = evaluate_folders(pred_dir, gt_dir, "vtus")
    assert result["overall"]["dice"] == 1.0
    assert any("{0, 1}" in w for w in result["warnings"])


def test_integer_names_match_across_zero_padding_and_single_video_folders(tmp_path, gt_dir):
    (tmp_path / "one").mkdir()
    for path in (gt_dir / "0001").iterdir():  # 0001.png -> 1.png, in a folder of another name
        shutil.copy(path, tmp_path / "one" / f"{int(path.stem)}.png")
    result = evaluate_folders(tmp_path / "one", gt_dir / "0001")
    assert list(result["videos"]) == ["0001"] and result["overall"]["dice"] == 1.0


def test_polyp_ground_truth_folder(tmp_path):
    root = write_polyp_dataset(tmp_path / "polyp", num_videos=2, frames_per_video=3, size=(16, 16))
    result = evaluate_folders(root / "SynthPolyp" / "GT", root / "SynthPolyp" / "GT", "vps")
    assert list(result["videos"]) == ["case1", "case2"] and result["overall"]["max_dice"] == 1.0


def test_missing_and_extra_videos(pred_dir, gt_dir):
    shutil.rmtree(pred_dir / "0002")
    with pytest.raises(DataError, match=r"no predictions for 1 ground-truth video.*0002"):
        evaluate_folders(pred_dir, gt_dir)
    shutil.copytree(pred_dir / "0001", pred_dir / "0002")
    shutil.copytree(pred_dir / "0001", pred_dir / "0009")
    with pytest.raises(DataError, match=r"predictions for 1 video\(s\) without ground truth.*0009"):
        evaluate_folders(pred_dir, gt_dir)


def test_missing_and_extra_frames(pred_dir, gt_dir):
    (pred_dir / "0001" / "0004.png").unlink()
    with pytest.raises(DataError, match=r"'0001': no prediction for 1 ground-truth frame.*0004\.png"):
        evaluate_folders(pred_dir, gt_dir)
    shutil.copy(gt_dir / "0001" / "0004.png", pred_dir / "0001" / "0004.png")
    shutil.copy(gt_dir / "0001" / "0004.png", pred_dir / "0001" / "0005.png")
    with pytest.raises(DataError, match=r"prediction\(s\) without ground truth.*0005\.png"):
        evaluate_folders(pred_dir, gt_dir)


def test_size_mismatch_non_binary_gt_and_bad_files(pred_dir, gt_dir):
    write_mask(pred_dir / "0002" / "0001.png", np.zeros((12, 12), bool))
    with pytest.raises(DataError, match=r"0002/0001\.png: prediction is 12x12 but its ground truth .* is 24x24"):
        evaluate_folders(pred_dir, gt_dir)
    write_mask(pred_dir / "0002" / "0001.png", np.zeros((24, 24), bool))
    cv2.imwrite(str(gt_dir / "0001" / "0002.png"), np.full((24, 24), 100, np.uint8))
    with pytest.raises(DataError, match=r"0001/0002\.png: mask is not binary"):
        evaluate_folders(pred_dir, gt_dir)
    shutil.copy(gt_dir / "0001" / "0001.png", gt_dir / "0001" / "0002.png")
    (pred_dir / "0001" / "0003.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"0003\.png: cannot decode"):
        evaluate_folders(pred_dir, gt_dir)
    colour = np.zeros((24, 24, 3), np.uint8)
    colour[..., 2] = 255
    cv2.imwrite(str(pred_dir / "0001" / "0003.png"), colour)
    with pytest.raises(DataError, match=r"0003\.png: prediction has colour"):
        evaluate_folders(pred_dir, gt_dir)


def test_bad_folders_and_protocol(tmp_path, gt_dir):
    with pytest.raises(DataError, match="prediction folder not found"):
        evaluate_folders(tmp_path / "nope", gt_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no PNG masks found"):
        evaluate_folders(tmp_path / "empty", gt_dir)
    with pytest.raises(DataError, match="unknown protocol"):
        evaluate_folders(gt_dir, gt_dir, protocol="dice")


@pytest.mark.shared_data
def test_real_sample_against_itself_and_an_eroded_copy(tmp_path, vtus_sample):
    gt_dir = vtus_sample / "Train_GT"
    pred = tmp_path / "pred" / "0002"
    pred.mkdir(parents=True)
    for path in sorted((gt_dir / "0002").glob("*.png"))[::10]:  # every 10th frame, eroded by 2 pixels
        write_mask(pred / path.name, cv2.erode(read_mask(path).astype(np.uint8), np.ones((5, 5), np.uint8)))
    truth = tmp_path / "gt" / "0002"
    truth.mkdir(parents=True)
    for path in pred.iterdir():
        shutil.copy(gt_dir / "0002" / path.name, truth / path.name)
    result = evaluate_folders(tmp_path / "pred", tmp_path / "gt", "vtus")
    assert 0.85 < result["overall"]["dice"] < 1.0 and result["overall"]["precision"] == 1.0
