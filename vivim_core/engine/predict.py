"""Whole-video prediction: cut a video into overlapping clips, run the model, blend, stream the results.

    for index, prob in iter_predict(model, frames, clip_length=5, overlap=2, size=(256, 256)):
        ...   # prob: float32 (H, W) in [0, 1] at the frame's own size, frames in order 0, 1, 2, ...
    probs = predict_video(model, frames)        # (N, H, W) float32, for short videos

`frames` is any sequence or sized iterable of uint8 (H, W, 3) RGB frames (a list, an (N, H, W, 3) array, a
`vivim_core.data.PredictionInput`, ...): its length must be known up front. Frames are read once, in order,
and dropped as soon as no later clip needs them, so memory stays bounded by about
`batch_size * clip_length` frames whatever the video's length.

Clips (`protocol="vivim"`, the default): starts 0, s, 2s, ... with s = clip_length - overlap; the last clip is
aligned to the video's end (it may overlap its neighbour by more); a video shorter than one clip is one clip
whose indices are clamped (the last frame repeats), exactly as in training. A frame covered by several clips
gets the weighted mean of its probabilities, with weights tapering from the clip centre (1, 2, ..., 2, 1 for
T = 5, normalised), since a bidirectional temporal model sees less context at a clip's ends.

`protocol="official"` is the official Vivim code's inference: one clip per frame, the frame at its centre
(position T // 2, frames i-2..i+2 for T = 5), indices clamped to the video (frame 0's clip is 0, 0, 0, 1, 2),
and the frame takes the centre output alone. It runs about T times as many clips.

Cancel: pass a `threading.Event` (or any callable returning True to stop); it is checked before each batch
and while waiting for frames, and raises `PredictionCancelled`.

Speed: a reader thread decodes, checks and resizes frames (OpenCV releases the GIL) up to `prefetch` frames
ahead while the device works; normalisation, blending and the resize to native size run on the model's
device, and each batch's finished frames come back to the host in one copy (in chunks of at most
`NATIVE_CHUNK_BYTES` for huge frames, e.g. 8K, so that memory stays bounded). On CUDA the model runs in bf16
(autocast over float32 weights, or the weights' own bf16).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import VivimError

ProgressCallback = Callable[[int, int], None]
NATIVE_CHUNK_BYTES = 256 * 2**20  # at most this much of native-size probability maps at once (at least one frame)


class PredictionCancelled(VivimError):
    """Prediction stopped because the caller cancelled it."""


class PredictionError(VivimError, ValueError):
    """Frames or settings that prediction cannot use (the message says what and how to fix it)."""


def settings_for_checkpoint(provenance: dict, size: tuple[int, int] | None = None, clip_length: int | None = None,
                            overlap: int | None = None) -> dict[str, Any]:
    """`iter_predict`'s size, clip_length and overlap: those given, else what the checkpoint was trained with
    (its provenance's train_size and clip_length; a model trained at 352x352 proposes worse at 256x256), else
    256x256 and 5 frames; overlap defaults to half a clip."""
    clip_length = clip_length or int(provenance.get("clip_length") or 5)
    return dict(size=tuple(size or provenance.get("train_size") or (256, 256)), clip_length=clip_length,
                overlap=overlap if overlap is not None else clip_length // 2)


def clip_schedule(num_frames: int, clip_length: int, overlap: int) -> list[list[int]]:
    """Frame indices of each clip (see the module docstring). Every frame is covered at least once."""
    if clip_length < 1 or not 0 <= overlap < clip_length:
        raise PredictionError(f"need clip_length >= 1 and 0 <= overlap < clip_length (got {clip_length}, {overlap})")
    if num_frames < 1:
        return []
    if num_frames <= clip_length:
        return [[min(k, num_frames - 1) for k in range(clip_length)]]
    step = clip_length - overlap
    starts = list(range(0, num_frames - clip_length + 1, step))
    if starts[-1] + clip_length < num_frames:
        starts.append(num_frames - clip_length)
    return [list(range(s, s + clip_length)) for s in starts]


PROTOCOLS = ("vivim", "official")


def centre_schedule(num_frames: int, clip_length: int) -> list[list[int]]:
    """The official protocol's clips: clip i holds frame i at position clip_length // 2, its neighbours around it,
    indices clamped to [0, num_frames - 1] (as the official data loader builds them)."""
    if clip_length < 1:
        raise PredictionError(f"need clip_length >= 1 (got {clip_length})")
    start = -(clip_length // 2)
    return [[min(max(i + start + k, 0), num_frames - 1) for k in range(clip_length)] for i in range(num_frames)]


def clip_plan(num_frames: int, clip_length: int, overlap: int,
              protocol: str = "vivim") -> list[tuple[list[int], list[float]]]:
    """(frame indices, blending weight of each position) of every clip of a protocol (see the module docstring).
    A clamped clip repeats frames: only a frame's first position counts (vivim). Every frame gets weight > 0."""
    if protocol == "official":
        centre = clip_length // 2
        return [(indices, [float(k == centre) for k in range(clip_length)])
                for indices in centre_schedule(num_frames, clip_length)]
    if protocol != "vivim":
        raise PredictionError(f"unknown prediction protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    base = clip_weights(clip_length)
    plan = []
    for indices in clip_schedule(num_frames, clip_length, overlap):
        seen: set[int] = set()
        weights = []
        for position, i in enumerate(indices):
            weights.append(0.0 if i in seen else float(base[position]))
            seen.add(i)
        plan.append((indices, weights))
    return plan


def clip_weights(clip_length: int) -> np.ndarray:
    """Blending weight of each position of a clip: min(k + 1, T - k), e.g. [1, 2, 3, 2, 1] for T = 5."""
    k = np.arange(clip_length)
    return np.minimum(k + 1, clip_length - k).astype(np.float32)


def _cancelled(cancel: Any) -> bool:
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())


def _model_device(model: torch.nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _check_and_resize(frame: np.ndarray, index: int, size: tuple[int, int],
                      native: tuple[int, int] | None) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (h, w, 3) at the model size, after checking dtype, shape and size."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise PredictionError(f"frame {index}: expected uint8 RGB (H, W, 3), got {frame.dtype} {frame.shape}")
    if native is not None and frame.shape[:2] != native:
        raise PredictionError(f"frame {index} is {frame.shape[1]}x{frame.shape[0]} but frame 0 is "
                              f"{native[1]}x{native[0]}; every frame of a video must have one size")
    if frame.shape[:2] != size:
        import cv2

        shrinking = size[0] * size[1] < frame.shape[0] * frame.shape[1]
        frame = cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return np.ascontiguousarray(frame)


class _FrameReader:
    """Reads, checks and resizes frames in a background thread, at most `ahead` frames ahead of use.

    Errors (bad frames, a video that ends early) are raised by `get` in the consumer's thread."""

    _END = object()

    def __init__(self, frames: Iterable[np.ndarray], total: int, size: tuple[int, int], ahead: int):
        self.native: tuple[int, int] | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, ahead))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(frames, total, size), daemon=True,
                                        name="vivim-frame-reader")
        self._thread.start()

    def _run(self, frames: Iterable[np.ndarray], total: int, size: tuple[int, int]) -> None:
        try:
            iterator = iter(frames)
            for index in range(total):
                if self._stop.is_set():
                    return
                try:
                    frame = next(iterator)
                except StopIteration:
                    raise PredictionError(
                        f"the video ended after {index} frames, but {total} were announced (a video file whose "
                        f"container miscounts its frames?); re-encode it, e.g. `ffmpeg -i in.mp4 -c:v libx264 "
                        f"out.mp4`, or export its frames") from None
                if self.native is None:
                    self.native = tuple(np.asarray(frame).shape[:2])
                self._put(_check_and_resize(frame, index, size, self.native))
            next(iterator, None)  # lets a file reader finish, and notice frames beyond the announced count
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def get(self, cancel: Any) -> np.ndarray:
        while True:
            if _cancelled(cancel):
                raise PredictionCancelled("prediction cancelled")
            try:
                item = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            if isinstance(item, BaseException):
                raise item
            return item

    def finish(self) -> None:
        """Wait for the thread once every frame was used: it only lets the source finish (one more read)."""
        self._thread.join()
        try:
            item = self._queue.get_nowait()  # every frame was used: anything left is an error of the source
        except queue.Empty:
            return
        if isinstance(item, BaseException):
            raise item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _model_dtype(model: torch.nn.Module) -> torch.dtype:
    parameter = next(model.parameters(), None)
    return parameter.dtype if parameter is not None else torch.float32


