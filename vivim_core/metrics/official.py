"""The official Vivim code's validation scores, reimplemented (`vivim-core evaluate --protocol official`).

The public code (scott-yjyang/Vivim, `train_pl_polyp.py` with `misc2.py`) scores each predicted frame as
follows, and this module does the same so that a reviewer can compare with its numbers:

* the probability map p (float in [0, 1]) is binarised at each of 256 thresholds t = linspace(1, 0, 256) as
  p > t, and each of Dice, Jaccard, Precision, Recall, Specificity and F-measure is averaged over the 256
  thresholds (not taken at the best one);
* its empty-mask rules: Dice and Jaccard are 0 when prediction and ground truth are both empty, Precision 0 for
  an empty prediction, Recall 0 for an empty ground truth, Specificity 0 for a ground truth that fills the
  frame; F-measure is 2PR / (P + R + 1e-5) from each threshold's P and R;
* the frame scores are averaged over all frames of all videos together (longer videos weigh more), unlike the
  VTUS protocol's mean of per-video means;
* S-measure (alpha 0.5) and MAE of the map as it is (no min-max normalisation), averaged over all frames.
  The official code also logs an E-measure of its own implementation; it is not reproduced here.

Pair it with `vivim-core predict --protocol official --save-prob` for the official inference.
"""

from __future__ import annotations

import numpy as np

from .vps import mean_absolute_error, s_measure

OFFICIAL_METRICS = ("dice", "jaccard", "precision", "recall", "specificity", "f_measure", "s_measure", "mae")
THRESHOLDS = np.linspace(1, 0, 256)
AVERAGING = "per frame (threshold metrics averaged over 256 thresholds), then mean over all frames of all videos"


def _above(sorted_values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """How many of `sorted_values` exceed each threshold, int64 (256,)."""
    return sorted_values.size - np.searchsorted(sorted_values, thresholds, side="right")


def frame_scores(probability: np.ndarray, ground_truth: np.ndarray) -> dict[str, float]:
    """The official scores of one frame: probability float (H, W) in [0, 1], ground_truth bool (H, W)."""
    p = np.asarray(probability, dtype=np.float64)
    gt = np.asarray(ground_truth, dtype=bool)
    if p.shape != gt.shape:
        raise ValueError(f"prediction {p.shape} and ground truth {gt.shape} differ in shape")
    positives, negatives = int(gt.sum()), int(gt.size - gt.sum())
    tp = _above(np.sort(p[gt]), THRESHOLDS).astype(np.float64)
    fp = _above(np.sort(p[~gt]), THRESHOLDS).astype(np.float64)
    fn, tn = positives - tp, negatives - fp
    predicted = tp + fp
    both_empty = (predicted == 0) & (positives == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        dice = np.where(both_empty, 0.0, 2 * tp / (2 * tp + fp + fn))
        jaccard = np.where(both_empty, 0.0, tp / (tp + fp + fn))
        precision = np.where(predicted == 0, 0.0, tp / predicted)
        recall = np.zeros_like(tp) if positives == 0 else tp / positives
        specificity = np.zeros_like(tp) if negatives == 0 else tn / negatives
    f_measure = 2 * precision * recall / (precision + recall + 1e-5)
    return {"dice": float(dice.mean()), "jaccard": float(jaccard.mean()), "precision": float(precision.mean()),
            "recall": float(recall.mean()), "specificity": float(specificity.mean()),
            "f_measure": float(f_measure.mean()), "s_measure": s_measure(p, gt), "mae": mean_absolute_error(p, gt)}


class OfficialEvaluation:
    """Accumulates frames; `result()` gives per-video means and the overall mean over all frames."""

    def __init__(self):
        self._frames: dict[str, list[dict]] = {}

    def add(self, video_id: str, probability: np.ndarray, ground_truth: np.ndarray) -> dict:
        scores = frame_scores(probability, ground_truth)
        self._frames.setdefault(video_id, []).append(scores)
        return scores

    @staticmethod
    def _mean(frames: list[dict]) -> dict[str, float]:
        return {name: float(np.mean([f[name] for f in frames])) for name in OFFICIAL_METRICS}

    def result(self) -> dict:
        """{"protocol", "averaging", "thresholds", "videos": {id: {...}}, "overall": {...}}."""
        if not self._frames:
            raise ValueError("no frames were evaluated")
        videos = {video_id: {**self._mean(frames), "frames": len(frames)} for video_id, frames in self._frames.items()}
        every = [f for frames in self._frames.values() for f in frames]
        overall = {**self._mean(every), "videos": len(videos), "frames": len(every)}
        return {"protocol": "official", "averaging": AVERAGING, "thresholds": "p > t for t = linspace(1, 0, 256)",
                "videos": videos, "overall": overall}
