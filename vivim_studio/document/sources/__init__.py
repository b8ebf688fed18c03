"""Video sources: `open_source(path)` picks the reader from what `path` is.

    video file (.mp4 .avi .mov .mkv ...)      VideoFileSource (OpenCV)
    DICOM file (.dcm, or 'DICM' preamble)      DicomCineSource (pydicom)
    folder of images                           FrameFolderSource (VTUS / polyp cases bring their GT masks)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vivim_core.data.layouts import is_dicom_file
from vivim_core.data.readers import IMAGE_SUFFIXES, VIDEO_SUFFIXES

from ..exceptions import SourceError
from ..frame_cache import DEFAULT_CACHE_BYTES
from .base import SourceFrames, SourceIdentity, VideoSource
from .dicom import DicomCineSource
from .frame_folder import FrameFolderSource
from .video_file import VideoFileSource

__all__ = ["open_source", "find_inputs", "VideoSource", "SourceIdentity", "SourceFrames", "VideoFileSource",
           "FrameFolderSource", "DicomCineSource", "MissingSource", "SOURCE_HELP"]

SOURCE_HELP = ("a video file (" + " ".join(VIDEO_SUFFIXES) + "), a folder of frames (" + " ".join(IMAGE_SUFFIXES)
               + "), a VTUS case folder (ROOT/<Split>/<video_id>) or a DICOM cine file (.dcm)")


def open_source(path: Path | str, cache_bytes: int = DEFAULT_CACHE_BYTES, load_ground_truth: bool = True
                ) -> VideoSource:
    """Open `path` as a lazily decoded video source. Raises `SourceError` naming the file and the problem."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: not found; give {SOURCE_HELP}")
    if path.is_dir():
        return FrameFolderSource(path, load_ground_truth=load_ground_truth, cache_bytes=cache_bytes)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoFileSource(path, cache_bytes=cache_bytes)
    if is_dicom_file(path):
        return DicomCineSource(path, cache_bytes=cache_bytes)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise SourceError(f"{path}: a single image; open the folder that holds the video's frames instead")
    raise SourceError(f"{path}: unsupported file type {path.suffix or '(no suffix)'}; give {SOURCE_HELP}")


def _is_openable(path: Path) -> bool:
    if path.name.startswith(".") or path.name.endswith(".vivim"):
        return False
    if path.is_dir():
        return any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir() if p.is_file())
    return path.suffix.lower() in VIDEO_SUFFIXES or is_dicom_file(path)


def find_inputs(paths: list[Path | str]) -> list[Path]:
    """Expand command-line inputs into openable sources: a video file, DICOM file or frame folder stays as it
    is; a folder without frames contributes its videos, DICOM files and frame folders (one level, natural
    order), e.g. a VTUS split folder ROOT/Train. Raises SourceError for a path that yields nothing."""
    from vivim_core.data.readers import natural_key

    found: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise SourceError(f"{path}: not found; give {SOURCE_HELP}")
        if path.is_file() or _is_openable(path):
            found.append(path)
            continue
        children = [c for c in sorted(path.iterdir(), key=natural_key) if _is_openable(c)]
        if not children:
            raise SourceError(f"{path}: no video, DICOM file or frame folder found in this folder; give {SOURCE_HELP}")
        found.extend(children)
    return found


class MissingSource(VideoSource):
    """Stands in for a source that is not at hand (moved video): everything but the pixels, from the
    workspace's record. `frame()` raises a SourceError that says how to point to the video."""

    def __init__(self, path: Path, identity: SourceIdentity, fps: float | None = None):
        self.kind = identity.kind
        super().__init__(path, identity.num_frames, (identity.height, identity.width), fps, cache_bytes=0)
        self._identity = identity

    def _decode(self, index: int) -> np.ndarray:
        raise SourceError(f"{self.path}: the source video of this workspace is not available (moved or deleted); "
                          f"pass its new location (e.g. `--source PATH`) to read its frames")

    def _identity_parts(self, digest) -> None:  # pragma: no cover - identity is given
        raise AssertionError("MissingSource has a fixed identity")

    def _legacy_identity_parts(self, digest) -> None:  # pragma: no cover - nothing to read
        raise AssertionError("MissingSource has no content")
