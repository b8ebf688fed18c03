"""Evaluation metrics: the VTUS (thyroid) and VPS (polyp) protocols (docs/architecture.md, Metrics).

    from vivim_core.metrics import evaluate_folders
    result = evaluate_folders("pred", "data/vtus/Test_GT", protocol="vtus")   # or protocol="vps"

Per-frame functions: `vtus.frame_scores(prediction, gt)`, `vps.frame_scores(prediction, gt)`; accumulators
`VTUSEvaluation` / `VPSEvaluation` for in-memory evaluation (e.g. validation during training).
"""

from __future__ import annotations

from .evaluate import PROTOCOLS, evaluate_folders, find_mask_videos
from .vps import VPSEvaluation, mean_absolute_error, normalise_map, s_measure, threshold_curves
from .vtus import VTUS_METRICS, VTUSEvaluation

__all__ = ["PROTOCOLS", "evaluate_folders", "find_mask_videos", "VPSEvaluation", "VTUSEvaluation", "VTUS_METRICS",
           "normalise_map", "threshold_curves", "s_measure", "mean_absolute_error"]
