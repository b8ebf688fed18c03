"""The editing operations of `VideoDocument`: each call is one undoable step (propagation: one step for all the
frames it writes), saved before it returns. Operations return True when they changed something.

Edits act on one lesion: `lesion=None` means the document's `active_lesion`. The brush paints that lesion over
background and over its own pixels, the eraser removes that lesion only; `other_lesions=True` lets them take or
erase other lesions' pixels too. Human edits make the frame "edited" with origin "human" and the lesions whose
pixels changed "edited"; `accept` makes the frame and all its lesions "accepted".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import numpy as np

from . import flow, lesions, mask_ops
from .exceptions import EditError
from .history import StepGroup
from .status import HUMAN, Click, FrameRecord, FrameStatus, LesionRecord, flow_origin, prompt_origin

Points = Sequence[Sequence[float]] | np.ndarray


class Stroke:
    """A brush or eraser stroke in progress on one frame: painted live, committed as one undo step.

        with doc.stroke(frame, radius=6) as s:      # or s = doc.stroke(...); ...; s.finish()
            s.add_points([(x, y)])                  # on every mouse move; returns the dirty rectangle
    """

    def __init__(self, document, frame: int, radius: float, erase: bool, lesion: int, other_lesions: bool = False):
        self.document, self.frame, self.radius, self.erase = document, frame, float(radius), erase
        self.lesion, self.other_lesions = lesion, other_lesions
        self.label = "eraser stroke" if erase else "brush stroke"
        self.points: list[tuple[float, float]] = []
        self._before = document.masks.labels(frame)  # read-only
        self._cover = np.zeros(self._before.shape, np.uint8)  # where the brush went, painted in place
        self._labels = self._before.copy()
        self._union = self._labels > 0
        self._done = False

    @property
    def mask(self) -> np.ndarray:
        """The live mask, bool (H, W): a read-only view of the stroke's union of lesions."""
        view = self._union.view()
        view.setflags(write=False)
        return view

    @property
    def labels(self) -> np.ndarray:
        """The live label map uint8 (H, W), read-only view."""
        view = self._labels.view()
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
        box = mask_ops.paint_polyline(self._cover, pts, self.radius, 1,
                                      previous=self.points[-1] if self.points else None)
        self.points.extend(pts)
        if box is not None:
            self._apply(np.s_[box[1]:box[3], box[0]:box[2]])
        self.document.events.mask_changed.emit(self.frame)
        return box

    def _apply(self, window) -> None:
        """Re-derive the live labels inside `window` from the labels before the stroke and the brush's path."""
        before, cover = self._before[window], self._cover[window].view(bool)
        if self.erase:
            target = cover & ((before > 0) if self.other_lesions else (before == self.lesion))
            new = np.where(target, np.uint8(0), before)
        else:
            target = cover if self.other_lesions else cover & ((before == 0) | (before == self.lesion))
            new = np.where(target, np.uint8(self.lesion), before)
        self._labels[window] = new
        self._union[window] = new > 0

    def finish(self) -> bool:
        """Commit the stroke as one undo step and save it. Returns True if the mask changed."""
        if self._done:
            return False
        self._done = True
        self.document._active_stroke = None
        return self.document._human_edit(self.frame, self._labels, self.label)

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


def changed_lesions(before: np.ndarray, after: np.ndarray) -> set[int]:
    """The ids whose pixels differ between two label maps."""
    diff = before != after
    if not diff.any():
        return set()
    counts = np.bincount(before[diff], minlength=256) + np.bincount(after[diff], minlength=256)
    return {int(k) for k in np.flatnonzero(counts[1:]) + 1}


def lesion_records(labels: np.ndarray, record: FrameRecord, changed: Iterable[int], status: FrameStatus,
                   origin: str | None) -> tuple[LesionRecord, ...]:
    """The frame's lesion records after `labels` changed the lesions `changed`: those get `status` and `origin`
    and their geometry measured again; the others keep their records."""
    changed = set(changed)
    kept = {lesion.id: lesion for lesion in record.lesions if lesion.id not in changed}
    for lesion in changed:
        area, box, centroid = lesions.lesion_geometry(labels, lesion)
        if area:
            kept[lesion] = LesionRecord(lesion, status, origin, area, box, centroid)
    return tuple(kept[k] for k in sorted(kept))


