"""Video files (mp4, avi, mov, mkv... anything OpenCV's FFmpeg backend decodes), decoded lazily.

Random access keeps one decoder open: the next frame is read directly, a short jump forward is skipped with
`grab()` (cheaper than a seek), anything else seeks (`CAP_PROP_POS_FRAMES`, which FFmpeg resolves from the
previous key frame). Streaming (`iter_frames`) opens a second decoder and reads straight through.

The container's header is not taken at its word: a frame size beyond `limits.MAX_IMAGE_PIXELS` is refused
before decoding; the announced frame count is checked by decoding the last announced frame (and one more), and
a count that differs is repaired to what decodes, with a note in `warnings` and the log; a first frame that
decodes at another size than announced is noted the same way; and every frame must have the first frame's size.
(OpenCV's FFmpeg backend scales a frame whose coded size changes in mid-stream to the stream's size before
returning it; such a change cannot be seen through OpenCV.)
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ..exceptions import SourceError
from ..frame_cache import DEFAULT_CACHE_BYTES
from .base import VideoSource, hash_file, sample_file
from .limits import check_frame_pixels

log = logging.getLogger(__name__)

MAX_GRAB_AHEAD = 48  # a jump forward up to this many frames decodes through instead of seeking


def _convert_hint(path: Path) -> str:
    return f"convert it, e.g. `ffmpeg -i {path.name} -c:v libx264 -pix_fmt yuv420p out.mp4`, or export its frames"


class VideoFileSource(VideoSource):
    kind = "video"

    def __init__(self, path: Path | str, cache_bytes: int = DEFAULT_CACHE_BYTES):
        path = Path(path)
        if not path.is_file():
            raise SourceError(f"{path}: video file not found")
        if path.stat().st_size == 0:
            raise SourceError(f"{path}: the video file is empty (0 bytes); copy or export it again")
        capture = self._open_capture(path)
        header_size = (int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
                       int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0))
        if all(header_size):
            try:
                check_frame_pixels(path, *header_size)
            except SourceError:
                capture.release()
                raise
        ok, first = capture.read()
        if not ok or first is None:
            capture.release()
            raise SourceError(f"{path}: no frame could be decoded (unsupported codec or corrupt file); "
                              f"{_convert_hint(path)}")
        fps = capture.get(cv2.CAP_PROP_FPS)
        announced = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        count = self._decodable_count(path, announced)
        super().__init__(path, count, first.shape[:2], float(fps) if fps and np.isfinite(fps) and fps > 0 else None,
                         cache_bytes)
        self.announced_frames = announced  # what identity version 1 counted (see `legacy_digest`)
        self.metadata = {"codec": _fourcc(capture), "container": path.suffix.lower().lstrip(".")}
        if announced and count != announced:
            self.metadata["announced_frames"] = announced
            self._note(f"{path}: the container announces {announced} frames but " + (
                f"only {count} decode (the file is truncated or its header is wrong); it is opened with the "
                f"{count} frames that decode" if count < announced else
                f"the stream holds {count}; all {count} are used"))
        if all(header_size) and first.shape[:2] != header_size and first.shape[:2] != header_size[::-1]:
            self._note(f"{path}: the container says its frames are {header_size[1]}x{header_size[0]} but they "
                       f"decode at {first.shape[1]}x{first.shape[0]}; the decoded size is used")
        self._capture: cv2.VideoCapture | None = capture
        self._next = 1
        self.cache.put(0, cv2.cvtColor(first, cv2.COLOR_BGR2RGB))

    def _note(self, message: str) -> None:
        log.warning(message)
        self.warnings.append(message)

    @classmethod
    def _decodable_count(cls, path: Path, announced: int) -> int:
        """The number of frames that decode. The container's count is checked by decoding its last frame and
        trying one more; only when that frame is missing are the frames counted from the start (one pass of
        grabbing, for damaged files only)."""
        capture = cls._open_capture(path)
        try:
            if announced > 1:
                capture.set(cv2.CAP_PROP_POS_FRAMES, announced - 1)
                if capture.grab() and int(capture.get(cv2.CAP_PROP_POS_FRAMES)) == announced:
                    extra = 0
                    while capture.grab():
                        extra += 1
                    return announced + extra
                capture.release()
                capture = cls._open_capture(path)
            count = 0
            while capture.grab():
                count += 1
            return max(count, 1)  # the first frame did decode
        finally:
            capture.release()

    @staticmethod
    def _open_capture(path: Path) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise SourceError(f"{path}: OpenCV cannot open this video (unsupported container or codec, or not a "
                              f"video); {_convert_hint(path)}")
        return capture

    def _decode(self, index: int) -> np.ndarray:
        if self._capture is None:
            self._capture = self._open_capture(self.path)
            self._next = 0
        capture = self._capture
        ahead = index - self._next
        if 0 <= ahead <= MAX_GRAB_AHEAD:
            for _ in range(ahead):
                capture.grab()
        else:
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        if not ok or frame is None:
            self._capture.release()
            self._capture = None  # reopen next time: a failed read can leave the decoder unusable
            raise SourceError(f"{self.path}: frame {index + 1} of {self.num_frames} cannot be decoded (the file "
                              f"is truncated or damaged after this point); {_convert_hint(self.path)}")
        self._next = index + 1
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        stop = self.num_frames if stop is None else min(stop, self.num_frames)
        capture = self._open_capture(self.path)
        try:
            if start:
                capture.set(cv2.CAP_PROP_POS_FRAMES, start)
            for index in range(start, stop):
                ok, frame = capture.read()
                if not ok or frame is None:
                    raise SourceError(f"{self.path}: the stream ended at frame {index + 1} although the container "
                                      f"announces {self.num_frames} frames (truncated file?); "
                                      f"{_convert_hint(self.path)}")
                yield index, self._checked(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), index)
        finally:
            capture.release()

    def _identity_parts(self, digest: "hashlib._Hash") -> None:
        hash_file(self.path, digest)

    def _legacy_identity_parts(self, digest: "hashlib._Hash") -> None:
        sample_file(self.path, digest)

    def _legacy_frame_count(self) -> int:
        return self.announced_frames or self.num_frames  # identity version 1 took the container's word

    def close(self) -> None:
        with self._lock:
            if self._capture is not None:
                self._capture.release()
                self._capture = None
        super().close()


def _fourcc(capture: cv2.VideoCapture) -> str:
    code = int(capture.get(cv2.CAP_PROP_FOURCC) or 0)
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text if text.isprintable() and text.strip() else ""
