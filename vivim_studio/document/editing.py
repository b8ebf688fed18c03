"""The editing operations of `VideoDocument`: each call is one undoable step (propagation: one step for all the
frames it writes), saved before it returns. Operations return True when they changed something.

Human edits make the frame "edited" with origin "human"; `accept` makes it "accepted".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from . import codec, flow, mask_ops
from .exceptions import EditError
from .history import StepGroup
from .status import HUMAN, Click, FrameStatus, flow_origin, model_origin, prompt_origin

Points = Sequence[Sequence[float]] | np.ndarray


@dataclass(frozen=True)
class PreparedProposal:
    """A model's probability map made ready to store (`EditingMixin.prepare_proposal`)."""

    probability: np.ndarray  # float32 (H, W)
    quantized: np.ndarray  # uint8 (H, W), codec.quantize_probability
    encoded: bytes  # its 8-bit PNG
    confidence: float  # codec.proposal_confidence


class Stroke:
    """A brush or eraser stroke in progress on one frame: painted live, committed as one undo step.

        with doc.stroke(frame, radius=6) as s:      # or s = doc.stroke(...); ...; s.finish()
            s.add_points([(x, y)])                  # on every mouse move; returns the dirty rectangle
    """

    def __init__(self, document, frame: int, radius: float, erase: bool):
        self.document, self.frame, self.radius, self.erase = document, frame, float(radius), erase
        self.label = "eraser stroke" if erase else "brush stroke"
        self.points: list[tuple[float, float]] = []
        self._buffer = document.masks.mask(frame).astype(np.uint8)  # 0/1, painted in place
        self._done = False

    @property
    def mask(self) -> np.ndarray:
        """The live mask, bool (H, W) read-only view of the stroke's buffer."""
        view = self._buffer.view(bool)
        view.setflags(write=False)
        return view

    def add_points(self, points: Points) -> tuple[int, int, int, int] | None:
        """Paint the brush along `points` ((x, y) pairs, continuing the stroke); returns the touched
        rectangle (x0, y0, x1, y1), end-exclusive, or None. Emits mask_changed(frame)."""
        if self._done:
            raise EditError("this stroke is finished; start a new one")
        pts = [(float(x), float(y)) for x, y in np.asarray(points, dtype=np.float64).reshape(-1, 2)]
        if not pts:
            return None
        box = mask_ops.paint_polyline(self._buffer, pts, self.radius, 0 if self.erase else 1,
                                      previous=self.points[-1] if self.points else None)
        self.points.extend(pts)
        self.document.events.mask_changed.emit(self.frame)
        return box

    def finish(self) -> bool:
        """Commit the stroke as one undo step and save it. Returns True if the mask changed."""
        if self._done:
            return False
        self._done = True
        self.document._active_stroke = None
        return self.document._human_edit(self.frame, self._buffer.astype(bool), self.label)

    def cancel(self) -> None:
        """Drop the stroke: the frame's mask returns to what it was."""
        if not self._done:
            self._done = True
            self.document._active_stroke = None
            self.document.events.mask_changed.emit(self.frame)

    def __enter__(self) -> "Stroke":
        return self

    def __exit__(self, exc_type, *exc: object) -> None:
        self.cancel() if exc_type is not None else self.finish()


