"""Masks and probability maps of every frame, memory-bounded for long videos.

A frame's mask is a label map (0 background, 1..255 lesion ids). Masks live in memory as PNG bytes (`codec`:
1-bit while the frame holds lesion 1 only, about 5 KB at 1080p; 10,000 frames ~ 50 MB); an empty mask is stored
as nothing. Probability maps (8-bit PNG, ~50-100 KB at 1080p) stay in memory only until
the workspace has written them; after that only their file is kept and they are read back on demand.
A few recently used frames are kept decoded (LRU) so that scrubbing and painting do not decode twice.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import codec
from .exceptions import WorkspaceError

ON_DISK = object()  # marker: the probability map is in the workspace, read it with the loader


def _pair(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, union), both read-only; a map of lesion 1 only is its own union (a bool view, no copy)."""
    labels.setflags(write=False)
    union = labels.view(bool) if int(labels.max(initial=0)) <= 1 else labels > 0
    union.setflags(write=False)
    return labels, union


class _DecodedLRU:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self._items: OrderedDict[int, object] = OrderedDict()

    def get(self, index: int):
        item = self._items.get(index)
        if item is not None:
            self._items.move_to_end(index)
        return item

    def put(self, index: int, item):
        if isinstance(item, np.ndarray):
            item.setflags(write=False)
        self._items[index] = item
        self._items.move_to_end(index)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return item

    def drop(self, index: int) -> None:
        self._items.pop(index, None)


