"""Dataset layouts (VTUS, polyp/VPS) and prediction inputs (video file, frame folder, folder of videos).

VTUS:   ROOT/<Split>/<video_id>/NNNN.jpg   and   ROOT/<Split>_GT/<video_id>/NNNN.png
Polyp:  ROOT/<dataset>/Frame/<case>/*.jpg  and   ROOT/<dataset>/GT/<case>/*.png
Frames are ordered by their integer names (`natural_key`: 2 before 10); a mask belongs to the frame with the
same file stem. Missing and extra masks are errors naming the files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..file_safety import sanitised_name
from .readers import (IMAGE_SUFFIXES, VIDEO_SUFFIXES, DataError, VideoFileReader, image_size, list_images,
                      natural_key, read_frame, read_mask)


@dataclass
class VideoRecord:
    """One annotated (or not) video stored as frame files: `frame_paths[i]` goes with `mask_paths[i]`."""

    video_id: str
    frame_paths: list[Path]
    mask_paths: list[Path] | None = None

    def __len__(self) -> int:
        return len(self.frame_paths)


def _subfolders(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=natural_key)


def _show(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def pair_frames_and_masks(video_id: str, frame_dir: Path, mask_dir: Path | None) -> VideoRecord:
    """Frames of `frame_dir` matched by stem to the PNG masks of `mask_dir` (None: an unannotated video)."""
    frames = list_images(frame_dir)
    if not frames:
        raise DataError(f"{frame_dir}: no frames ({'/'.join(IMAGE_SUFFIXES)} files) in this video folder; "
                        f"remove the folder or add its frames")
    if mask_dir is None:
        return VideoRecord(video_id, frames, None)
    if not mask_dir.is_dir():
        raise DataError(f"{mask_dir}: ground-truth folder for video {video_id!r} not found (its frames are in "
                        f"{frame_dir}); add the masks or remove the video")
    masks = {p.stem: p for p in list_images(mask_dir, (".png",))}
    missing = [f.name for f in frames if f.stem not in masks]
    if missing:
        raise DataError(f"{mask_dir}: no mask for {len(missing)} frame(s) of {frame_dir}: {_show(missing)}; each "
                        f"frame NAME.jpg needs a mask NAME.png")
    frame_stems = {f.stem for f in frames}
    extra = [p.name for stem, p in masks.items() if stem not in frame_stems]
    if extra:
        raise DataError(f"{mask_dir}: {len(extra)} mask(s) without a frame in {frame_dir}: {_show(extra)}; remove "
                        f"them or add the frames")
    return VideoRecord(video_id, frames, [masks[f.stem] for f in frames])


def find_vtus_videos(root: Path | str, split: str = "Train", require_masks: bool = True) -> list[VideoRecord]:
    """Videos of `ROOT/<split>` with masks from `ROOT/<split>_GT` (None when absent and not required)."""
    root = Path(root)
    frame_root, mask_root = root / split, root / f"{split}_GT"
    if not frame_root.is_dir():
        present = [p.name for p in _subfolders(root)] if root.is_dir() else []
        raise DataError(f"{frame_root}: split folder not found (VTUS layout ROOT/{split}/<video_id>/NNNN.jpg); "
                        + (f"{root} holds: {_show(present)}" if present else f"{root} does not exist or is empty"))
    if not mask_root.is_dir():
        if require_masks:
            raise DataError(f"{mask_root}: ground-truth folder not found (VTUS layout ROOT/{split}_GT/<video_id>/"
                            f"NNNN.png beside ROOT/{split})")
        mask_root = None
    videos = [pair_frames_and_masks(d.name, d, None if mask_root is None else mask_root / d.name)
              for d in _subfolders(frame_root)]
    if not videos:
        raise DataError(f"{frame_root}: no video folders in this split (expected {frame_root}/<video_id>/NNNN.jpg)")
    if mask_root is not None:
        extra = sorted(set(p.name for p in _subfolders(mask_root)) - {v.video_id for v in videos})
        if extra:
            raise DataError(f"{mask_root}: ground truth for videos that have no frames in {frame_root}: "
                            f"{_show(extra)}; remove them or add the frames")
    return videos


def find_polyp_videos(root: Path | str, dataset: str | None = None,
                      require_masks: bool = True) -> list[VideoRecord]:
    """Cases of `ROOT/<dataset>/Frame` with masks from `ROOT/<dataset>/GT`.

    `dataset=None`: every dataset under ROOT (video ids `<dataset>/<case>`), or ROOT itself when it holds
    `Frame/`. With a dataset name the video ids are the case names.
    """
    root = Path(root)
    if dataset is not None:
        dataset_dirs, prefix = [root / dataset], False
    elif (root / "Frame").is_dir():
        dataset_dirs, prefix = [root], False
    else:
        dataset_dirs = [d for d in _subfolders(root) if (d / "Frame").is_dir()] if root.is_dir() else []
        prefix = True
    if not dataset_dirs:
        raise DataError(f"{root}: no polyp dataset found (layout ROOT/<dataset>/Frame/<case>/*.jpg and "
                        f"ROOT/<dataset>/GT/<case>/*.png)")
    videos = []
    for dataset_dir in dataset_dirs:
        frame_root, mask_root = dataset_dir / "Frame", dataset_dir / "GT"
        if not frame_root.is_dir():
            raise DataError(f"{frame_root}: folder not found (polyp layout ROOT/<dataset>/Frame/<case>/*.jpg)")
        if not mask_root.is_dir() and require_masks:
            raise DataError(f"{mask_root}: ground-truth folder not found (polyp layout ROOT/<dataset>/GT/<case>/"
                            f"*.png)")
        cases = _subfolders(frame_root)
        if not cases:
            raise DataError(f"{frame_root}: no case folders (expected {frame_root}/<case>/*.jpg)")
        for case in cases:
            video_id = f"{dataset_dir.name}/{case.name}" if prefix else case.name
            videos.append(pair_frames_and_masks(video_id, case, mask_root / case.name if mask_root.is_dir() else None))
    return videos


def validate_video(video: VideoRecord) -> tuple[int, int]:
    """Check a video before training: one frame size throughout (read from headers), every mask binary and of
    its frame's size. Returns (H, W); raises `DataError` naming the first bad file."""
    size = image_size(video.frame_paths[0])
    for path in video.frame_paths[1:]:
        if image_size(path) != size:
            raise DataError(f"{path}: frame is {image_size(path)[1]}x{image_size(path)[0]}, but "
                            f"{video.frame_paths[0].name} is {size[1]}x{size[0]}; every frame of video "
                            f"{video.video_id!r} must have one size")
    for frame_path, mask_path in zip(video.frame_paths, video.mask_paths or []):
        mask = read_mask(mask_path)
        if mask.shape != size:
            raise DataError(f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but its frame {frame_path} is "
                            f"{size[1]}x{size[0]}; masks must have their frame's size")
    return size


