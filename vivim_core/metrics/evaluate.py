"""Evaluate a folder of predicted masks / probability maps against a folder of ground-truth masks.

    result = evaluate_folders("runs/pred", "data/vtus/Test_GT", protocol="vtus")
    result["overall"]["dice"], result["videos"]["0001"]["dice"]

Both folders hold one sub-folder of PNGs per video (`DIR/<video_id>/NNNN.png`; nested ids such as
`<dataset>/<case>` work too), or the PNGs of a single video directly. Videos are matched by id and frames
by file stem (`0001.png` <-> `0001.png`; when stems differ only in zero padding, `1.png` <-> `0001.png`,
they are matched by their integer value). A video or frame present on one side only, a size mismatch or a
non-binary ground truth is a `DataError` naming the files: never a silently wrong metric.

Predictions: 8-bit (or 16-bit) single-channel PNGs, either masks {0, 255} or probability maps 0..255
(probability = value / 255). A frame whose values are only {0, 1} with some 1s is read as a {0, 1}-encoded
mask (and reported in "warnings"), since as a probability map it would be all but empty.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ..data.readers import DataError, list_images, natural_key, read_mask
from .official import OfficialEvaluation
from .vps import VPSEvaluation
from .vtus import VTUSEvaluation

log = logging.getLogger(__name__)

PROTOCOLS = ("vtus", "vps", "official")


def _show(names, limit: int = 5) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def find_mask_videos(folder: Path | str, role: str) -> dict[str, list[Path]]:
    """{video_id: PNGs in natural order} for every folder under `folder` that holds PNG files.

    A folder whose PNGs lie directly in it is one video named after the folder. `role` ("prediction" or
    "ground-truth") only words the errors.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: {role} folder not found")
    own = list_images(folder, (".png",))
    videos = {}
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir() and not p.name.startswith(".")), key=natural_key):
        pngs = list_images(sub, (".png",))
        if pngs:
            videos[sub.relative_to(folder).as_posix()] = pngs
    if own and videos:
        raise DataError(f"{folder}: holds both PNG files and video folders ({_show(videos)}); give a folder of "
                        f"video folders, or the folder of one video")
    if own:
        return {folder.name: own}
    if not videos:
        hint = ""
        split_gt = sorted(p.name for p in folder.glob("*_GT") if p.is_dir())
        if split_gt:
            hint = f"; this looks like a VTUS root: give its ground-truth split folder, e.g. {folder / split_gt[0]}"
        raise DataError(f"{folder}: no PNG masks found ({role} folders must hold <video_id>/*.png){hint}")
    return videos


def match_frames(video_id: str, predictions: list[Path], truths: list[Path]) -> list[tuple[Path, Path]]:
    """Pairs (prediction, ground truth) of one video, in ground-truth order; errors on unmatched files."""
    by_stem = {p.stem: p for p in predictions}
    if not all(t.stem in by_stem for t in truths) and all(p.stem.isdigit() for p in predictions + truths):
        by_stem = {str(int(p.stem)): p for p in predictions}
        keys = [str(int(t.stem)) for t in truths]
    else:
        keys = [t.stem for t in truths]
    missing = [t.name for t, key in zip(truths, keys) if key not in by_stem]
    if missing:
        raise DataError(f"video {video_id!r}: no prediction for {len(missing)} ground-truth frame(s): "
                        f"{_show(missing)} (in {predictions[0].parent}); predict every frame, or evaluate against "
                        f"a ground truth of the predicted frames only")
    extra = sorted(set(by_stem) - set(keys), key=natural_key)
    if extra:
        raise DataError(f"video {video_id!r}: {len(extra)} prediction(s) without ground truth in "
                        f"{truths[0].parent}: {_show([by_stem[k].name for k in extra])}")
    return [(by_stem[key], truth) for key, truth in zip(keys, truths)]


