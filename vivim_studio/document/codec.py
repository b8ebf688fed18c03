"""Compact encodings of masks and probability maps (the in-memory and on-disk form of the mask store).

* Mask: a label map uint8 (H, W) (0 background, 1..255 lesion ids) <-> PNG bytes, lossless: a 1-bit PNG while
  the frame holds lesion 1 only (a few KB, ~1 ms to encode or decode at 1080p), else an 8-bit greyscale PNG whose
  values are the ids (~4 ms to encode, ~1 ms to decode). A bool mask is the label map of lesion 1.
* Probability: float32 (H, W) in [0, 1] -> uint8 q = min(floor(256 p), 255) -> 8-bit PNG.
  The floor quantisation makes thresholds on the 1/256 grid exact: p >= k/256  <=>  q >= k (k = 1..255), so
  re-thresholding at 0.5 (k = 128) gives bit-for-bit the mask of `p >= 0.5` from the float map.
"""

from __future__ import annotations

import math
import struct

import cv2
import numpy as np

from .fast_png import decode_bilevel, decode_labels8, encode_bilevel, encode_labels8, png_depth

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PROB_PNG_FLAGS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]


class CodecError(ValueError):
    """Bytes that are not a PNG of the expected size (callers turn it into a WorkspaceError naming the file)."""


def png_size(data: bytes) -> tuple[int, int]:
    """(H, W) read from a PNG's IHDR chunk without decoding. Raises CodecError if `data` is not a PNG."""
    if len(data) < 24 or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise CodecError("not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return height, width


PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk every complete PNG ends with


def check_png(data: bytes) -> tuple[int, int]:
    """(H, W) of a PNG that is complete: signature, IHDR and the closing IEND chunk (a cheap test that catches
    truncated and garbage files without decoding). Raises CodecError."""
    size = png_size(data)
    if not data.endswith(PNG_END):
        raise CodecError("truncated PNG (its end marker is missing)")
    return size


def encode_mask(mask: np.ndarray) -> bytes:
    """bool or {0, 1}/{0, 255} (H, W) -> 1-bit PNG bytes (our own encoder: see `fast_png`)."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or 0 in mask.shape:
        raise CodecError(f"cannot encode a mask of shape {mask.shape}; masks are non-empty (H, W) arrays")
    return encode_bilevel(mask)


def encode_labels(labels: np.ndarray, only_lesion_1: bool | None = None) -> bytes:
    """uint8 (H, W) label map -> PNG bytes: 1-bit when every value is 0 or 1, else 8-bit. `only_lesion_1`: that
    fact when the caller knows it (saves a pass over the map)."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or 0 in labels.shape:
        raise CodecError(f"cannot encode a label map of shape {labels.shape}; masks are non-empty (H, W) arrays")
    if labels.dtype == bool:
        return encode_bilevel(labels)
    if labels.dtype != np.uint8:
        raise CodecError(f"a label map must be uint8 (lesion ids 0..255), got {labels.dtype}")
    if only_lesion_1 is None:
        only_lesion_1 = int(labels.max()) <= 1
    return encode_bilevel(labels.view(bool)) if only_lesion_1 else encode_labels8(labels)


def decode_labels(data: bytes, shape: tuple[int, int] | None = None) -> np.ndarray:
    """PNG bytes -> uint8 (H, W) label map: a 1-bit PNG is lesion 1; an 8-bit PNG holds the ids. Raises
    CodecError on undecodable bytes, another kind of PNG, or a size other than `shape` (H, W)."""
    if not isinstance(data, bytes):
        data = bytes(data)
    depth = png_depth(data)
    labels = None
    if depth == (1, 0):
        mask = decode_bilevel(data)
        labels = None if mask is None else mask.view(np.uint8)
    elif depth == (8, 0):
        labels = decode_labels8(data)
    if labels is None:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise CodecError("PNG data cannot be decoded (corrupt or truncated)")
        if image.ndim != 2 or image.dtype != np.uint8:
            raise CodecError(f"not a single-channel 8-bit mask ({image.dtype}, shape {image.shape})")
        labels = (image > 127).view(np.uint8) if depth is not None and depth[0] == 1 else image
    if shape is not None and labels.shape != tuple(shape):
        raise CodecError(f"mask is {labels.shape[1]}x{labels.shape[0]}, expected {shape[1]}x{shape[0]}")
    return labels


def decode_mask(data: bytes, shape: tuple[int, int] | None = None) -> np.ndarray:
    """PNG bytes -> bool (H, W), the union of the lesions. Raises CodecError like `decode_labels`."""
    return decode_labels(data, shape) > 0


def quantize_probability(prob: np.ndarray) -> np.ndarray:
    """float (H, W) in [0, 1] -> uint8 (H, W), q = min(floor(256 p), 255); NaN counts as 0.

    In place on one temporary (a 1080p map per proposed frame: 3x faster than nan_to_num + clip + floor)."""
    x = np.fmax(np.asarray(prob, dtype=np.float32), np.float32(0.0))  # fmax ignores NaN: NaN and p < 0 -> 0
    np.fmin(x, np.float32(1.0), out=x)
    x *= np.float32(256.0)
    np.minimum(x, np.float32(255.0), out=x)
    return x.astype(np.uint8)  # truncation is floor for x >= 0


def dequantize_probability(q: np.ndarray) -> np.ndarray:
    """uint8 (H, W) -> float32 (H, W): the centre of each 1/256 bin."""
    return (q.astype(np.float32) + 0.5) / 256.0


def threshold_level(threshold: float) -> int:
    """The quantised level k with `q >= k` <=> `p >= threshold` (exact on the 1/256 grid, else the next grid
    value above the threshold), clamped to 0..255."""
    return int(min(max(math.ceil(threshold * 256.0 - 1e-9), 0), 255))


def threshold_quantized(q: np.ndarray, threshold: float) -> np.ndarray:
    """bool (H, W) mask of a quantised probability map at `threshold`."""
    return q >= threshold_level(threshold)


def encode_probability(q: np.ndarray) -> bytes:
    """uint8 (H, W) quantised probability -> 8-bit PNG bytes."""
    ok, data = cv2.imencode(".png", np.ascontiguousarray(q, dtype=np.uint8), _PROB_PNG_FLAGS)
    if not ok:  # pragma: no cover
        raise CodecError(f"could not encode a {q.shape} probability map as PNG")
    return data.tobytes()


def decode_probability(data: bytes, shape: tuple[int, int] | None = None) -> np.ndarray:
    """PNG bytes -> uint8 (H, W) quantised probability. Raises CodecError on bad bytes or size."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 2 or image.dtype != np.uint8:
        raise CodecError("not an 8-bit single-channel PNG (corrupt, truncated or not written by Vivim Studio)")
    if shape is not None and image.shape != tuple(shape):
        raise CodecError(f"probability map is {image.shape[1]}x{image.shape[0]}, expected {shape[1]}x{shape[0]}")
    return image


def proposal_confidence(q: np.ndarray) -> float:
    """How sure the model is about a frame, in [0, 1]: mean |2p - 1| over the pixels with p >= 1/4 (the lesion
    and its uncertain rim); 1.0 when there are none (the model is sure the frame has no lesion). The timeline
    plots it and "next low-confidence frame" jumps to the lowest."""
    counts = np.bincount(np.asarray(q, dtype=np.uint8).ravel(), minlength=256)[64:]  # one pass, no float map
    total = counts.sum()
    if total == 0:
        return 1.0
    p = dequantize_probability(np.arange(64, 256, dtype=np.uint8))
    return float(np.dot(counts, np.abs(2.0 * p - 1.0)) / total)
