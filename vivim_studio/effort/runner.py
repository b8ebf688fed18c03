"""Run the simulated expert on one VTUS-layout video with expert masks, for each strategy, from scratch
each time: a fresh workspace in a temporary folder, the same starting checkpoint for every strategy.

    results = measure_effort(root, "Train", "0002", strategies=("trace", "stamps", "studio"), device="cpu")
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vivim_core.data.readers import list_images, read_mask

from ..document import VideoDocument, Workspace
from ..document.sources import FrameFolderSource
from .protocol import ACCEPT_IOU, CostTable, Ledger
from .session import StampStrategy, frame_ious, run_session, run_trace

REPORT_THRESHOLDS = (0.85, 0.90)


@dataclass
class EffortVideo:
    """A video to annotate: its frame folder and the expert masks, bool (N, H, W)."""

    name: str
    frames: Path
    truth: np.ndarray


def load_vtus_video(root: Path, split: str, video_id: str) -> EffortVideo:
    frames = Path(root) / split / video_id
    masks = Path(root) / f"{split}_GT" / video_id
    frame_paths = list_images(frames)
    by_stem = {p.stem: p for p in list_images(masks, (".png",))}
    missing = [p.name for p in frame_paths if p.stem not in by_stem]
    if missing:
        raise FileNotFoundError(f"{masks}: no expert mask for {len(missing)} frame(s), e.g. {missing[0]}; the "
                                f"simulated expert needs a mask for every frame")
    truth = np.stack([read_mask(by_stem[p.stem]) for p in frame_paths])
    return EffortVideo(f"{split}/{video_id}", frames, truth)


def open_fresh_document(video: EffortVideo, folder: Path) -> VideoDocument:
    """The video with an empty workspace in `folder` (its expert masks are NOT imported: they are the oracle)."""
    source = FrameFolderSource(video.frames, load_ground_truth=False)
    workspace = Workspace.open_for(source, folder, create=True)
    return VideoDocument(source, workspace, import_initial_masks=False)


def _summary(ledger: Ledger, round_seconds: list[float], document, truth: np.ndarray, seconds: float
             ) -> dict[str, Any]:
    ious = frame_ious(document, truth)
    per100 = ledger.per_100_frames
    rounds = np.array(round_seconds) if round_seconds else np.zeros(1)
    return {
        "interactions": ledger.interactions,
        "interactions_per_100_frames": round(per100(ledger.interactions), 2),
        "human_seconds": round(ledger.human_seconds, 1),
        "human_seconds_per_100_frames": round(per100(ledger.human_seconds), 1),
        "compute_seconds": round(ledger.compute_seconds, 2),
        "compute_seconds_per_round": {"mean": round(float(rounds.mean()), 2),
                                      "p90": round(float(np.percentile(rounds, 90)), 2),
                                      "max": round(float(rounds.max()), 2)},
        "rounds": ledger.rounds,
        "counts": dict(ledger.counts),
        "failed_frames": len(ledger.failed_frames),
        "failed_frame_indices": list(ledger.failed_frames),
        "mean_iou": round(float(ious.mean()), 4),
        "iou_per_frame": [round(float(v), 4) for v in ious],
        "curve": [[n, round(m, 4)] for n, m in ledger.curve],
        "wall_seconds": round(seconds, 1),
    }


def run_strategy(video: EffortVideo, strategy, accept_iou: float, save_masks: Path | None = None
                 ) -> dict[str, Any]:
    """One strategy at one acceptance threshold on a fresh workspace."""
    with tempfile.TemporaryDirectory(prefix="vivim-effort-") as tmp:
        document = open_fresh_document(video, Path(tmp) / "workspace.vivim")
        with document:
            started = time.perf_counter()
            ledger = Ledger(document.num_frames)
            if strategy == "trace":
                run_trace(document, video.truth, ledger)
                round_seconds: list[float] = []
            else:
                ledger, round_seconds = run_session(document, video.truth, strategy, accept_iou, ledger)
            result = _summary(ledger, round_seconds, document, video.truth, time.perf_counter() - started)
            if save_masks is not None:
                _save_masks(document, video, save_masks)
    return result


def _save_masks(document, video: EffortVideo, folder: Path) -> None:
    """The final masks under the frames' own names (VTUS PNG, {0, 255}), so anyone can re-score them."""
    from vivim_core.data.readers import write_mask

    folder.mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(list_images(video.frames)):
        write_mask(folder / f"{path.stem}.png", document.mask(index))


def machine_description() -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()} {os.cpu_count()} cores, {gpu}, torch {torch.__version__}"


def make_strategy(name: str, **options: Any):
    if name == "trace":
        return "trace"
    if name == "stamps":
        return StampStrategy()
    if name == "studio":
        from .strategies import StudioStrategy

        return StudioStrategy(**options)
    raise ValueError(f"unknown strategy {name!r}")


def measure_effort(video: EffortVideo, strategies: tuple[str, ...], thresholds=REPORT_THRESHOLDS,
                   studio_options: dict[str, Any] | None = None, save_masks: Path | None = None,
                   log=print) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in strategies:
        results[name] = {}
        for threshold in thresholds:
            strategy = make_strategy(name, **(studio_options or {}) if name == "studio" else {})
            keep = save_masks if (name == "studio" and threshold == ACCEPT_IOU) else None
            results[name][f"{threshold:.2f}"] = run_strategy(video, strategy, threshold, keep)
            r = results[name][f"{threshold:.2f}"]
            log(f"{name:7s} IoU>={threshold:.2f}: {r['interactions_per_100_frames']:8.1f} interactions/100 frames, "
                f"{r['human_seconds_per_100_frames']:8.1f} human s/100 frames, compute {r['compute_seconds']:.1f} s, "
                f"failed {r['failed_frames']}, rounds {r['rounds']}")
    return {"video": video.name, "frames": int(len(video.truth)), "costs": CostTable().to_json(),
            "date": _dt.date.today().isoformat(), "machine": machine_description(), "strategies": results}
