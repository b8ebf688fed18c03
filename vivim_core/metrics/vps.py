"""The VPS (video polyp segmentation) protocol of PNS-Net's evaluator, reimplemented.

Per frame: min-max normalise the probability map (a constant map is kept as is, in [0, 1]); binarise it at
the 256 thresholds k/255, k = 0..255 (foreground where map >= threshold); Dice, IoU and Specificity curves
(all three 0 at a threshold where TP = 0, as the reference evaluator does); the E-measure curve (enhanced
alignment of each binarised map); the S-measure (alpha = 0.5) and the MAE of the normalised map.
Per video: drop the first and the last frame, average the curves and the scores over the remaining frames.
Overall: average the video curves and scores over the videos; maxDice / maxIoU / maxSpe / maxE / meanE are the
max / mean of the averaged curve.

Our choices where the reference is undefined (it would give NaN): Specificity is 1 when the ground truth has
no background pixel (no false positive is possible); an empty S-measure quadrant scores 0 (its weight is 0).
The curves are computed exactly from integer pixel levels for 8-bit inputs (the reference compares floats,
which can flip a pixel that lies exactly on a threshold). The S-measure centroid is rounded half away from
zero, as MATLAB's `round` (pysodmetrics rounds half to even, so the two differ when a centroid is at .5).
As in the reference, the E-measure divides by (pixels - 1), so a perfect map scores slightly above 1.
"""

from __future__ import annotations

import numpy as np

NUM_THRESHOLDS = 256
EPS = np.finfo(np.float64).eps
CURVES = ("dice", "iou", "specificity", "e_measure")
AVERAGING = ("per frame (first and last frame of each video dropped), then mean over the frames of each video, "
             "then mean over videos; max*/meanE taken on the averaged curve")


