"""The interface every video source implements, its identity, and the shared lazy-decoding machinery."""

from __future__ import annotations

import hashlib
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import SourceError
from ..frame_cache import DEFAULT_CACHE_BYTES, FrameCache

SAMPLE_BYTES = 64 * 1024  # the previous identity (version 1) sampled this much of a file, three times
IDENTITY_VERSION = 2
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class SourceIdentity:
    """What identifies a video independently of where it lies and of its modification time.

    digest (version 2): SHA-256 of the kind, frame count, frame size and the whole content: every byte of the
    video file, or of every frame file with its name and size. A frame changed in any way (even to a file of
    the same size) gives another digest. Two sources match when their digests are equal.
    Version 1 (workspaces of earlier Vivim Studio versions) sampled 3 x 64 KB of the content instead, which a
    same-size change could slip through; such workspaces are recognised by `VideoSource.legacy_digest` once
    and upgraded (see `workspace`).
    """

    kind: str
    digest: str
    num_frames: int
    height: int
    width: int
    version: int = IDENTITY_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> "SourceIdentity":
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, found {type(data).__name__}")
        kind, digest = data["kind"], data["digest"]
        if not isinstance(kind, str) or not isinstance(digest, str) or len(digest) != 64:
            raise ValueError("kind must be a string and digest a 64-digit SHA-256")
        sizes = [data["num_frames"], data["height"], data["width"]]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in sizes):
            raise ValueError(f"num_frames, height and width must be positive integers, found {sizes}")
        version = data.get("version", 1)  # absent: written before versions existed
        if version not in (1, IDENTITY_VERSION) or isinstance(version, bool):
            raise ValueError(f"identity version {version!r} is unknown (this Vivim Studio knows 1 and "
                             f"{IDENTITY_VERSION})")
        return cls(kind, digest, *sizes, version=version)

    def describe(self) -> str:
        return f"{self.kind}, {self.num_frames} frames of {self.width}x{self.height}, identity {self.digest[:12]}"


def hash_file(path: Path, digest: "hashlib._Hash") -> None:
    """Feed the size and every byte of a file to `digest`, 1 MB at a time."""
    with open(path, "rb") as f:
        digest.update(f"{os.fstat(f.fileno()).st_size}:".encode())
        buffer = bytearray(CHUNK_BYTES)
        view = memoryview(buffer)
        while True:
            count = f.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])