def read_prediction(path: Path) -> tuple[np.ndarray, int, bool]:
    """(values uint8/uint16 (H, W), max value, whether read as a {0, 1} mask) of a predicted PNG."""
    image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED) if path.stat().st_size else None
    if image is None:
        raise DataError(f"{path}: cannot decode this prediction (empty, corrupt or not a PNG)")
    if image.ndim == 3:
        colour = image[:, :, :3]
        if not (np.array_equal(colour[..., 0], colour[..., 1]) and np.array_equal(colour[..., 0], colour[..., 2])):
            raise DataError(f"{path}: prediction has colour (its channels differ); write single-channel PNGs")
        image = colour[..., 0]
    if image.dtype not in (np.uint8, np.uint16):
        raise DataError(f"{path}: unsupported prediction type {image.dtype}; write 8-bit PNGs (0..255)")
    top = 255 if image.dtype == np.uint8 else 65535
    if image.max() == 1:  # only {0, 1}, with some 1s
        return image, 1, True
    if image.dtype == np.uint16 and image.max() == 255 and np.isin(image, (0, 255)).all():
        return image, 255, False  # an 8-bit {0, 255} mask saved with 16 bits, not probabilities of 255/65535
    return image, top, False


def evaluate_folders(pred_dir: Path | str, gt_dir: Path | str, protocol: str = "vtus",
                     progress: Callable[[int, int], None] | None = None, per_frame: bool = False) -> dict:
    """Evaluate predictions against ground truth with the VTUS, VPS or official protocol (see `metrics.vtus`,
    `.vps`, `.official`).

    Returns the protocol's result dict (per video under "videos", the mean over videos under "overall", how
    it averages under "averaging", any "warnings") plus "pred_dir" and "gt_dir". `progress(done, total)` is
    called after each frame; `per_frame` (VTUS) adds each frame's scores.
    """
    if protocol not in PROTOCOLS:
        raise DataError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    predictions, truths = find_mask_videos(pred_dir, "prediction"), find_mask_videos(gt_dir, "ground-truth")
    if len(predictions) == 1 and len(truths) == 1:  # two single-video folders: compare them whatever their names
        predictions = {next(iter(truths)): next(iter(predictions.values()))}
    missing = [v for v in truths if v not in predictions]
    if missing:
        raise DataError(f"{pred_dir}: no predictions for {len(missing)} ground-truth video(s): {_show(missing)} "
                        f"(expected {pred_dir}/<video_id>/NNNN.png for each video of {gt_dir})")
    extra = [v for v in predictions if v not in truths]
    if extra:
        raise DataError(f"{pred_dir}: predictions for {len(extra)} video(s) without ground truth in {gt_dir}: "
                        f"{_show(extra)}")
    pairs = {video_id: match_frames(video_id, predictions[video_id], truths[video_id]) for video_id in truths}
    total, done = sum(len(p) for p in pairs.values()), 0
    evaluation = {"vtus": lambda: VTUSEvaluation(keep_frames=per_frame), "vps": VPSEvaluation,
                  "official": OfficialEvaluation}[protocol]()
    binary_frames = 0
    for video_id, video_pairs in pairs.items():
        for pred_path, gt_path in video_pairs:
            truth = read_mask(gt_path)
            values, top, as_binary = read_prediction(pred_path)
            binary_frames += as_binary
            if values.shape != truth.shape:
                raise DataError(f"{pred_path}: prediction is {values.shape[1]}x{values.shape[0]} but its ground "
                                f"truth {gt_path} is {truth.shape[1]}x{truth.shape[0]}; predict at the frames' size")
            if protocol == "vtus":
                evaluation.add(video_id, values.astype(np.float64) / top, truth, pred_path.stem)
            elif protocol == "official":
                evaluation.add(video_id, values.astype(np.float64) / top, truth)
            else:
                evaluation.add(video_id, values, truth, max_value=top)
            done += 1
            if progress is not None:
                progress(done, total)
    result = evaluation.result()
    result.setdefault("warnings", [])
    if binary_frames:
        message = f"{binary_frames} prediction frame(s) hold only values {{0, 1}}: read as {{0, 1}}-encoded masks"
        log.info(message)
        result["warnings"].append(message)
    return {**result, "pred_dir": str(pred_dir), "gt_dir": str(gt_dir)}