def normalise_map(prediction: np.ndarray, max_value: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Min-max normalise one probability map (H, W).

    prediction: integers in [0, max_value] (uint8: 255 by default, uint16: 65535) or floats in [0, 1].
    Returns (levels int64 (H, W) in 0..255: the index of the highest threshold k/255 each pixel reaches,
    normalised float64 (H, W) in [0, 1]).
    """
    prediction = np.asarray(prediction)
    if np.issubdtype(prediction.dtype, np.integer) or prediction.dtype == bool:
        values = prediction.astype(np.int64)
        top = int(max_value or (1 if prediction.dtype == bool else np.iinfo(prediction.dtype).max))
        low, high = int(values.min()), int(values.max())
        if high > low:
            return (values - low) * 255 // (high - low), (values - low) / (high - low)
        return values * 255 // top, values / top
    values = prediction.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    normalised = (values - low) / (high - low) if high > low else np.clip(values, 0.0, 1.0)
    return np.clip(np.floor(normalised * 255 + 1e-6), 0, 255).astype(np.int64), normalised


def threshold_curves(levels: np.ndarray, ground_truth: np.ndarray) -> dict[str, np.ndarray]:
    """Dice, IoU, Specificity and E-measure at thresholds k/255 (index k = 0..255): float64 (256,) each.

    levels: int (H, W) from `normalise_map`; ground_truth: bool (H, W).
    """
    gt = np.asarray(ground_truth, dtype=bool)
    total, positives = gt.size, int(np.count_nonzero(gt))
    # Pixels at level >= k, counted for every k at once from a histogram of the levels.
    tp = np.cumsum(np.bincount(levels[gt], minlength=NUM_THRESHOLDS)[::-1])[::-1].astype(np.float64)
    fp = np.cumsum(np.bincount(levels[~gt], minlength=NUM_THRESHOLDS)[::-1])[::-1].astype(np.float64)
    predicted = tp + fp
    fn, tn = positives - tp, (total - positives) - fp
    hit = tp > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        dice = np.where(hit, 2 * tp / (positives + predicted), 0.0)
        iou = np.where(hit, tp / (positives + fp), 0.0)
        negatives = total - positives
        specificity = np.where(hit, tn / negatives if negatives else 1.0, 0.0)
    return {"dice": dice, "iou": iou, "specificity": specificity,
            "e_measure": _e_measure_curve(tp, fp, fn, tn, total, positives)}


def _e_measure_curve(tp, fp, fn, tn, total: int, positives: int) -> np.ndarray:
    """Enhanced-alignment measure of each binarised map, from its four pixel counts (float64 (256,)).

    Each pixel's enhanced alignment depends only on whether it is predicted and whether it is in the ground
    truth (and on the two means), so the sum over the image is a weighted sum of TP, FP, FN and TN.
    """
    predicted = tp + fp
    if positives == 0:
        enhanced_sum = total - predicted  # all-background truth: counts the background predicted as such
    elif positives == total:
        enhanced_sum = predicted
    else:
        mean_pred, mean_gt = predicted / total, positives / total

        def enhanced(pred_value, gt_value):
            align = 2 * pred_value * gt_value / (pred_value ** 2 + gt_value ** 2 + EPS)
            return (align + 1) ** 2 / 4

        enhanced_sum = (tp * enhanced(1 - mean_pred, 1 - mean_gt) + fp * enhanced(1 - mean_pred, -mean_gt)
                        + fn * enhanced(-mean_pred, 1 - mean_gt) + tn * enhanced(-mean_pred, -mean_gt))
    return np.asarray(enhanced_sum / (total - 1 + EPS), dtype=np.float64)


def _object_score(values: np.ndarray) -> float:
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return 2 * mean / (mean ** 2 + 1 + std + EPS)


def _ssim(prediction: np.ndarray, gt: np.ndarray) -> float:
    """The S-measure's region similarity of one quadrant (0 for an empty quadrant: its weight is 0)."""
    n = prediction.size
    if n == 0:
        return 0.0
    x, y = prediction.mean(), gt.mean()
    sigma_x = np.sum((prediction - x) ** 2) / (n - 1 + EPS)
    sigma_y = np.sum((gt - y) ** 2) / (n - 1 + EPS)
    sigma_xy = np.sum((prediction - x) * (gt - y)) / (n - 1 + EPS)
    alpha = 4 * x * y * sigma_xy
    beta = (x ** 2 + y ** 2) * (sigma_x + sigma_y)
    if alpha != 0:
        return float(alpha / (beta + EPS))
    return 1.0 if beta == 0 else 0.0


def _round_half_away(value: float) -> int:
    return int(np.floor(value + 0.5)) if value >= 0 else -int(np.floor(-value + 0.5))


def s_measure(normalised: np.ndarray, ground_truth: np.ndarray, alpha: float = 0.5) -> float:
    """Structure measure (Fan et al. 2017) of a normalised map float (H, W) in [0, 1] against bool (H, W)."""
    gt = np.asarray(ground_truth, dtype=bool)
    pred = np.asarray(normalised, dtype=np.float64)
    foreground = gt.mean()
    if foreground == 0:
        return float(1 - pred.mean())
    if foreground == 1:
        return float(pred.mean())
    object_score = foreground * _object_score(pred[gt]) + (1 - foreground) * _object_score(1 - pred[~gt])
    # Region score: split at the ground truth's centroid (1-based, as the MATLAB original) into 4 quadrants.
    height, width = gt.shape
    rows, cols = np.nonzero(gt)
    cx, cy = _round_half_away(cols.mean() + 1), _round_half_away(rows.mean() + 1)
    gt_f = gt.astype(np.float64)
    region_score = 0.0
    for r0, r1, c0, c1 in ((0, cy, 0, cx), (0, cy, cx, width), (cy, height, 0, cx), (cy, height, cx, width)):
        weight = (r1 - r0) * (c1 - c0) / (height * width)
        region_score += weight * _ssim(pred[r0:r1, c0:c1], gt_f[r0:r1, c0:c1])
    return float(max(0.0, alpha * object_score + (1 - alpha) * region_score))


def mean_absolute_error(normalised: np.ndarray, ground_truth: np.ndarray) -> float:
    """Mean |map - gt| of a normalised map float (H, W) against bool (H, W)."""
    return float(np.abs(np.asarray(normalised, np.float64) - np.asarray(ground_truth, bool)).mean())


def frame_scores(prediction: np.ndarray, ground_truth: np.ndarray, max_value: float | None = None) -> dict:
    """All VPS scores of one frame: the 4 curves (float64 (256,)), "s_measure" and "mae" (floats)."""
    gt = np.asarray(ground_truth, dtype=bool)
    if np.shape(prediction) != gt.shape:
        raise ValueError(f"prediction {np.shape(prediction)} and ground truth {gt.shape} differ in shape")
    levels, normalised = normalise_map(prediction, max_value)
    scores = threshold_curves(levels, gt)
    scores["s_measure"] = s_measure(normalised, gt)
    scores["mae"] = mean_absolute_error(normalised, gt)
    return scores


def summarise(curves: dict[str, np.ndarray], s: float, mae: float) -> dict[str, float]:
    """The reported numbers of averaged curves and scores."""
    return {
        "max_dice": float(curves["dice"].max()), "max_iou": float(curves["iou"].max()),
        "max_specificity": float(curves["specificity"].max()),
        "mean_dice": float(curves["dice"].mean()), "mean_iou": float(curves["iou"].mean()),
        "mean_specificity": float(curves["specificity"].mean()),
        "s_measure": float(s), "mean_e_measure": float(curves["e_measure"].mean()),
        "max_e_measure": float(curves["e_measure"].max()), "mae": float(mae),
    }


class _VideoSums:
    """Running sums of one video's frames, holding back the first and the latest frame (dropped at the end)."""

    def __init__(self) -> None:
        self.first: dict | None = None
        self.latest: dict | None = None
        self.count = 0
        self.sums = {name: np.zeros(NUM_THRESHOLDS) for name in CURVES} | {"s_measure": 0.0, "mae": 0.0}

    def _commit(self, scores: dict) -> None:
        for name in self.sums:
            self.sums[name] = self.sums[name] + scores[name]
        self.count += 1

    def add(self, scores: dict) -> None:
        if self.first is None:
            self.first = scores
            return
        if self.latest is not None:
            self._commit(self.latest)
        self.latest = scores

    def means(self) -> tuple[dict, int, bool]:
        """(mean scores, frames used, whether the first/last frames were dropped)."""
        if self.count == 0:  # fewer than 3 frames: nothing would be left, so every frame is used
            for scores in (self.first, self.latest):
                if scores is not None:
                    self._commit(scores)
            self.first = self.latest = None
            return {k: v / self.count for k, v in self.sums.items()}, self.count, False
        return {k: v / self.count for k, v in self.sums.items()}, self.count, True


class VPSEvaluation:
    """Accumulates the frames of each video, in temporal order; `result()` gives per-video and overall scores.

    Memory is constant per video (running sums), so long videos are fine.
    """

    def __init__(self) -> None:
        self._videos: dict[str, _VideoSums] = {}
        self._frames: dict[str, int] = {}

    def add(self, video_id: str, prediction: np.ndarray, ground_truth: np.ndarray,
            max_value: float | None = None) -> dict:
        """Score the next frame of `video_id` (frames must come in temporal order) and return its scores."""
        scores = frame_scores(prediction, ground_truth, max_value)
        self._videos.setdefault(video_id, _VideoSums()).add(scores)
        self._frames[video_id] = self._frames.get(video_id, 0) + 1
        return scores

    def result(self, include_curves: bool = True) -> dict:
        """{"protocol", "averaging", "videos": {id: {...}}, "overall": {...}, "warnings": [...],
        "curves": {name: 256 floats, threshold k/255 at index k} (overall curves, with include_curves)}."""
        if not self._videos:
            raise ValueError("no frames were evaluated")
        videos, video_means, warnings = {}, [], []
        for video_id, sums in self._videos.items():
            means, used, dropped = sums.means()
            if not dropped:
                warnings.append(f"video {video_id!r} has {self._frames[video_id]} frame(s): fewer than 3, so its "
                                f"first and last frames were kept")
            video_means.append(means)
            videos[video_id] = {**summarise(means, means["s_measure"], means["mae"]),
                                "frames": self._frames[video_id], "frames_used": used}
        overall_curves = {name: np.mean([m[name] for m in video_means], axis=0) for name in CURVES}
        overall = summarise(overall_curves, np.mean([m["s_measure"] for m in video_means]),
                            np.mean([m["mae"] for m in video_means]))
        overall |= {"videos": len(videos), "frames": sum(self._frames.values()),
                    "frames_used": sum(v["frames_used"] for v in videos.values())}
        result = {"protocol": "vps", "averaging": AVERAGING, "thresholds": "k/255 for k = 0..255, map >= threshold",
                  "videos": videos, "overall": overall, "warnings": warnings}
        if include_curves:
            result["curves"] = {name: overall_curves[name].round(6).tolist() for name in CURVES}
        return result