class EditingMixin:
    """Editing operations; mixed into `VideoDocument` (uses its `_commit`, `masks`, `record`...)."""

    # helpers -------------------------------------------------------------------------------------------
    def _lesion(self, lesion: int | None) -> int:
        """The lesion an edit acts on: `lesion`, or the active one."""
        try:
            return lesions.check_lesion_id(self.active_lesion if lesion is None else lesion)
        except ValueError as exc:
            raise EditError(str(exc)) from None

    def _human_edit(self, index: int, labels: np.ndarray, label: str, status: FrameStatus = FrameStatus.EDITED,
                    origin: str = HUMAN, clicks: tuple | None = None, whole_frame: bool = False,
                    durable: bool = True, group: StepGroup | None = None) -> bool:
        """Write a new label map uint8 (H, W) (or bool: lesion 1) as a human edit (one undo step): the lesions
        whose pixels changed (with `whole_frame`, every lesion of the map) get `status` and `origin`; accepting
        accepts every lesion. `clicks`: the frame's new clicks."""
        self.check_writable()
        labels = np.asarray(labels)
        labels = labels.view(np.uint8) if labels.dtype == bool else labels.astype(np.uint8, copy=False)
        record = self.record(index)
        changed = changed_lesions(self.masks.labels(index), labels)
        restated = changed | set(lesions.present_ids(labels)) if whole_frame else changed
        lesion_list = lesion_records(labels, record, restated, status, origin)
        if status == FrameStatus.ACCEPTED:
            lesion_list = tuple(replace(x, status=FrameStatus.ACCEPTED) for x in lesion_list)
        if not changed and (clicks is None or clicks == record.lesion_clicks) and (
                not whole_frame or (record.status == status and record.lesions == lesion_list)):
            return False  # nothing changed: no undo step, no status change
        changes = {} if clicks is None else {"lesion_clicks": clicks}
        record = record.with_changes(status=status, mask_origin=origin, threshold=None, lesions=lesion_list,
                                     area=sum(lesion.area for lesion in lesion_list), **changes)
        self._commit(index, labels, record, label, durable=durable, group=group)
        return True

    def _lesion_operation(self, index: int, lesion: int | None, operation: Callable[[np.ndarray], np.ndarray],
                          label: str) -> bool:
        """Apply a bool-mask operation (mask_ops) to one lesion; it never takes other lesions' pixels."""
        index, lesion = self.source.check_index(index), self._lesion(lesion)
        labels = self.masks.labels(index)
        return self._human_edit(index, lesions.replace(labels, lesion, operation(labels == lesion)), label)

    # brush, eraser, polygon --------------------------------------------------------------------------
    def stroke(self, index: int, radius: float, erase: bool = False, lesion: int | None = None,
               other_lesions: bool = False) -> Stroke:
        """Start a brush (erase=False) or eraser stroke of `lesion` (default: the active one) on frame `index`
        (finishes any stroke in progress). `other_lesions`: the brush may paint over other lesions, the eraser
        erases every lesion."""
        self.check_writable()
        index, lesion = self.source.check_index(index), self._lesion(lesion)
        if self._active_stroke is not None:
            self._active_stroke.finish()
        self._active_stroke = Stroke(self, index, radius, erase, lesion, other_lesions)
        return self._active_stroke

    def paint_stroke(self, index: int, points: Points, radius: float, erase: bool = False,
                     lesion: int | None = None, other_lesions: bool = False) -> bool:
        """A whole stroke at once (scripts, tests). Returns True if the mask changed."""
        with self.stroke(index, radius, erase, lesion, other_lesions) as s:
            s.add_points(points)
            return s.finish()

    def add_polygon(self, index: int, points: Points, subtract: bool = False, lesion: int | None = None,
                    other_lesions: bool = False) -> bool:
        """Add (subtract=False) to the lesion, or subtract from it, the filled polygon / lasso through `points`
        ((x, y), >= 3)."""
        index, lesion = self.source.check_index(index), self._lesion(lesion)
        label = "lasso subtract" if subtract else "lasso add"
        labels = self.masks.labels(index)
        try:
            region = mask_ops.polygon(np.zeros(labels.shape, bool), points)
        except ValueError as exc:
            raise EditError(str(exc)) from None
        edit = lesions.erase if subtract else lesions.paint
        return self._human_edit(index, edit(labels, region, lesion, other_lesions), label)

    # whole-lesion operations -------------------------------------------------------------------------
    def fill_holes(self, index: int, lesion: int | None = None) -> bool:
        return self._lesion_operation(index, lesion, mask_ops.fill_holes, "fill holes")

    def remove_small_islands(self, index: int, min_pixels: int, lesion: int | None = None) -> bool:
        return self._lesion_operation(index, lesion, lambda m: mask_ops.remove_small_islands(m, min_pixels),
                                      f"remove islands < {min_pixels} px")

    def keep_largest_component(self, index: int, lesion: int | None = None) -> bool:
        return self._lesion_operation(index, lesion, mask_ops.keep_largest_component, "keep largest component")

    def smooth(self, index: int, radius: int = 3, lesion: int | None = None) -> bool:
        return self._lesion_operation(index, lesion, lambda m: mask_ops.smooth(m, radius),
                                      f"smooth (radius {radius})")

    def clear(self, index: int, lesion: int | None = None) -> bool:
        """Empty the frame (lesion=None): an explicit "no lesion in this frame" (status edited), unlike a
        missing mask. With `lesion`: remove only that lesion (and its clicks)."""
        index = self.source.check_index(index)
        record = self.record(index)
        if lesion is not None:
            lesion = self._lesion(lesion)
            labels = self.masks.labels(index)
            clicks = tuple(c for c in record.lesion_clicks if c[3] != lesion)
            return self._human_edit(index, lesions.erase(labels, labels == lesion, lesion), f"clear lesion {lesion}",
                                    clicks=clicks)
        if not self.masks.has_mask(index) and record.status.human_reviewed:
            return False
        self.check_writable()
        record = record.with_changes(status=FrameStatus.EDITED, mask_origin=HUMAN, threshold=None, area=0, lesion_clicks=(),
                                     lesions=())
        self._commit(index, None, record, "clear frame")
        return True

    def set_mask(self, index: int, mask: np.ndarray, label: str = "set mask", lesion: int | None = None) -> bool:
        """Replace the frame's whole mask by a bool (H, W) mask computed elsewhere (a human edit): it becomes
        lesion `lesion` (default: the active one), and no other lesion stays on the frame."""
        index, lesion = self.source.check_index(index), self._lesion(lesion)
        if np.shape(mask) != self.frame_size:
            raise EditError(f"mask of shape {np.shape(mask)} for frames of size {self.frame_size}")
        return self._human_edit(index, lesions.from_mask(mask, lesion), label)

    def set_lesion_mask(self, index: int, mask: np.ndarray, label: str = "set lesion mask",
                        lesion: int | None = None) -> bool:
        """Replace one lesion (default: the active one) by a bool (H, W) mask (a human edit); other lesions'
        pixels stay theirs."""
        index, lesion = self.source.check_index(index), self._lesion(lesion)
        if np.shape(mask) != self.frame_size:
            raise EditError(f"mask of shape {np.shape(mask)} for frames of size {self.frame_size}")
        return self._human_edit(index, lesions.replace(self.masks.labels(index), lesion,
                                                       np.asarray(mask, dtype=bool)), label)

    def set_labels(self, index: int, labels: np.ndarray, label: str = "set lesions", *,
                   status: FrameStatus | str = FrameStatus.EDITED, origin: str = HUMAN, durable: bool = True,
                   group: StepGroup | None = None) -> bool:
        """Replace the frame's whole label map by uint8 (H, W) `labels` (0 background, 1..255 lesion ids), one
        undo step (of `group`, a `history.StepGroup`, when part of an operation over several frames); the frame
        and each of its lesions get `status` (edited or accepted) and `origin`. `durable=False`: bulk writes,
        made durable by `sync()`."""
        index, status = self.source.check_index(index), FrameStatus(status)
        labels = np.asarray(labels)
        if labels.shape != self.frame_size or labels.dtype != np.uint8:
            raise EditError(f"label map of {labels.dtype} {labels.shape} for frames of size {self.frame_size} "
                            f"(expected uint8)")
        return self._human_edit(index, labels, label, status=status, origin=origin, whole_frame=True,
                                durable=durable, group=group)

    # prompts -----------------------------------------------------------------------------------------------
    def apply_prompt(self, index: int, mask: np.ndarray, clicks: tuple[Click, ...], model: str,
                     label: str = "click", lesion: int | None = None) -> bool:
        """The mask a model made from the expert's prompts on frame `index` becomes the lesion (default: the
        active one; one undo step): status edited, origin "prompt:<model>", the lesion's clicks replaced by
        `clicks` ((x, y, positive)). Returns True if the mask or the clicks changed."""
        index, lesion = self.source.check_index(index), self._lesion(lesion)
        if np.shape(mask) != self.frame_size:
            raise EditError(f"mask of shape {np.shape(mask)} for frames of size {self.frame_size}")
        others = tuple(c for c in self.record(index).lesion_clicks if c[3] != lesion)
        stored = others + tuple((int(x), int(y), bool(positive), lesion) for x, y, positive in clicks)
        labels = lesions.replace(self.masks.labels(index), lesion, np.asarray(mask, dtype=bool))
        return self._human_edit(index, labels, label, origin=prompt_origin(model), clicks=stored)

    # masks from other frames ---------------------------------------------------------------------------
    def copy_mask_from(self, index: int, source_index: int, lesion: int | None = None) -> bool:
        """Copy frame `source_index`'s label map (every lesion with its id), or with `lesion` only that lesion
        (the frame's other lesions stay)."""
        index, source_index = self.source.check_index(index), self.source.check_index(source_index)
        source = self.masks.labels(source_index)
        if lesion is None:
            return self._human_edit(index, source.copy(), f"copy mask of frame {source_index}")
        lesion = self._lesion(lesion)
        return self._human_edit(index, lesions.replace(self.masks.labels(index), lesion, source == lesion),
                                f"copy lesion {lesion} of frame {source_index}")

    def copy_from_previous(self, index: int, lesion: int | None = None) -> bool:
        if index <= 0:
            raise EditError("the first frame has no previous frame")
        return self.copy_mask_from(index, index - 1, lesion)

    def copy_from_next(self, index: int, lesion: int | None = None) -> bool:
        if index >= self.num_frames - 1:
            raise EditError("the last frame has no next frame")
        return self.copy_mask_from(index, index + 1, lesion)

    def propagate(self, index: int, count: int | None = None, method: str = "dis", stop_at_reviewed: bool = True,
                  progress: Callable[[int, int], None] | None = None,
                  cancel: Callable[[], bool] | None = None, lesion: int | None = None) -> list[int]:
        """Carry frame `index`'s lesions (each keeps its id; with `lesion`, that lesion only, the targets' other
        lesions staying) to the next `count` frames (default: to the end) by optical flow, each from the one
        before. Stops before a frame a human edited or accepted (unless `stop_at_reviewed` is False). Written
        frames become "proposed" with origin "flow:<index>" and no model confidence (the flow has none);
        together they are ONE undo step, "propagate from frame <index + 1> (<K> frames)", undone or redone from
        any of them. Each frame is saved and shown as it is written. Returns them."""
        self.check_writable()
        index = self.source.check_index(index)
        lesion = None if lesion is None else self._lesion(lesion)
        last = self.num_frames - 1 if count is None else min(index + int(count), self.num_frames - 1)
        total, written = last - index, []
        carried, previous = self.masks.labels(index), self.frame(index)
        if lesion is not None:
            carried = lesions.from_mask(carried == lesion, lesion)
        origin, group = flow_origin(index), StepGroup(f"propagate from frame {index + 1}")
        for target in range(index + 1, last + 1):
            if (cancel is not None and cancel()) or (stop_at_reviewed and self.status(target).human_reviewed):
                break
            current = self.frame(target)
            carried = flow.propagate_labels(previous, current, carried, method)
            with self._lock:  # re-checked at write time: a human edit made meanwhile (GUI thread) wins
                if stop_at_reviewed and self.status(target).human_reviewed:
                    break
                old, record = self.masks.labels(target), self.record(target)
                if lesion is None:
                    labels, every = carried, set(record.lesion_ids) | set(lesions.present_ids(carried))
                    record = record.with_changes(lesions=())
                else:
                    labels, every = lesions.replace(old, lesion, carried == lesion), {lesion}
                lesion_list = lesion_records(labels, record, every, FrameStatus.PROPOSED, origin)
                record = record.with_changes(status=FrameStatus.PROPOSED, threshold=None, mask_origin=origin,
                                             confidence=None, lesions=lesion_list,
                                             area=sum(x.area for x in lesion_list))
                before = self._apply_state(target, labels, record, group.label, group=group)
            self._finish(target, before, False, True)
            written.append(target)
            previous = current
            if progress is not None:
                progress(target - index, total)
        return written

    # review status -----------------------------------------------------------------------------------
    def set_status(self, index: int, status: FrameStatus | str, label: str | None = None) -> bool:
        """Change the review status (one undo step); the mask is unchanged. Accepting accepts every lesion of
        the frame; giving the frame back (proposed, unreviewed) gives its lesions back too."""
        self.check_writable()
        index, status = self.source.check_index(index), FrameStatus(status)
        record = self.record(index)
        if status == FrameStatus.EDITED:
            lesion_list = record.lesions
        else:
            lesion_list = tuple(replace(x, status=status) for x in record.lesions)
        if record.status == status and lesion_list == record.lesions:
            return False
        origin = record.mask_origin or (HUMAN if status.human_reviewed else None)
        self._commit(index, self.masks.mask_bytes(index), record.with_changes(status=status, mask_origin=origin,
                                                                              lesions=lesion_list),
                     label or f"mark {status.value}")
        return True

    def accept(self, index: int, lesion: int | None = None) -> bool:
        """The human confirms the frame's mask (also an empty one: "no lesion here"), every lesion on it; with
        `lesion`, only that lesion (the frame becomes "edited", or "accepted" once all its lesions are)."""
        if lesion is None:
            return self.set_status(index, FrameStatus.ACCEPTED, "accept")
        return self.accept_lesion(index, lesion)

    def accept_lesion(self, index: int, lesion: int) -> bool:
        self.check_writable()
        index, lesion = self.source.check_index(index), self._lesion(lesion)
        record = self.record(index)
        found = record.lesion(lesion)
        if found is None:
            raise EditError(f"frame {index + 1} has no lesion {lesion} to accept")
        if found.status == FrameStatus.ACCEPTED:
            return False
        lesion_list = tuple(replace(x, status=FrameStatus.ACCEPTED) if x.id == lesion else x
                            for x in record.lesions)
        every = all(x.status == FrameStatus.ACCEPTED for x in lesion_list)
        status = FrameStatus.ACCEPTED if every else FrameStatus.EDITED
        origin = record.mask_origin or HUMAN
        self._commit(index, self.masks.mask_bytes(index), record.with_changes(status=status, mask_origin=origin,
                                                                              lesions=lesion_list),
                     f"accept lesion {lesion}")
        return True

    def accept_frames(self, frames: Iterable[int] | None = None,
                      only: tuple[FrameStatus, ...] = (FrameStatus.PROPOSED, FrameStatus.EDITED)) -> list[int]:
        """Accept several frames (default: every proposed or edited one); one undo step per frame."""
        return [i for i in self.frames_in(frames) if self.status(i) in only and self.accept(i)]