class MaskStore:
    """Masks: label maps uint8 (H, W) per frame (absent = empty), also read as their bool union. Probabilities:
    quantised uint8 (H, W) (see `codec`).

    prob_loader(index) -> bytes reads a probability map the workspace has written (`mark_probability_saved`).
    locate(index, "mask" | "probability") -> the workspace file of that map (or None), to name it in errors:
    a map that cannot be decoded (a file damaged on disk) raises `WorkspaceError` naming the file.
    """

    def __init__(self, frame_size: tuple[int, int], prob_loader: Callable[[int], bytes] | None = None,
                 decoded_masks: int = 16, decoded_probabilities: int = 4,
                 locate: Callable[[int, str], Path | None] | None = None):
        self.frame_size = tuple(frame_size)
        self._prob_loader = prob_loader
        self._locate = locate
        self._masks: dict[int, bytes] = {}
        self._probs: dict[int, object] = {}  # bytes, or ON_DISK
        self._mask_cache = _DecodedLRU(decoded_masks)
        self._prob_cache = _DecodedLRU(decoded_probabilities)
        self._empty_pair = _pair(np.zeros(self.frame_size, np.uint8))
        self._lock = threading.RLock()

    # masks ---------------------------------------------------------------------------------------------
    def labels(self, index: int) -> np.ndarray:
        """uint8 (H, W) label map, read-only (copy it to modify)."""
        return self._decoded(index)[0]

    def mask(self, index: int) -> np.ndarray:
        """bool (H, W), the union of the lesions, read-only (copy it to modify)."""
        return self._decoded(index)[1]

    def _decoded(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(labels, union mask) of a frame, decoded once and kept in the LRU."""
        with self._lock:
            cached = self._mask_cache.get(index)
            if cached is not None:
                return cached
            data = self._masks.get(index)
        if data is None:
            return self._empty_pair
        try:  # outside the lock: a 1080p decode takes milliseconds, other threads' reads must not wait for it
            decoded = codec.decode_labels(data, self.frame_size)
        except codec.CodecError as exc:
            raise self._damaged(index, "mask", exc) from None
        pair = _pair(decoded)
        with self._lock:
            if self._masks.get(index) is not data:  # replaced meanwhile: the caller gets what it read, uncached
                return pair
            return self._mask_cache.put(index, pair)

    def _damaged(self, index: int, kind: str, exc: Exception) -> WorkspaceError:
        where = self._locate(index, kind) if self._locate is not None else None
        fix = ("propose masks again to replace it (the frame's mask is not affected)" if kind == "probability" else
               "restore the file from a backup, or delete the frame's record in the workspace's frames/ folder to "
               "forget only this frame's mask")
        return WorkspaceError(f"{where or f'frame {index}'}: the {kind} of frame {index} cannot be decoded ({exc}); "
                              f"{fix}")

    def has_mask(self, index: int) -> bool:
        return index in self._masks

    def mask_bytes(self, index: int) -> bytes | None:
        """The frame's encoded label map (None: empty)."""
        return self._masks.get(index)

    def set_mask(self, index: int, mask: np.ndarray | None) -> bytes | None:
        """Store a bool (H, W) mask as lesion 1 (None or all-False: no mask); returns its encoding."""
        return self.set_labels(index, None if mask is None else np.asarray(mask, dtype=bool).view(np.uint8),
                               only_lesion_1=True)

    def set_labels(self, index: int, labels: np.ndarray | None, only_lesion_1: bool | None = None) -> bytes | None:
        """Store a uint8 (H, W) label map (None or all 0: no mask); returns its encoding (None when empty).
        `only_lesion_1`: whether every value is 0 or 1, when the caller knows (see `codec.encode_labels`)."""
        with self._lock:
            if labels is None or not labels.any():
                self._masks.pop(index, None)
                self._mask_cache.drop(index)
                return None
            if labels.shape != self.frame_size:
                raise ValueError(f"mask of shape {labels.shape} for frames of size {self.frame_size}")
            labels = np.array(labels, dtype=np.uint8)  # our own copy: the caller may go on modifying its array
            data = codec.encode_labels(labels, only_lesion_1)
            self._masks[index] = data
            self._mask_cache.put(index, _pair(labels))
            return data

    def set_mask_bytes(self, index: int, data: bytes | None) -> None:
        """Store an already encoded mask (from the workspace or the undo history)."""
        with self._lock:
            self._mask_cache.drop(index)
            if data is None:
                self._masks.pop(index, None)
            else:
                self._masks[index] = data

    def mask_indices(self) -> list[int]:
        return sorted(self._masks)

    # probabilities --------------------------------------------------------------------------------------
    def has_probability(self, index: int) -> bool:
        return index in self._probs

    def probability(self, index: int) -> np.ndarray | None:
        """Quantised probability uint8 (H, W), read-only, or None without a proposal."""
        with self._lock:
            cached = self._prob_cache.get(index)
            if cached is not None:
                return cached
            data = self.probability_bytes(index)
            if data is None:
                return None
            try:
                decoded = codec.decode_probability(data, self.frame_size)
            except codec.CodecError as exc:
                raise self._damaged(index, "probability", exc) from None
            return self._prob_cache.put(index, decoded)

    def probability_bytes(self, index: int) -> bytes | None:
        with self._lock:
            data = self._probs.get(index)
        if data is ON_DISK:
            return self._prob_loader(index)
        return data

    def probability_in_memory(self, index: int) -> bytes | None:
        """The encoded map if it has not been written to the workspace yet (what a save must write)."""
        data = self._probs.get(index)
        return None if data is ON_DISK else data

    def set_probability(self, index: int, quantized: np.ndarray | None, encoded: bytes | None = None) -> bytes | None:
        """Store a quantised uint8 (H, W) map (None removes it); returns the encoding. `encoded`: that encoding,
        made ahead by a caller that holds a lock of its own (a 1080p map takes ~18 ms to encode)."""
        if quantized is not None:
            if quantized.shape != self.frame_size:
                raise ValueError(f"probability map of shape {quantized.shape} for frames of size {self.frame_size}")
            if encoded is None:
                encoded = codec.encode_probability(quantized)  # before the lock: readers never wait on it
        with self._lock:
            self._prob_cache.drop(index)
            if quantized is None:
                self._probs.pop(index, None)
                return None
            data = encoded
            self._probs[index] = data
            self._prob_cache.put(index, np.array(quantized, dtype=np.uint8))
            return data

    def set_probability_bytes(self, index: int, data: bytes | None) -> None:
        with self._lock:
            self._prob_cache.drop(index)
            if data is None:
                self._probs.pop(index, None)
            else:
                self._probs[index] = data

    def mark_probability_saved(self, index: int) -> None:
        """The workspace holds this frame's map now: free the in-memory copy (needs a prob_loader)."""
        if self._prob_loader is not None:
            with self._lock:
                if index in self._probs:
                    self._probs[index] = ON_DISK

    def attach_probability_file(self, index: int) -> None:
        """The workspace has a map for this frame on disk (used when reopening): read it on demand."""
        with self._lock:
            self._prob_cache.drop(index)
            self._probs[index] = ON_DISK

    def probability_indices(self) -> list[int]:
        return sorted(self._probs)

    def memory_bytes(self) -> int:
        """Bytes held in encoded form (masks + unsaved probability maps), for benchmarks."""
        return (sum(len(d) for d in self._masks.values())
                + sum(len(d) for d in self._probs.values() if d is not ON_DISK))