def sample_file(path: Path, digest: "hashlib._Hash") -> None:
    """Feed the size and the first, middle and last SAMPLE_BYTES of a file to `digest` (identity version 1)."""
    size = path.stat().st_size
    digest.update(f"{size}:".encode())
    with open(path, "rb") as f:
        for offset in sorted({0, max(0, size // 2 - SAMPLE_BYTES // 2), max(0, size - SAMPLE_BYTES)}):
            f.seek(offset)
            digest.update(f.read(SAMPLE_BYTES))


class VideoSource(ABC):
    """A video as frames decoded on demand: uint8 (H, W, 3) RGB, read-only, through a bounded LRU cache.

    Attributes known up front: `kind` ("video" | "frames" | "dicom"), `path`, `name` (file or folder name),
    `video_id` (default export id), `num_frames`, `frame_size` (H, W), `fps` (None when the format has none),
    `metadata` (technical fields only; never patient identifiers), `warnings` (non-fatal findings, e.g. GT files
    without a frame). Subclasses implement `_decode(index)` and `_identity_parts(digest)`.
    """

    kind = "abstract"

    def __init__(self, path: Path, num_frames: int, frame_size: tuple[int, int], fps: float | None,
                 cache_bytes: int = DEFAULT_CACHE_BYTES):
        if num_frames < 1:
            raise SourceError(f"{path}: the source has no frames")
        self.path = Path(path)
        self.name = self.path.name
        self.video_id = self.path.name if self.kind == "frames" else self.path.stem
        self.num_frames = int(num_frames)
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.fps = fps
        self.metadata: dict[str, Any] = {}
        self.warnings: list[str] = []
        self.cache = FrameCache(cache_bytes)
        self._lock = threading.RLock()  # decoders (cv2.VideoCapture, open files) are not thread-safe
        self._identity: SourceIdentity | None = None

    def __len__(self) -> int:
        return self.num_frames

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.path)!r}, {self.num_frames} frames, "
                f"{self.frame_size[1]}x{self.frame_size[0]}, fps={self.fps})")

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` (0-based) as uint8 (H, W, 3) RGB, read-only. Raises IndexError / SourceError."""
        index = self.check_index(index)
        cached = self.cache.get(index)
        if cached is not None:
            return cached
        with self._lock:
            cached = self.cache.get(index)  # decoded by another thread (decode-ahead) while this one waited:
            if cached is not None:          # decoding it again would cost a seek back
                return cached
            frame = self._decode(index)
        return self.cache.put(index, self._checked(frame, index))

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(index, frame) for frames start..stop-1 in order, decoded sequentially by a decoder of its own (so a
        worker thread can stream a long video without disturbing `frame()` nor flooding the cache)."""
        stop = self.num_frames if stop is None else min(stop, self.num_frames)
        for index in range(start, stop):
            yield index, self._checked(self._decode_uncached(index), index)

    def _decode_uncached(self, index: int) -> np.ndarray:
        """Default: the shared decoder under the lock; sequential-friendly sources override it."""
        with self._lock:
            return self._decode(index)

    def check_index(self, index: int) -> int:
        index = int(index)
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame {index} out of range: {self.name} has frames 0..{self.num_frames - 1}")
        return index

    def _checked(self, frame: np.ndarray, index: int) -> np.ndarray:
        if frame.shape != (*self.frame_size, 3) or frame.dtype != np.uint8:
            raise SourceError(f"{self.path}: frame {index + 1} is {frame.shape[1]}x{frame.shape[0]}, the first is "
                              f"{self.frame_size[1]}x{self.frame_size[0]}; every frame of a video must have one "
                              f"size (re-export the video or its frames at one size)")
        return frame

    @property
    def identity(self) -> SourceIdentity:
        """The video's identity (version 2: the whole content is hashed, once per source object)."""
        if self._identity is None:
            digest = hashlib.sha256(f"{self.kind}:v{IDENTITY_VERSION}:{self.num_frames}:{self.frame_size}:".encode())
            try:
                self._identity_parts(digest)
            except OSError as exc:
                raise SourceError(f"{self.path}: cannot be read to the end ({exc.strerror or exc}); check the file "
                                  f"(or copy it again)") from None
            self._identity = SourceIdentity(self.kind, digest.hexdigest(), self.num_frames, *self.frame_size)
        return self._identity

    def legacy_digest(self) -> str:
        """The digest version 1 gave this video (content samples only): recognises workspaces and exports
        made by earlier Vivim Studio versions."""
        digest = hashlib.sha256(f"{self.kind}:{self._legacy_frame_count()}:{self.frame_size}:".encode())
        try:
            self._legacy_identity_parts(digest)
        except OSError as exc:
            raise SourceError(f"{self.path}: cannot be read ({exc.strerror or exc})") from None
        return digest.hexdigest()

    def initial_masks(self) -> Iterable[tuple[int, np.ndarray]]:
        """(index, bool (H, W) mask) pairs that come with the source (VTUS ground truth); none by default."""
        return ()

    initial_mask_origin = "import"

    def default_workspace(self) -> Path:
        """Where the workspace goes when none is chosen: `<video>.vivim/` beside the file or folder."""
        return self.path.with_name(self.path.name + ".vivim")

    def close(self) -> None:
        self.cache.clear()

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _legacy_frame_count(self) -> int:
        return self.num_frames

    @abstractmethod
    def _decode(self, index: int) -> np.ndarray:
        """Decode frame `index` -> uint8 (H, W, 3) RGB. Called under `self._lock`."""

    @abstractmethod
    def _identity_parts(self, digest: "hashlib._Hash") -> None:
        """Feed the whole content to `digest` (identity version 2)."""

    @abstractmethod
    def _legacy_identity_parts(self, digest: "hashlib._Hash") -> None:
        """Feed what identity version 1 sampled to `digest`."""


class SourceFrames:
    """A lazy sequence view of a source for `vivim_core.engine.predict.iter_predict`: `len()`, `[i]` and
    iteration (sequential decoding, not cached)."""

    def __init__(self, source: VideoSource):
        self.source = source

    def __len__(self) -> int:
        return self.source.num_frames

    def __getitem__(self, index: int) -> np.ndarray:
        if isinstance(index, slice):
            return [self.source.frame(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        return self.source.frame(index)

    def __iter__(self) -> Iterator[np.ndarray]:
        for _, frame in self.source.iter_frames():
            yield frame