def iter_predict(model: torch.nn.Module, frames: Sequence[np.ndarray] | Iterable[np.ndarray], *,
                 clip_length: int = 5, overlap: int = 2, size: tuple[int, int] = (256, 256), batch_size: int = 4,
                 device: str | torch.device | None = None, progress: ProgressCallback | None = None,
                 cancel: Any = None, num_frames: int | None = None, prefetch: int | None = None,
                 protocol: str = "vivim") -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame_index, prob) for every frame in order; prob is float32 (H, W) in [0, 1] at native size.

    model: a Vivim (its `config.input_mean/std` normalise the frames); it is put in eval mode.
    frames: uint8 (H, W, 3) RGB frames, all of one size; `len(frames)` must work, or pass `num_frames`.
    size: (h, w) the frames are resized to for the model (divisible by the model's output stride, 32).
    batch_size: clips per forward pass; the first pass takes one clip, so that the first frames come out after one
    clip's work (what a user waiting for the first proposal sees). device: None = where the model is (it is
    moved when given).
    progress(done, total): after each batch, with the number of frames yielded so far.
    cancel: threading.Event or callable -> raises PredictionCancelled promptly.
    prefetch: frames decoded ahead by the reader thread (default: one batch of new frames).
    protocol: "vivim" (overlapping clips, blended) or "official" (one clip per frame, its centre output; `overlap`
    is not used).
    Blending is done in float32 at the model size, then each frame's probability is resized (bilinear) to
    its native size.
    """
    total = num_frames if num_frames is not None else (len(frames) if hasattr(frames, "__len__") else None)
    if total is None:
        raise PredictionError("iter_predict needs the number of frames up front: pass a sequence, an object with "
                              "len(), or num_frames=")
    size = (int(size[0]), int(size[1]))
    stride = getattr(getattr(model, "config", None), "output_stride", 32)
    if size[0] % stride or size[1] % stride or min(size) < stride:
        raise PredictionError(f"size {size[0]}x{size[1]} must be a positive multiple of {stride} (e.g. 256x256)")
    if batch_size < 1:
        raise PredictionError(f"batch_size must be >= 1 (got {batch_size})")
    plan = clip_plan(total, clip_length, overlap, protocol)
    schedule = [indices for indices, _ in plan]
    if not schedule:
        return
    if _cancelled(cancel):
        raise PredictionCancelled("prediction cancelled")
    device = torch.device(device) if device is not None else _model_device(model)
    model = model.to(device).eval()
    weight_dtype = _model_dtype(model)
    mean = torch.tensor(model.config.input_mean, dtype=torch.float32, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(model.config.input_std, dtype=torch.float32, device=device).view(1, 3, 1, 1) * 255
    # the last clip that reads / covers each frame: frames are freed and emitted after it
    last_clip = np.zeros(total, dtype=np.int64)
    for c, indices in enumerate(schedule):
        last_clip[np.asarray(indices)] = c
    use_autocast = device.type == "cuda" and weight_dtype == torch.float32
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_autocast else contextlib.nullcontext()
    step = 1 if protocol == "official" else max(1, clip_length - overlap)  # new frames per clip
    reader = _FrameReader(frames, total, size, prefetch if prefetch is not None else batch_size * step)

    inputs: dict[int, torch.Tensor] = {}  # frame index -> normalised model input on the device
    sums = torch.zeros(0)
    norms: dict[int, float] = {}
    first_pending = 0  # sums holds frames first_pending.. (rows in order)
    read = emitted = 0
    try:
        for first in [0, *range(1, len(schedule), batch_size)]:
            if _cancelled(cancel):
                raise PredictionCancelled("prediction cancelled")
            batch = schedule[first:first + (1 if first == 0 else batch_size)]
            needed = max(max(indices) for indices in batch)
            if read <= needed:
                new = np.stack([reader.get(cancel) for _ in range(read, needed + 1)])  # (k, h, w, 3) uint8
                pixels = torch.from_numpy(new).to(device, non_blocking=True).permute(0, 3, 1, 2).float()
                normalised = ((pixels - mean) / std).to(weight_dtype)
                for k in range(normalised.shape[0]):
                    inputs[read + k] = normalised[k]
                read = needed + 1
            clips = torch.stack([torch.stack([inputs[i] for i in indices]) for indices in batch])
            with torch.inference_mode(), autocast:
                logits = model(clips).mask_logits[:, :, 0]  # (B, T, h, w)
            probs = torch.sigmoid(logits.float())
            if not bool(torch.isfinite(probs).all()):
                raise PredictionError(
                    f"the model produced NaN or infinite probabilities for frames {batch[0][0]}..{batch[-1][-1]}: "
                    f"its weights overflow (a diverged or damaged checkpoint?); use another checkpoint")
            if sums.shape[0] < read - first_pending:  # grow the running sums to cover every frame read
                grow = torch.zeros(read - first_pending - sums.shape[0], *size, device=device)
                sums = torch.cat([sums.to(device), grow]) if sums.numel() else grow
            rows, row_weights = [], []  # one weighted add per (clip, position), all in one index_add_
            for indices, weights in plan[first:first + len(batch)]:
                for i, weight in zip(indices, weights):
                    rows.append(i - first_pending)
                    row_weights.append(weight)
                    norms[i] = norms.get(i, 0.0) + weight
            scale = torch.tensor(row_weights, device=device).view(-1, 1, 1)
            sums.index_add_(0, torch.tensor(rows, device=device), probs.reshape(-1, *size) * scale)
            done_clip = first + len(batch) - 1
            for i in [i for i in inputs if last_clip[i] <= done_clip]:
                del inputs[i]
            ready = emitted
            while ready < total and last_clip[ready] <= done_clip:
                ready += 1
            if ready > emitted:
                count = ready - emitted
                scale = torch.tensor([1.0 / norms.pop(i) for i in range(emitted, ready)], device=device)
                blended = sums[:count] * scale.view(-1, 1, 1)
                sums = sums[count:]
                first_pending = ready
                # native-size maps, a bounded number at a time (an 8K map alone is 133 MB): one copy per chunk
                chunk = max(1, NATIVE_CHUNK_BYTES // (4 * reader.native[0] * reader.native[1]))
                for start in range(0, count, chunk):
                    part = blended[start:start + chunk]
                    if tuple(part.shape[-2:]) != reader.native:
                        part = F.interpolate(part[:, None], size=reader.native, mode="bilinear",
                                             align_corners=False)[:, 0]
                    host = part.clamp_(0, 1).cpu().numpy()
                    del part
                    for k in range(host.shape[0]):
                        yield emitted, host[k]
                        emitted += 1
                    del host
            if progress is not None:
                progress(emitted, total)
        reader.finish()
    finally:
        reader.close()


def predict_video(model: torch.nn.Module, frames: Sequence[np.ndarray] | Iterable[np.ndarray],
                  **options: Any) -> np.ndarray:
    """All probabilities of a video at once: (N, H, W) float32. Same options as `iter_predict`.

    Holds the whole result in memory (N * H * W * 4 bytes): use `iter_predict` for long videos.
    """
    results = [prob for _, prob in iter_predict(model, frames, **options)]
    if not results:
        return np.zeros((0, 0, 0), dtype=np.float32)
    return np.stack(results)
