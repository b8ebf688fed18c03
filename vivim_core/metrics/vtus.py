"""The VTUS (thyroid ultrasound video) protocol: Dice, Jaccard, Precision, Recall of binarised masks.

Per frame, the prediction is binarised at probability >= 0.5 and compared with the ground truth; the
scores are averaged over the frames of each video, then over the videos (each video counts once,
whatever its length).

Empty masks (the denominators are zero): a score whose denominator is zero is 1 when prediction and
ground truth are both empty (the frame is correctly lesion-free) and 0 otherwise (e.g. precision when
nothing is predicted on a frame with a lesion, recall when a lesion is predicted on a lesion-free frame).
No score is ever NaN; the counts of frames with an empty ground truth / prediction are reported.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

VTUS_METRICS = ("dice", "jaccard", "precision", "recall")
THRESHOLD = 0.5
AVERAGING = "per frame, then mean over the frames of each video, then mean over videos"
EMPTY_RULE = ("a score with a zero denominator is 1 if prediction and ground truth are both empty, else 0")


def binarise(probability: np.ndarray) -> np.ndarray:
    """A probability map (float in [0, 1]) or a mask (bool) -> bool mask, foreground where p >= 0.5."""
    probability = np.asarray(probability)
    return probability if probability.dtype == bool else probability >= THRESHOLD


def _ratio(numerator: int, denominator: int, both_empty: bool) -> float:
    if denominator == 0:
        return 1.0 if both_empty else 0.0
    return numerator / denominator


def frame_scores(prediction: np.ndarray, ground_truth: np.ndarray) -> dict[str, float]:
    """Dice, Jaccard, Precision, Recall of one frame.

    prediction: bool (H, W) mask or float (H, W) probability (binarised at >= 0.5); ground_truth: bool (H, W).
    """
    pred, gt = binarise(prediction), np.asarray(ground_truth, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    tp = int(np.count_nonzero(pred & gt))
    predicted, actual = int(np.count_nonzero(pred)), int(np.count_nonzero(gt))
    both_empty = predicted == 0 and actual == 0
    return {
        "dice": _ratio(2 * tp, predicted + actual, both_empty),
        "jaccard": _ratio(tp, predicted + actual - tp, both_empty),
        "precision": _ratio(tp, predicted, both_empty),
        "recall": _ratio(tp, actual, both_empty),
        "empty_gt": actual == 0,
        "empty_prediction": predicted == 0,
    }


def mean_scores(scores: Iterable[dict]) -> dict[str, float]:
    """The mean of each VTUS metric over a sequence of score dicts (frames of a video, or videos)."""
    scores = list(scores)
    if not scores:
        raise ValueError("no scores to average")
    return {name: float(np.mean([s[name] for s in scores])) for name in VTUS_METRICS}


class VTUSEvaluation:
    """Accumulates frames video by video; `result()` gives per-video and overall (mean of videos) scores."""

    def __init__(self, keep_frames: bool = False):
        self.keep_frames = keep_frames
        self._frames: dict[str, list[dict]] = {}

    def add(self, video_id: str, prediction: np.ndarray, ground_truth: np.ndarray, frame_name: str = "") -> dict:
        """Score one frame of `video_id` (see `frame_scores`) and return its scores."""
        scores = frame_scores(prediction, ground_truth)
        scores["frame"] = frame_name
        self._frames.setdefault(video_id, []).append(scores)
        return scores

    def result(self) -> dict:
        """{"protocol", "averaging", "threshold", "empty_mask_rule", "videos": {id: {...}}, "overall": {...}}."""
        if not self._frames:
            raise ValueError("no frames were evaluated")
        videos = {}
        for video_id, frames in self._frames.items():
            videos[video_id] = {**mean_scores(frames), "frames": len(frames),
                                "empty_gt_frames": sum(f["empty_gt"] for f in frames),
                                "empty_prediction_frames": sum(f["empty_prediction"] for f in frames)}
            if self.keep_frames:
                videos[video_id]["per_frame"] = [{k: f[k] for k in ("frame", *VTUS_METRICS)} for f in frames]
        overall = {**mean_scores(videos.values()), "videos": len(videos),
                   "frames": sum(v["frames"] for v in videos.values())}
        return {"protocol": "vtus", "averaging": AVERAGING, "threshold": f"probability >= {THRESHOLD}",
                "empty_mask_rule": EMPTY_RULE, "videos": videos, "overall": overall}
