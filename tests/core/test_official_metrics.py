"""`evaluate --protocol official`: the official Vivim code's validation scores, checked against a literal,
threshold-by-threshold transcription of its rules (misc2's empty-mask cases included)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from vivim_core.metrics.official import OfficialEvaluation, frame_scores


def literal_scores(p: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """One frame, as the official loop does it: for each threshold, binarise with p > t and apply misc2."""
    rows = []
    for t in np.linspace(1, 0, 256):
        test = p > t
        tp, fp = int((test & gt).sum()), int((test & ~gt).sum())
        fn, tn = int((~test & gt).sum()), int((~test & ~gt).sum())
        test_empty, ref_empty, ref_full = not test.any(), not gt.any(), gt.all()
        dice = 0.0 if test_empty and ref_empty else 2 * tp / (2 * tp + fp + fn)
        jaccard = 0.0 if test_empty and ref_empty else tp / (tp + fp + fn)
        precision = 0.0 if test_empty else tp / (tp + fp)
        recall = 0.0 if ref_empty else tp / (tp + fn)
        specificity = 0.0 if ref_full else tn / (tn + fp)
        f_measure = 2 * precision * recall / (precision + recall + 1e-5)
        rows.append((dice, jaccard, precision, recall, specificity, f_measure))
    means = np.mean(rows, axis=0)
    return dict(zip(("dice", "jaccard", "precision", "recall", "specificity", "f_measure"), means))


@pytest.mark.parametrize("case", ["lesion", "empty truth", "empty prediction", "full truth", "binary"])
def test_frame_scores_follow_the_official_rules_threshold_by_threshold(case):
    rng = np.random.default_rng(7)
    gt = np.zeros((24, 32), bool)
    gt[6:16, 8:20] = True
    p = np.clip(gt * 0.7 + rng.random(gt.shape) * 0.5 - 0.1, 0, 1)
    if case == "empty truth":
        gt[:] = False
    elif case == "empty prediction":
        p[:] = 0.0
    elif case == "full truth":
        gt[:] = True
    elif case == "binary":
        p = gt.astype(np.float64)
    p = np.round(p * 255) / 255  # as read back from an 8-bit probability map
    ours, literal = frame_scores(p, gt), literal_scores(p, gt)
    for name, value in literal.items():
        assert ours[name] == pytest.approx(value, abs=1e-12), name


def test_frames_are_averaged_over_all_videos_together():
    evaluation = OfficialEvaluation()
    gt = np.zeros((8, 8), bool)
    gt[2:6, 2:6] = True
    evaluation.add("long", gt.astype(float), gt)
    evaluation.add("long", gt.astype(float), gt)
    evaluation.add("short", np.zeros((8, 8)), gt)
    result = evaluation.result()
    per_frame = [frame_scores(gt.astype(float), gt)["dice"]] * 2 + [frame_scores(np.zeros((8, 8)), gt)["dice"]]
    assert result["overall"]["dice"] == pytest.approx(np.mean(per_frame))
    assert result["overall"]["frames"] == 3 and result["videos"]["long"]["frames"] == 2


def test_evaluate_command_with_the_official_protocol(tmp_path, capsys):
    from vivim_core.cli import main

    gt = np.zeros((16, 16), np.uint8)
    gt[4:12, 4:12] = 255
    for root, image in (("gt", gt), ("pred", (gt * 0.8).astype(np.uint8))):
        (tmp_path / root / "0001").mkdir(parents=True)
        for name in ("0001.png", "0002.png"):
            cv2.imwrite(str(tmp_path / root / "0001" / name), image)
    code = main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--protocol", "official",
                 "--json", str(tmp_path / "scores.json"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "Spec" in out and "all frames of all videos" in out
    scores = json.loads((tmp_path / "scores.json").read_text())
    expected = frame_scores((gt * 0.8).astype(np.uint8) / 255, gt > 0)
    assert scores["protocol"] == "official" and scores["overall"]["dice"] == pytest.approx(expected["dice"])
