"""The proposal job: run Vivim over a document's video and write each frame's proposal as it arrives.

Proposals use `vivim_core.engine.predict.iter_predict` with the same defaults as `vivim-core predict`
(clips of 5 frames overlapping by 2, 256x256), and the mask of a frame is `probability >= threshold` (0.5 by
default), so the masks equal what `vivim-core predict` writes. Frames a human edited or accepted keep their
mask (their probability map is still stored, for the heat map and confidence). Each mask is split into lesions
whose ids follow them through the clip (`document.lesion_tracking`): the split runs in the worker pool with the
encoding, the matching (about a millisecond) when the frame is written, in frame order.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..document.sources import SourceFrames
from .default_checkpoint import find_default_checkpoint
from .jobs import Cancel, Progress, is_cancelled

SYNC_EVERY = 100  # frames between flushes of the proposals to disk
PREPARE_WORKERS = 4  # threads quantising and PNG-encoding probability maps (at most cores - 1)


@dataclass
class ProposalResult:
    """What a proposal run did. `proposed`: frames whose mask was written; `kept`: human-reviewed frames
    whose mask was kept; `cancelled`: stopped early (frames done before that are saved)."""

    total: int
    proposed: int = 0
    kept: int = 0
    cancelled: bool = False
    checkpoint_sha256: str = ""
    device: str = ""
    seconds: float = 0.0

    @property
    def done(self) -> int:
        return self.proposed + self.kept


class InferenceService:
    """Loads a checkpoint once (lazily, thread-safe) and proposes masks for documents.

    checkpoint: a Vivim .safetensors, or None for the bundled default (`find_default_checkpoint(task)`).
    device: auto | cpu | cuda[:N]. clip_length, overlap, size (H, W), batch_size: as `iter_predict`; clip_length
    and size default to what the checkpoint was trained with (as `vivim-core predict` does), overlap to half a clip.
    """

    def __init__(self, checkpoint: Path | str | None = None, device: str = "auto", *, task: str | None = None,
                 clip_length: int | None = None, overlap: int | None = None, size: tuple[int, int] | None = None,
                 batch_size: int = 4):
        self.checkpoint_path = Path(checkpoint) if checkpoint is not None else find_default_checkpoint(task)
        self.uses_default_checkpoint = checkpoint is None
        self.requested_device = device
        self._requested = dict(size=size, clip_length=clip_length, overlap=overlap)
        self._batch_size = batch_size
        self._options: dict[str, Any] | None = None
        self._model = None
        self._device: str | None = None
        self._sha256: str | None = None
        self._lock = threading.Lock()
        self._adapted: dict[tuple[str, str | None], InferenceService] = {}
        self.adapted_for: str | None = None  # the video whose workspace holds this checkpoint, if adapted

    @property
    def checkpoint_sha256(self) -> str:
        if self._sha256 is None:
            from vivim_core.engine.checkpoint import checkpoint_sha256

            self._sha256 = checkpoint_sha256(self.checkpoint_path)
        return self._sha256

    @property
    def options(self) -> dict[str, Any]:
        """`iter_predict` settings: those given, else the checkpoint's (`settings_for_checkpoint`). Reads the
        file's header once."""
        if self._options is None:
            from vivim_core.engine.checkpoint import read_checkpoint_info
            from vivim_core.engine.predict import settings_for_checkpoint

            provenance = read_checkpoint_info(self.checkpoint_path)["provenance"]
            self._options = dict(settings_for_checkpoint(provenance, **self._requested), batch_size=self._batch_size)
        return self._options

    @property
    def device(self) -> str:
        """The resolved device, e.g. "cpu" or "cuda:0" (imports torch; DeviceError when CUDA was asked for and
        none is usable)."""
        if self._device is None:
            from vivim_core.engine.distributed import resolve_device

            self._device = str(resolve_device(self.requested_device))
        return self._device

    def for_document(self, document) -> "InferenceService":
        """The service that proposes for `document`: this one when its checkpoint was chosen explicitly, else
        the model adapted to this video in its workspace (a service for it, made once per file), else this one
        (the bundled default)."""
        adapted = None if not self.uses_default_checkpoint else document.workspace_model_path()
        if adapted is None:
            return self
        key = (str(adapted), (document.model or {}).get("sha256"))
        with self._lock:
            service = self._adapted.get(key)
            if service is None:
                service = InferenceService(adapted, self.requested_device, batch_size=self._batch_size,
                                           **self._requested)
                service.uses_default_checkpoint = False
                service.adapted_for = document.source.name
                self._adapted = {key: service}  # the newest only: older adapted models are not needed again
            return service

    def load(self) -> Any:
        """The model on its device (loaded once; CheckpointError for a bad file, naming it)."""
        with self._lock:
            if self._model is None:
                from vivim_core.engine.checkpoint import load_model

                self._model = load_model(self.checkpoint_path, device=self.device)
            return self._model

    def propose(self, document, *, progress: Progress | None = None, cancel: Cancel | None = None,
                threshold: float | None = None, overwrite_reviewed: bool = False) -> ProposalResult:
        """Propose masks for every frame of `document`, writing each into it in frame order as soon as it is
        predicted and its map encoded (a few frames behind the model).

        progress(done, total) after each frame written; cancel stops between frames (result.cancelled).
        threshold: default the document's proposal threshold (0.5 unless the user changed it).
        """
        from vivim_core.engine.predict import PredictionCancelled, iter_predict

        started = time.perf_counter()
        document.check_writable()  # a read-only workspace: say so before minutes of inference, not after
        model = self.load()
        options = self.options
        sha = self.checkpoint_sha256
        result = ProposalResult(total=document.num_frames, checkpoint_sha256=sha, device=self.device)
        document.set_checkpoint(sha, self.checkpoint_path.name)
        # Each map's quantising, PNG encoding and split into lesions (~30 ms at 1080p) runs on a small pool while
        # the model predicts the next frames; the maps are written into the document in frame order, on this
        # thread, where each frame's lesions are matched to the frame before (their ids).
        workers = max(1, min(PREPARE_WORKERS, (os.cpu_count() or 2) - 1))
        pending: deque = deque()  # (index, future of document.prepare_proposal), oldest first

        def write_oldest() -> None:
            index, prepared = pending.popleft()
            written = document.set_proposal(index, prepared.result(), model=sha, threshold=threshold,
                                            overwrite_reviewed=overwrite_reviewed, durable=False)
            result.proposed += int(written)
            result.kept += int(not written)
            if result.done % SYNC_EVERY == 0:
                document.sync()  # bulk writes skip fsync; flush them in batches
            if progress is not None:
                progress(result.done, result.total)
            if is_cancelled(cancel):
                result.cancelled = True

        pool = ThreadPoolExecutor(workers, thread_name_prefix="vivim-prepare")
        try:
            for index, probability in iter_predict(model, SourceFrames(document.source), device=self.device,
                                                   cancel=lambda: is_cancelled(cancel), **options):
                pending.append((index, pool.submit(document.prepare_proposal, probability, threshold)))
                while len(pending) > workers and not result.cancelled:
                    write_oldest()
                if result.cancelled:
                    break
            while pending and not result.cancelled:
                write_oldest()
        except PredictionCancelled:
            result.cancelled = True
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # after a cancel, predicted frames not written are dropped
            document.sync()  # flush the last batch
        result.seconds = time.perf_counter() - started
        return result
