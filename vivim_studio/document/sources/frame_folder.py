"""Folders of frame images (natural order: 2.jpg before 10.jpg), and dataset cases whose ground-truth masks
come along as the starting masks:

    VTUS case    ROOT/<Split>/<video_id>/NNNN.jpg    masks in ROOT/<Split>_GT/<video_id>/NNNN.png
    polyp case   ROOT/<dataset>/Frame/<case>/*.jpg   masks in ROOT/<dataset>/GT/<case>/*.png

A mask belongs to the frame with the same stem. Frames without a mask start without one; masks without a frame
are ignored; both are listed in `warnings`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vivim_core.data.readers import DataError, list_images, read_frame, read_mask

from ..exceptions import SourceError
from ..frame_cache import DEFAULT_CACHE_BYTES
from .base import VideoSource, hash_file, sample_file
from .limits import frame_header_size


def find_ground_truth_folder(folder: Path) -> tuple[Path, str] | None:
    """(mask folder, layout name) when `folder` is a VTUS or polyp case with ground truth, else None."""
    parent = folder.parent
    vtus = parent.parent / f"{parent.name}_GT" / folder.name
    if vtus.is_dir():
        return vtus, "vtus-gt"
    if parent.name == "Frame":
        polyp = parent.parent / "GT" / folder.name
        if polyp.is_dir():
            return polyp, "polyp-gt"
    return None


def _short(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


class FrameFolderSource(VideoSource):
    """Frames of a folder; with `mask_folder` (found automatically for VTUS/polyp cases unless
    `load_ground_truth=False`) its masks are the starting masks (origin "import:<layout>")."""

    kind = "frames"

    def __init__(self, folder: Path | str, mask_folder: Path | str | None = None, load_ground_truth: bool = True,
                 cache_bytes: int = DEFAULT_CACHE_BYTES):
        folder = Path(folder)
        if not folder.is_dir():
            raise SourceError(f"{folder}: folder not found")
        self.frame_paths = list_images(folder)
        if not self.frame_paths:
            raise SourceError(f"{folder}: no frame images (.jpg, .png, .bmp, .tif) in this folder")
        size = frame_header_size(self.frame_paths[0])
        super().__init__(folder, len(self.frame_paths), size, None, cache_bytes)
        layout = "masks"
        if mask_folder is None and load_ground_truth:
            found = find_ground_truth_folder(folder)
            if found is not None:
                mask_folder, layout = found
        self.mask_folder = Path(mask_folder) if mask_folder is not None else None
        self.initial_mask_origin = f"import:{layout}"
        self._mask_paths: dict[int, Path] = {}
        if self.mask_folder is not None:
            self._pair_masks(layout)
        self.metadata = {"first_frame": self.frame_paths[0].name, "last_frame": self.frame_paths[-1].name}
        if self.mask_folder is not None:
            self.metadata["ground_truth"] = layout

    def _pair_masks(self, layout: str) -> None:
        if not self.mask_folder.is_dir():
            raise SourceError(f"{self.mask_folder}: mask folder not found")
        masks = {p.stem: p for p in list_images(self.mask_folder, (".png",))}
        stems = {p.stem: i for i, p in enumerate(self.frame_paths)}
        self._mask_paths = {stems[s]: p for s, p in masks.items() if s in stems}
        missing = [p.name for i, p in enumerate(self.frame_paths) if i not in self._mask_paths]
        extra = sorted(p.name for s, p in masks.items() if s not in stems)
        if missing:
            self.warnings.append(f"{self.mask_folder}: no {layout} mask for {len(missing)} frame(s): "
                                 f"{_short(missing)}; they start without a mask")
        if extra:
            self.warnings.append(f"{self.mask_folder}: {len(extra)} mask(s) without a frame, ignored: {_short(extra)}")

    @property
    def is_dataset_case(self) -> bool:
        return self.mask_folder is not None and self.initial_mask_origin != "import:masks"

    def _decode(self, index: int) -> np.ndarray:
        path = self.frame_paths[index]
        if index:  # the header first: a frame of another size (or a crafted one) is never decoded
            self._check_size(frame_header_size(path), index)
        try:
            return read_frame(path)
        except DataError as exc:
            raise SourceError(str(exc)) from None

    def _check_size(self, size: tuple[int, int], index: int) -> None:
        if tuple(size) != self.frame_size:
            raise SourceError(f"{self.frame_paths[index]}: frame is {size[1]}x{size[0]} but "
                              f"{self.frame_paths[0].name} is {self.frame_size[1]}x{self.frame_size[0]}; every "
                              f"frame of {self.path} must have one size")

    def _checked(self, frame: np.ndarray, index: int) -> np.ndarray:
        self._check_size(frame.shape[:2], index)
        return super()._checked(frame, index)

    def _decode_uncached(self, index: int) -> np.ndarray:
        return self._decode(index)  # independent files: no shared decoder state, no lock needed

    def initial_masks(self) -> Iterator[tuple[int, np.ndarray]]:
        for index, path in sorted(self._mask_paths.items()):
            size = frame_header_size(path)
            if size != self.frame_size:
                raise SourceError(f"{path}: mask is {size[1]}x{size[0]} but its frame "
                                  f"{self.frame_paths[index].name} is {self.frame_size[1]}x{self.frame_size[0]}; "
                                  f"masks must have their frame's size")
            try:
                mask = read_mask(path)
            except DataError as exc:
                raise SourceError(str(exc)) from None
            if mask.shape != self.frame_size:
                raise SourceError(f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} but its frame "
                                  f"{self.frame_paths[index].name} is {self.frame_size[1]}x{self.frame_size[0]}; "
                                  f"masks must have their frame's size")
            yield index, mask

    def _identity_parts(self, digest: "hashlib._Hash") -> None:
        for path in self.frame_paths:  # every frame file, whole: a frame changed in any way changes the identity
            digest.update(f"{path.name}:".encode())
            hash_file(path, digest)

    def _legacy_identity_parts(self, digest: "hashlib._Hash") -> None:
        for path in self.frame_paths:
            digest.update(f"{path.name}:{path.stat().st_size};".encode())
        for index in sorted({0, len(self.frame_paths) // 2, len(self.frame_paths) - 1}):
            sample_file(self.frame_paths[index], digest)

    def default_workspace(self) -> Path:
        """`<folder>.vivim/` beside the folder; for a dataset case `<split>.vivim/<case>/` beside the split
        folder, so the dataset's readers (which list the split's sub-folders) never see a workspace."""
        if self.is_dataset_case:
            return self.path.parent.with_name(self.path.parent.name + ".vivim") / self.path.name
        return super().default_workspace()