@dataclass
class PredictionInput:
    """One video to predict: iterate `frames()` lazily (uint8 (H, W, 3) RGB), `num_frames` known up front.

    `video_id` is a safe file name made from the folder's or file's name (`sanitised_name`), used for the
    output folder. `frame_paths` is set for frame folders (their stems, made safe, name the output masks:
    `frame_names`), None for video files; `fps` is known for video files only.
    """

    video_id: str
    source: Path
    num_frames: int
    frame_size: tuple[int, int]
    fps: float | None = None
    frame_paths: list[Path] | None = None
    _reader: VideoFileReader | None = field(default=None, repr=False)

    @property
    def frame_names(self) -> list[str]:
        """The output name of each frame (no suffix): the frame file's stem made safe, or 0001, 0002, ..."""
        if self.frame_paths:
            return [sanitised_name(p.stem) for p in self.frame_paths]
        return [f"{i + 1:04d}" for i in range(self.num_frames)]

    def __len__(self) -> int:
        return self.num_frames

    @property
    def unread_warning(self) -> str:
        """After the frames were read: what to tell the user when a video file held more frames than its container
        announced (they were not read); '' otherwise."""
        return self._reader.unread_warning if self._reader is not None else ""

    def frames(self) -> Iterator[np.ndarray]:
        """Frames in order, decoded one at a time. Raises `DataError` on a frame of another size."""
        if self._reader is not None:
            yield from self._reader
            return
        for path in self.frame_paths or []:
            frame = read_frame(path)
            if frame.shape[:2] != self.frame_size:
                raise DataError(f"{path}: frame is {frame.shape[1]}x{frame.shape[0]}, the rest of {self.source} is "
                                f"{self.frame_size[1]}x{self.frame_size[0]}; every frame must have one size")
            yield frame


