"""VPS metrics: threshold curves against hand-computed cases, S/E/MAE against pysodmetrics, the protocol's
frame dropping and averaging."""

from __future__ import annotations

import cv2
import numpy as np
import py_sod_metrics
import pytest

from vivim_core.metrics.vps import (VPSEvaluation, _round_half_away, frame_scores, normalise_map, s_measure,
                                    threshold_curves)


def test_normalisation_levels_are_exact():
    levels, normalised = normalise_map(np.array([[10, 20, 30]], np.uint8))
    assert levels.tolist() == [[0, 127, 255]]  # 127.5 -> reaches threshold 127/255, not 128/255
    np.testing.assert_allclose(normalised, [[0, 0.5, 1]])
    levels, normalised = normalise_map(np.full((2, 2), 255, np.uint8))  # constant: kept as is
    assert (levels == 255).all() and (normalised == 1).all()
    assert (normalise_map(np.zeros((2, 2), np.uint8))[0] == 0).all()
    levels, _ = normalise_map(np.array([[0.0, 0.25, 1.0]]))  # float probabilities
    assert levels.tolist() == [[0, 63, 255]]
    levels, _ = normalise_map(np.array([[0, 65535]], np.uint16))
    assert levels.tolist() == [[0, 255]]


def test_threshold_curves_hand_computed():
    gt = np.array([[1, 1, 0, 0]], bool)
    curves = threshold_curves(np.array([[255, 100, 150, 0]]), gt)
    for name, expected in {  # (k = 0, k in 1..100, k in 101..150, k in 151..255)
        "dice": (2 / 3, 4 / 5, 1 / 2, 2 / 3),
        "iou": (1 / 2, 2 / 3, 1 / 3, 1 / 2),
        "specificity": (0, 1 / 2, 1 / 2, 1),
    }.items():
        curve = curves[name]
        assert curve.shape == (256,)
        np.testing.assert_allclose([curve[0], curve[1], curve[100], curve[101], curve[150], curve[151], curve[255]],
                                   [expected[0], expected[1], expected[1], expected[2], expected[2], expected[3],
                                    expected[3]], err_msg=name)


def test_curves_are_zero_where_no_true_positive():
    gt = np.array([[1, 1, 0, 0]], bool)
    curves = threshold_curves(np.array([[100, 50, 255, 0]]), gt)  # above 100 only a false positive is left
    for name in ("dice", "iou", "specificity"):
        assert (curves[name][101:] == 0).all(), name  # specificity would be 1/2 without the reference's rule
    assert curves["specificity"][100] == pytest.approx(1 / 2)


def test_specificity_without_background_is_one_not_nan():
    curves = threshold_curves(np.array([[255, 10]]), np.array([[True, True]]))
    assert curves["specificity"][5] == 1.0 and not np.isnan(curves["specificity"]).any()


def test_e_measure_hand_cases():
    gt = np.zeros((4, 4), bool)
    gt[1:3, 1:3] = True
    perfect = np.where(gt, 255, 0).astype(np.uint8)
    curves = frame_scores(perfect, gt)
    np.testing.assert_allclose(curves["e_measure"][1:], 16 / 15)  # every pixel aligned: N / (N - 1)
    empty_gt = frame_scores(perfect, np.zeros((4, 4), bool))
    np.testing.assert_allclose(empty_gt["e_measure"][1:], (16 - 4) / 15)  # background predicted as such
    assert empty_gt["e_measure"][0] == 0  # threshold 0: everything predicted