class EditingMixin:
    """Editing operations; mixed into `VideoDocument` (uses its `_commit`, `masks`, `record`...)."""

    # helpers -------------------------------------------------------------------------------------------
    def _human_edit(self, index: int, mask: np.ndarray, label: str, status: FrameStatus = FrameStatus.EDITED,
                    origin: str = HUMAN, clicks: tuple[Click, ...] | None = None) -> bool:
        self.check_writable()
        mask = np.asarray(mask, dtype=bool)
        record = self.record(index)
        if np.array_equal(mask, self.masks.mask(index)) and (clicks is None or clicks == record.clicks):
            return False  # nothing changed: no undo step, no status change
        changes = {} if clicks is None else {"clicks": clicks}
        record = record.with_changes(status=status, mask_origin=origin, threshold=None,
                                     area=int(np.count_nonzero(mask)), **changes)
        self._commit(index, mask, record, label)
        return True

    def _apply_operation(self, index: int, operation: Callable[[np.ndarray], np.ndarray], label: str) -> bool:
        index = self.source.check_index(index)
        return self._human_edit(index, operation(self.masks.mask(index)), label)

    # brush, eraser, polygon --------------------------------------------------------------------------
    def stroke(self, index: int, radius: float, erase: bool = False) -> Stroke:
        """Start a brush (erase=False) or eraser stroke on frame `index` (finishes any stroke in progress)."""
        self.check_writable()
        index = self.source.check_index(index)
        if self._active_stroke is not None:
            self._active_stroke.finish()
        self._active_stroke = Stroke(self, index, radius, erase)
        return self._active_stroke

    def paint_stroke(self, index: int, points: Points, radius: float, erase: bool = False) -> bool:
        """A whole stroke at once (scripts, tests). Returns True if the mask changed."""
        with self.stroke(index, radius, erase) as s:
            s.add_points(points)
            return s.finish()

    def add_polygon(self, index: int, points: Points, subtract: bool = False) -> bool:
        """Add (subtract=False) or subtract the filled polygon / lasso through `points` ((x, y), >= 3)."""
        label = "lasso subtract" if subtract else "lasso add"
        try:
            return self._apply_operation(index, lambda m: mask_ops.polygon(m, points, subtract), label)
        except ValueError as exc:
            raise EditError(str(exc)) from None

    # whole-mask operations ---------------------------------------------------------------------------
    def fill_holes(self, index: int) -> bool:
        return self._apply_operation(index, mask_ops.fill_holes, "fill holes")

    def remove_small_islands(self, index: int, min_pixels: int) -> bool:
        return self._apply_operation(index, lambda m: mask_ops.remove_small_islands(m, min_pixels),
                           f"remove islands < {min_pixels} px")

    def keep_largest_component(self, index: int) -> bool:
        return self._apply_operation(index, mask_ops.keep_largest_component, "keep largest component")

    def smooth(self, index: int, radius: int = 3) -> bool:
        return self._apply_operation(index, lambda m: mask_ops.smooth(m, radius), f"smooth (radius {radius})")

    def clear(self, index: int) -> bool:
        """Empty the mask: an explicit "no lesion in this frame" (status edited), unlike a missing mask."""
        index = self.source.check_index(index)
        if not self.masks.has_mask(index) and self.record(index).status.human_reviewed:
            return False
        self.check_writable()
        record = self.record(index).with_changes(status=FrameStatus.EDITED, mask_origin=HUMAN, threshold=None, area=0,
                                                 clicks=())
        self._commit(index, None, record, "clear frame")
        return True

    def set_mask(self, index: int, mask: np.ndarray, label: str = "set mask") -> bool:
        """Replace the mask by a bool (H, W) array computed elsewhere (a human edit)."""
        index = self.source.check_index(index)
        if np.shape(mask) != self.frame_size:
            raise EditError(f"mask of shape {np.shape(mask)} for frames of size {self.frame_size}")
        return self._human_edit(index, mask, label)

    # prompts -----------------------------------------------------------------------------------------------
    def apply_prompt(self, index: int, mask: np.ndarray, clicks: tuple[Click, ...], model: str,
                     label: str = "click") -> bool:
        """The mask a model made from the expert's prompts on frame `index` (one undo step): status edited,
        origin "prompt:<model>", the frame's clicks recorded. Returns True if the mask or the clicks changed."""
        index = self.source.check_index(index)
        if np.shape(mask) != self.frame_size:
            raise EditError(f"mask of shape {np.shape(mask)} for frames of size {self.frame_size}")
        clicks = tuple((int(x), int(y), bool(positive)) for x, y, positive in clicks)
        return self._human_edit(index, mask, label, origin=prompt_origin(model), clicks=clicks)

    # masks from other frames ---------------------------------------------------------------------------
    def copy_mask_from(self, index: int, source_index: int) -> bool:
        source_index = self.source.check_index(source_index)
        return self._apply_operation(index, lambda m: self.masks.mask(source_index).copy(),
                                     f"copy mask of frame {source_index}")

    def copy_from_previous(self, index: int) -> bool:
        if index <= 0:
            raise EditError("the first frame has no previous frame")
        return self.copy_mask_from(index, index - 1)

    def copy_from_next(self, index: int) -> bool:
        if index >= self.num_frames - 1:
            raise EditError("the last frame has no next frame")
        return self.copy_mask_from(index, index + 1)

    def propagate(self, index: int, count: int | None = None, method: str = "dis", stop_at_reviewed: bool = True,
                  progress: Callable[[int, int], None] | None = None,
                  cancel: Callable[[], bool] | None = None) -> list[int]:
        """Carry frame `index`'s mask to the next `count` frames (default: to the end) by optical flow, each
        from the one before. Stops before a frame a human edited or accepted (unless `stop_at_reviewed` is
        False). Written frames become "proposed" with origin "flow:<index>" and no model confidence (the flow
        has none); together they are ONE undo step, "propagate from frame <index + 1> (<K> frames)", undone or
        redone from any of them. Each frame is saved and shown as it is written. Returns them."""
        self.check_writable()
        index = self.source.check_index(index)
        last = self.num_frames - 1 if count is None else min(index + int(count), self.num_frames - 1)
        total, written = last - index, []
        group = StepGroup(f"propagate from frame {index + 1}")
        mask, previous = self.masks.mask(index), self.frame(index)
        for target in range(index + 1, last + 1):
            if (cancel is not None and cancel()) or (stop_at_reviewed and self.status(target).human_reviewed):
                break
            current = self.frame(target)
            mask = flow.propagate_mask(previous, current, mask, method)
            with self._lock:  # re-checked at write time: a human edit made meanwhile (GUI thread) wins
                if stop_at_reviewed and self.status(target).human_reviewed:
                    break
                record = self.record(target).with_changes(status=FrameStatus.PROPOSED, threshold=None,
                                                          mask_origin=flow_origin(index), confidence=None,
                                                          area=int(np.count_nonzero(mask)))
                before = self._apply_state(target, mask, record, None)
                self.history.record(target, group.label, before, group)
            self._finish(target, before, False, True)
            written.append(target)
            previous = current
            if progress is not None:
                progress(target - index, total)
        return written

    # proposals ---------------------------------------------------------------------------------------
    def rethreshold(self, index: int, threshold: float) -> bool:
        """Re-derive the frame's mask from its probability map at `threshold` (one undo step). The frame keeps
        "proposed" unless a human had reviewed it (then "edited": the human chose this mask)."""
        index = self.source.check_index(index)
        q = self.masks.probability(index)
        if q is None:
            raise EditError(f"frame {index} has no proposal to re-threshold; run 'Propose masks' first")
        record = self.record(index)
        mask = codec.threshold_quantized(q, threshold)
        status = FrameStatus.EDITED if record.status.human_reviewed else FrameStatus.PROPOSED
        origin = model_origin(record.model) if record.model else HUMAN
        if np.array_equal(mask, self.masks.mask(index)) and record.status == status:
            return False
        self.check_writable()
        new = record.with_changes(status=status, mask_origin=origin, threshold=float(threshold),
                                  area=int(np.count_nonzero(mask)))
        self._commit(index, mask, new, f"threshold {threshold:.2f}")
        return True

    def prepare_proposal(self, probability: np.ndarray) -> PreparedProposal:
        """The slow, pure part of `set_proposal` (quantise, PNG-encode, confidence: ~25 ms for a 1080p map),
        safe to run on any thread, several at a time, before the frame's turn to be written."""
        probability = np.asarray(probability, dtype=np.float32)
        if probability.shape != self.frame_size:
            raise EditError(f"probability map of shape {probability.shape} for frames of size {self.frame_size}")
        q = codec.quantize_probability(probability)
        return PreparedProposal(probability, q, codec.encode_probability(q), codec.proposal_confidence(q))

    def set_proposal(self, index: int, probability: np.ndarray | PreparedProposal, model: str,
                     threshold: float | None = None, overwrite_reviewed: bool = False, durable: bool = True) -> bool:
        """Store the model's probability float32 (H, W) for a frame (or that map from `prepare_proposal`) and,
        unless a human edited or accepted the frame (or is painting it now), its mask `probability >= threshold`
        (default: the document's threshold) with status "proposed". Not undoable. Returns True when the mask
        was written."""
        self.check_writable()
        index = self.source.check_index(index)
        threshold = self.proposal_threshold if threshold is None else float(threshold)
        prepared = (probability if isinstance(probability, PreparedProposal)
                    else self.prepare_proposal(probability))  # before the lock, so the GUI never waits on it
        with self._lock:  # decide and apply atomically: a human edit landing meanwhile is never overwritten
            record = self.record(index)
            painting = self._active_stroke is not None and self._active_stroke.frame == index
            keep_mask = (record.status.human_reviewed and not overwrite_reviewed) or painting
            changes = dict(model=model[:16], confidence=prepared.confidence)
            if keep_mask:
                before = self._apply_state(index, self.masks.mask_bytes(index), record.with_changes(**changes),
                                           None, prepared.quantized, prepared.encoded)
            else:
                mask = prepared.probability >= threshold
                before = self._apply_state(index, mask, record.with_changes(
                    status=FrameStatus.PROPOSED, mask_origin=model_origin(model), threshold=threshold,
                    area=int(np.count_nonzero(mask)), **changes), None, prepared.quantized, prepared.encoded)
        self._finish(index, before, True, False, durable)  # save and notify outside the lock
        return not keep_mask

    def set_proposal_threshold(self, threshold: float) -> list[int]:
        """Re-threshold every frame still "proposed" by the model (not undoable: move the slider back).
        Returns the frames whose mask changed."""
        if not 0.0 < threshold < 1.0:
            raise EditError(f"threshold must be between 0 and 1, got {threshold}")
        self.check_writable()
        changed = []
        self.proposal_threshold = float(threshold)
        for index in sorted(self._records):
            with self._lock:  # decide and apply atomically (this may run in a worker thread)
                record = self._records[index]
                if record.status != FrameStatus.PROPOSED or not (record.mask_origin or "").startswith("model:"):
                    continue
                q = self.masks.probability(index)
                mask = None if q is None else codec.threshold_quantized(q, threshold)
                if mask is None or np.array_equal(mask, self.masks.mask(index)):
                    continue
                before = self._apply_state(index, mask, record.with_changes(threshold=float(threshold),
                                                                            area=int(np.count_nonzero(mask))), None)
            self._finish(index, before, False, False, durable=False)
            changed.append(index)
        self._save_state()
        self.sync()
        return changed

    def set_checkpoint(self, sha256: str, name: str | None = None) -> None:
        """Remember the checkpoint of the latest proposals (saved with the workspace state)."""
        self.checkpoint = {"sha256": sha256, "name": name}
        self._save_state()

    # review status -----------------------------------------------------------------------------------
    def set_status(self, index: int, status: FrameStatus | str, label: str | None = None) -> bool:
        """Change the review status (one undo step); the mask is unchanged."""
        self.check_writable()
        index, status = self.source.check_index(index), FrameStatus(status)
        record = self.record(index)
        if record.status == status:
            return False
        origin = record.mask_origin or (HUMAN if status.human_reviewed else None)
        self._commit(index, self.masks.mask_bytes(index), record.with_changes(status=status, mask_origin=origin),
                     label or f"mark {status.value}")
        return True

    def accept(self, index: int) -> bool:
        """The human confirms the frame's mask (also an empty one: "no lesion here")."""
        return self.set_status(index, FrameStatus.ACCEPTED, "accept")

    def accept_frames(self, frames: Iterable[int] | None = None,
                      only: tuple[FrameStatus, ...] = (FrameStatus.PROPOSED, FrameStatus.EDITED)) -> list[int]:
        """Accept several frames (default: every proposed or edited one); one undo step per frame."""
        return [i for i in self.frames_in(frames) if self.status(i) in only and self.accept(i)]