def _frame_folder_input(folder: Path, frames: list[Path]) -> PredictionInput:
    size = image_size(frames[0])
    for path in frames[1:]:
        if image_size(path) != size:
            raise DataError(f"{path}: frame is {image_size(path)[1]}x{image_size(path)[0]} but {frames[0].name} is "
                            f"{size[1]}x{size[0]}; every frame of {folder} must have one size")
    video = PredictionInput(sanitised_name(folder.name), folder, len(frames), size, None, frames)
    clash = _first_clash(video.frame_names, [p.name for p in frames])
    if clash:
        raise DataError(f"{folder}: frames {clash[0]} and {clash[1]} would both be written as {clash[2]}.png; "
                        f"rename or remove one of them")
    return video


def _first_clash(names: list[str], sources: list[str]) -> tuple[str, str, str] | None:
    """The first two sources whose output names are equal, ignoring case (as Windows and macOS file systems
    do): (source, source, name), or None."""
    seen: dict[str, str] = {}
    for name, source in zip(names, sources):
        key = name.casefold()
        if key in seen:
            return seen[key], source, name
        seen[key] = source
    return None


def _video_file_input(path: Path) -> PredictionInput:
    if is_dicom_file(path):
        raise DataError(f"{path}: a DICOM file; vivim-core predicts video files and frame folders. Propose masks for "
                        f"a DICOM cine loop with `vivim-studio propose {path.name}` (or open it in Vivim Studio), or "
                        f"export its frames as images first")
    reader = VideoFileReader(path)
    return PredictionInput(sanitised_name(path.stem), path, reader.num_frames, reader.frame_size, reader.fps, None,
                           reader)


def is_dicom_file(path: Path) -> bool:
    """True for files with the DICOM preamble ('DICM' at byte 128) or a .dcm/.dicom suffix."""
    if path.suffix.lower() in (".dcm", ".dicom"):
        return True
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def find_prediction_inputs(path: Path | str) -> list[PredictionInput]:
    """The videos to predict at `path`: a video file; a folder of frames; or a folder of videos (a VTUS split
    folder `ROOT/Test` of frame folders, a polyp `Frame` folder, or a folder of video files)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: not found (give a video file, a folder of frames or a folder of videos)")
    if path.is_file():
        return [_video_file_input(path)]
    frames = list_images(path)
    if frames:
        return [_frame_folder_input(path, frames)]
    inputs = []
    for entry in sorted(path.iterdir(), key=natural_key):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES:
            inputs.append(_video_file_input(entry))
        elif entry.is_dir():
            sub_frames = list_images(entry)
            if sub_frames:
                inputs.append(_frame_folder_input(entry, sub_frames))
    if not inputs:
        raise DataError(f"{path}: no frames, video files ({'/'.join(VIDEO_SUFFIXES)}) or folders of frames found "
                        f"here; for a VTUS dataset give its split folder, e.g. ROOT/Test")
    clash = _first_clash([i.video_id for i in inputs], [i.source.name for i in inputs])
    if clash:
        raise DataError(f"{path}: {clash[0]} and {clash[1]} would share the output folder {clash[2]} (names are "
                        f"compared ignoring case, after characters that are not allowed in file names become "
                        f"'_'); rename one so that outputs do not overwrite each other")
    return inputs
