"""VTUS metrics against hand-computed cases, the empty-mask conventions and the averaging order."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra.numpy import arrays

from vivim_core.metrics.vtus import VTUSEvaluation, frame_scores


def _masks(pred_rows, gt_rows):
    return np.array(pred_rows, bool), np.array(gt_rows, bool)


def test_hand_computed_frame():
    # TP = 1, FP = 1, FN = 2, TN = 2
    pred, gt = _masks([[1, 0, 1], [0, 0, 0]], [[1, 1, 0], [1, 0, 0]])
    scores = frame_scores(pred, gt)
    assert scores["dice"] == pytest.approx(2 / 5)
    assert scores["jaccard"] == pytest.approx(1 / 4)
    assert scores["precision"] == pytest.approx(1 / 2)
    assert scores["recall"] == pytest.approx(1 / 3)


def test_probabilities_are_binarised_at_one_half_inclusive():
    gt = np.array([[True, True]])
    assert frame_scores(np.array([[0.5, 0.4999]]), gt)["recall"] == 0.5
    assert frame_scores(np.array([[0.5, 0.5]]), gt)["dice"] == 1.0


@pytest.mark.parametrize("pred, gt, expected", [
    ([[0, 0]], [[0, 0]], 1.0),  # both empty: a correct lesion-free frame
    ([[0, 0]], [[1, 0]], 0.0),  # lesion missed
    ([[1, 0]], [[0, 0]], 0.0),  # lesion hallucinated
])
def test_empty_mask_conventions(pred, gt, expected):
    scores = frame_scores(*_masks(pred, gt))
    assert all(scores[k] == expected for k in ("dice", "jaccard", "precision", "recall")), scores


@settings(max_examples=30, deadline=None)
@given(arrays(bool, (6, 7)), arrays(bool, (6, 7)))
def test_scores_are_bounded_consistent_and_never_nan(pred, gt):
    scores = frame_scores(pred, gt)
    for name in ("dice", "jaccard", "precision", "recall"):
        assert 0.0 <= scores[name] <= 1.0 and not math.isnan(scores[name])
    assert scores["dice"] == pytest.approx(2 * scores["jaccard"] / (1 + scores["jaccard"]))
    assert frame_scores(gt, gt)["dice"] == 1.0


def test_average_over_frames_then_videos():
    evaluation = VTUSEvaluation()
    gt = np.array([[True, False]])
    evaluation.add("long", gt, gt)                        # dice 1
    evaluation.add("long", np.array([[False, True]]), gt)  # dice 0
    evaluation.add("long", gt, gt)                        # dice 1
    evaluation.add("short", np.array([[False, True]]), gt)  # dice 0
    result = evaluation.result()
    assert result["videos"]["long"]["dice"] == pytest.approx(2 / 3)
    assert result["videos"]["short"]["dice"] == 0.0
    assert result["overall"]["dice"] == pytest.approx(1 / 3)  # (2/3 + 0) / 2, not the frame mean 2/4
    assert result["overall"]["frames"] == 4 and result["overall"]["videos"] == 2
    assert "then mean over videos" in result["averaging"]


def test_empty_frame_counts_are_reported():
    evaluation = VTUSEvaluation(keep_frames=True)
    evaluation.add("v", np.zeros((2, 2), bool), np.zeros((2, 2), bool), "0001")
    video = evaluation.result()["videos"]["v"]
    assert video["empty_gt_frames"] == 1 and video["empty_prediction_frames"] == 1
    assert video["per_frame"] == [{"frame": "0001", "dice": 1.0, "jaccard": 1.0, "precision": 1.0, "recall": 1.0}]


def test_shape_mismatch_and_nothing_evaluated():
    with pytest.raises(ValueError, match="differ in shape"):
        frame_scores(np.zeros((2, 2), bool), np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match="no frames"):
        VTUSEvaluation().result()