def _maps(seed: int):
    """Random and structured (prediction uint8, gt bool) pairs, predictions spanning 0..255 exactly."""
    rng = np.random.default_rng(seed)
    h, w = rng.integers(8, 48, 2)
    if seed % 2:
        gt = rng.random((h, w)) < rng.uniform(0.05, 0.6)
        pred = rng.integers(0, 256, (h, w))
    else:
        gt = np.zeros((h, w), np.uint8)
        cv2.ellipse(gt, (int(rng.integers(2, w - 2)), int(rng.integers(2, h - 2))),
                    (int(rng.integers(2, w // 2)), int(rng.integers(2, h // 2))), float(rng.uniform(0, 180)), 0, 360,
                    1, -1)
        gt = gt.astype(bool)
        pred = cv2.GaussianBlur(gt.astype(np.float32), (0, 0), 2) * 200 + rng.normal(0, 20, (h, w))
    pred = np.clip(pred, 0, 255).astype(np.uint8)
    pred.flat[0], pred.flat[-1] = 0, 255  # exact levels: pysodmetrics' float floor agrees with ours
    return pred, gt


def _centroid_at_half(gt: np.ndarray) -> bool:
    rows, cols = np.nonzero(gt)
    return len(rows) > 0 and (cols.mean() % 1 == 0.5 or rows.mean() % 1 == 0.5)


@pytest.mark.parametrize("seed", range(16))
def test_s_e_mae_agree_with_pysodmetrics(seed):
    pred, gt = _maps(seed)
    ours = frame_scores(pred, gt)
    s_ref, e_ref, mae_ref = py_sod_metrics.Smeasure(), py_sod_metrics.Emeasure(), py_sod_metrics.MAE()
    for metric in (s_ref, e_ref, mae_ref):
        metric.step(pred, np.where(gt, 255, 0).astype(np.uint8))
    if not _centroid_at_half(gt):  # there pysodmetrics rounds half to even, MATLAB (and we) half away
        assert ours["s_measure"] == pytest.approx(float(s_ref.get_results()["sm"]), abs=1e-10)
    assert ours["mae"] == pytest.approx(float(mae_ref.get_results()["mae"]), abs=1e-12)
    e_curve = e_ref.get_results()["em"]["curve"][::-1]  # theirs runs from threshold 255 down to 0
    np.testing.assert_allclose(ours["e_measure"], e_curve, atol=1e-10)


def test_s_measure_edge_cases():
    assert s_measure(np.zeros((3, 3)), np.zeros((3, 3), bool)) == 1.0
    assert s_measure(np.full((3, 3), 0.25), np.ones((3, 3), bool)) == 0.25
    gt = np.zeros((5, 5), bool)
    gt[:, 4] = True  # centroid on the last column: an empty quadrant, no NaN
    value = s_measure(gt.astype(float), gt)
    assert 0.9 < value <= 1.0
    assert _round_half_away(2.5) == 3 and _round_half_away(3.5) == 4 and _round_half_away(2.4) == 2


def _frame(value_inside: int, gt: np.ndarray) -> np.ndarray:
    return np.where(gt, value_inside, 0).astype(np.uint8)


def test_first_and_last_frames_are_dropped():
    gt = np.zeros((6, 6), bool)
    gt[2:4, 2:5] = True
    wrong = np.where(gt, 0, 255).astype(np.uint8)
    evaluation = VPSEvaluation()
    for prediction in (wrong, _frame(255, gt), _frame(255, gt), wrong):
        evaluation.add("v", prediction, gt)
    result = evaluation.result()
    video = result["videos"]["v"]
    assert (video["frames"], video["frames_used"]) == (4, 2)
    assert video["max_dice"] == 1.0 and video["mae"] == 0.0 and video["s_measure"] == pytest.approx(1.0)
    assert result["warnings"] == [] and len(result["curves"]["dice"]) == 256


def test_short_videos_keep_all_frames_with_a_warning():
    gt = np.zeros((4, 4), bool)
    gt[1:3, 1:3] = True
    evaluation = VPSEvaluation()
    evaluation.add("two", _frame(255, gt), gt)
    evaluation.add("two", np.where(gt, 0, 255).astype(np.uint8), gt)
    result = evaluation.result()
    assert result["videos"]["two"]["frames_used"] == 2
    assert result["videos"]["two"]["mae"] == pytest.approx(0.5)
    assert "fewer than 3" in result["warnings"][0]


def test_curves_are_averaged_before_taking_the_max():
    """maxDice of the protocol is the max of the mean curve, not the mean of per-video maxima."""
    gt = np.zeros((1, 4), bool)
    gt[0, :2] = True
    low = np.array([[255, 100, 0, 0]], np.uint8)     # perfect for thresholds k in 1..100
    high = np.array([[255, 255, 128, 0]], np.uint8)  # perfect for k in 129..255
    evaluation = VPSEvaluation()
    for video, prediction in (("a", low), ("b", high)):
        for _ in range(3):
            evaluation.add(video, prediction, gt)
    result = evaluation.result()
    curve_a, curve_b = frame_scores(low, gt)["dice"], frame_scores(high, gt)["dice"]
    assert result["videos"]["a"]["max_dice"] == pytest.approx(curve_a.max())
    assert result["overall"]["max_dice"] == pytest.approx(((curve_a + curve_b) / 2).max())
    assert result["overall"]["max_dice"] == pytest.approx(0.9)  # (1 + 0.8) / 2 for k in 1..100
    assert curve_a.max() == curve_b.max() == 1.0
    assert result["overall"]["mae"] == pytest.approx((result["videos"]["a"]["mae"] + result["videos"]["b"]["mae"]) / 2)
