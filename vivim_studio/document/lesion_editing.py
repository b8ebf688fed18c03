"""Lesion identities in `VideoDocument`: merge, split and relabel lesions, on one frame or many, undoably.

    doc.merge_lesions(3, 2)                    # lesion 3 was the same nodule as lesion 2: everywhere
    doc.relabel_lesion(2, 1, frames=range(40, 80))   # on these frames, lesion 2 is lesion 1 (swap if both)
    new = doc.split_lesion(12, lesion=1, x=300, y=200)   # the piece of lesion 1 under (300, 200): a new lesion
    new_ids = doc.split_lesion_pieces(12, lesion=1)      # every piece but the largest: a new lesion each

These change which lesion the pixels belong to, not the pixels: the review status of the frames stays (a
proposed frame stays proposed, its masks still need a look), and each lesion keeps its own status and origin
(merged lesions take the less reviewed of the two). An operation over several frames is one undo step on each,
grouped: undoing it on any of its frames undoes it on all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

import cv2
import numpy as np

from . import lesions
from .exceptions import EditError
from .history import StepGroup
from .status import FrameRecord, FrameStatus, LesionRecord

REVIEW_ORDER = (FrameStatus.UNREVIEWED, FrameStatus.PROPOSED, FrameStatus.EDITED, FrameStatus.ACCEPTED)
Change = Callable[[np.ndarray, FrameRecord], tuple[np.ndarray, tuple[LesionRecord, ...], tuple] | None]


def _measured(labels: np.ndarray, lesion: int, like: LesionRecord) -> LesionRecord | None:
    """`like` (status, origin) with the id `lesion` and the geometry of that lesion in `labels`; None if absent."""
    area, box, centroid = lesions.lesion_geometry(labels, lesion)
    return LesionRecord(lesion, like.status, like.origin, area, box, centroid) if area else None


def _sorted(records: Iterable[LesionRecord | None]) -> tuple[LesionRecord, ...]:
    return tuple(sorted((r for r in records if r is not None), key=lambda r: r.id))


class LesionMixin:
    """Merge, split, relabel; mixed into `VideoDocument`."""

    def _frames_holding(self, frames: int | Iterable[int] | None, lesion: int) -> list[int]:
        """The frames an identity operation visits: `frames` (one index or several; None: every frame with
        `lesion`), keeping those whose record holds `lesion`."""
        if frames is None:
            return self.lesion_frames(lesion)
        chosen = [frames] if isinstance(frames, (int, np.integer)) else list(frames)
        return [i for i in (self.source.check_index(int(f)) for f in chosen) if lesion in self.record(i).lesion_ids]

    def _identity_edit(self, frames: list[int], label: str, change: Change) -> list[int]:
        """Apply `change(labels, record) -> (labels, lesion records, clicks) | None` to each frame, one undo step
        each (grouped when several). The frames' statuses stay. Returns the frames changed."""
        self.check_writable()
        group = StepGroup(label) if len(frames) > 1 else None
        durable = len(frames) <= 1
        changed = []
        self._wait_for_saves()
        for index in frames:
            with self._lock:
                record = self.record(index)
                result = change(self.masks.labels(index), record)
                if result is None:
                    continue
                labels, lesion_list, clicks = result
                new = record.with_changes(lesions=lesion_list, lesion_clicks=clicks,
                                          area=sum(x.area for x in lesion_list))
                before = self._apply_state(index, labels, new, label, group=group)
            self._finish(index, before, False, True, durable)
            changed.append(index)
        if not durable:
            self.sync()
        return changed

    def _pair(self, source: int, target: int) -> tuple[int, int]:
        try:
            source, target = lesions.check_lesion_id(source), lesions.check_lesion_id(target)
        except ValueError as exc:
            raise EditError(str(exc)) from None
        if source == target:
            raise EditError(f"lesion {source} is already lesion {target}")
        return source, target

    def merge_lesions(self, source: int, target: int, frames: int | Iterable[int] | None = None) -> list[int]:
        """Lesion `source` becomes part of lesion `target` on `frames` (one index, several, or None: every
        frame). The merged lesion takes the less reviewed status of the two. Returns the frames changed."""
        source, target = self._pair(source, target)

        def change(labels: np.ndarray, record: FrameRecord):
            gone, kept = record.lesion(source), record.lesion(target)
            like = gone if kept is None or REVIEW_ORDER.index(gone.status) < REVIEW_ORDER.index(kept.status) else kept
            merged = lesions.merge(labels, source, target)
            others = (x for x in record.lesions if x.id not in (source, target))
            clicks = tuple((x, y, p, target if k == source else k) for x, y, p, k in record.lesion_clicks)
            return merged, _sorted([*others, _measured(merged, target, like)]), clicks

        return self._identity_edit(self._frames_holding(frames, source), f"merge lesion {source} into {target}",
                                   change)

    def relabel_lesion(self, source: int, target: int, frames: int | Iterable[int] | None = None) -> list[int]:
        """Lesion `source` takes the id `target` on `frames` (one index, several, or None: every frame); on a
        frame that holds `target` too, the two exchange their ids. Returns the frames changed."""
        source, target = self._pair(source, target)
        swap = {source: target, target: source}

        def change(labels: np.ndarray, record: FrameRecord):
            moved = lesions.relabel(labels, source, target)
            records = _sorted(replace(x, id=swap.get(x.id, x.id)) for x in record.lesions)
            clicks = tuple((x, y, p, swap.get(k, k)) for x, y, p, k in record.lesion_clicks)
            return moved, records, clicks

        return self._identity_edit(self._frames_holding(frames, source), f"relabel lesion {source} as {target}",
                                   change)

    def split_lesion(self, index: int, lesion: int, x: float, y: float, new_lesion: int | None = None) -> int:
        """The connected piece of lesion `lesion` under (x, y) on frame `index` becomes lesion `new_lesion`
        (default: a new id) with the same status and origin. Returns the new lesion's id."""
        index = self.source.check_index(index)
        lesion = self._lesion(lesion)
        new_lesion = self.next_lesion_id() if new_lesion is None else self._lesion(new_lesion)
        record = self.record(index)
        if new_lesion in record.lesion_ids:
            raise EditError(f"frame {index + 1} already has lesion {new_lesion}; to join the piece to it, split to a "
                            f"new lesion and merge that into {new_lesion}")
        if record.lesion(lesion) is None:
            raise EditError(f"frame {index + 1} has no lesion {lesion}")
        try:
            piece = lesions.component_at(self.masks.labels(index), lesion, x, y)
        except ValueError as exc:
            raise EditError(f"frame {index + 1}: {exc}; click inside the piece to split off") from None

        def change(labels: np.ndarray, record: FrameRecord):
            old = record.lesion(lesion)
            split = labels.copy()
            split[piece] = new_lesion
            others = (x for x in record.lesions if x.id != lesion)
            return split, _sorted([*others, _measured(split, lesion, old), _measured(split, new_lesion, old)]), \
                record.lesion_clicks

        self._identity_edit([index], f"split lesion {lesion}", change)
        return new_lesion

    def split_lesion_pieces(self, index: int, lesion: int) -> list[int]:
        """Each 8-connected piece of lesion `lesion` on frame `index` but the largest becomes a new lesion (new
        ids, increasing with the piece's size order), keeping the status and origin; one undo step. Returns the
        new ids; EditError when the lesion is one piece (nothing to split)."""
        index = self.source.check_index(index)
        lesion = self._lesion(lesion)
        if self.record(index).lesion(lesion) is None:
            raise EditError(f"frame {index + 1} has no lesion {lesion}")
        count, pieces, stats, _ = cv2.connectedComponentsWithStats((self.masks.labels(index) == lesion)
                                                                   .view(np.uint8), connectivity=8)
        if count <= 2:
            raise EditError(f"lesion {lesion} is one connected piece on frame {index + 1}: nothing to split")
        by_size = sorted(range(1, count), key=lambda k: -int(stats[k, cv2.CC_STAT_AREA]))
        first = self.next_lesion_id()
        if first + len(by_size) - 2 > 255:
            raise EditError("not enough free lesion ids (1..255) for the pieces; merge or relabel lesions first")
        new_ids = {piece: first + n for n, piece in enumerate(by_size[1:])}

        def change(labels: np.ndarray, record: FrameRecord):
            old = record.lesion(lesion)
            split = labels.copy()
            for piece, new_id in new_ids.items():
                split[pieces == piece] = new_id
            others = (x for x in record.lesions if x.id != lesion)
            return split, _sorted([*others, _measured(split, lesion, old),
                                   *(_measured(split, k, old) for k in new_ids.values())]), record.lesion_clicks

        self._identity_edit([index], f"split lesion {lesion} into {len(by_size)}", change)
        return list(new_ids.values())
