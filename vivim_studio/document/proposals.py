"""The model's proposals in `VideoDocument`: probability maps stored, masks derived at a threshold and split into
lesions whose ids follow each lesion through the clip (`lesion_tracking`). Mixed into `VideoDocument`.

Where the work runs: `prepare_proposal` (quantise, PNG-encode, confidence, split into lesions) is pure and runs
in the proposal job's worker pool; `set_proposal` then matches the lesions to the frames around (about a
millisecond) and writes the frame, in frame order, so each frame is matched to its predecessor's final ids.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from . import codec, lesion_tracking, lesions
from .exceptions import EditError
from .lesion_tracking import Reference, Regions
from .status import HUMAN, MAX_LESION_ID, FrameStatus, LesionRecord, model_origin

LOOKBACK_FRAMES = 15  # lesions missing from the previous frame are looked for this far back
ANCHOR_WINDOW = 100  # a human frame at most this far ahead lends its ids to new lesions


@dataclass(frozen=True)
class PreparedProposal:
    """A model's probability map made ready to store (`ProposalMixin.prepare_proposal`)."""

    probability: np.ndarray  # float32 (H, W)
    quantized: np.ndarray  # uint8 (H, W), codec.quantize_probability
    encoded: bytes  # its 8-bit PNG
    confidence: float  # codec.proposal_confidence
    threshold: float | None = None  # the threshold `regions` was split at
    regions: Regions | None = None  # probability >= threshold split into lesions


def lesions_of(regions: Regions, ids: list[int], status: FrameStatus, origin: str | None
               ) -> tuple[np.ndarray, tuple[LesionRecord, ...]]:
    """The label map uint8 (H, W) of regions given `ids` (regions may share one: fragments), and their records."""
    lut = np.zeros(256, np.uint8)
    lut[1:len(ids) + 1] = ids
    labels = cv2.LUT(regions.labels, lut)
    records = []
    for lesion in sorted(set(ids)):
        members = [r for r, k in enumerate(ids) if k == lesion]
        area = sum(regions.areas[r] for r in members)
        boxes = [regions.boxes[r] for r in members]
        box = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
        cx = sum(regions.centroids[r][0] * regions.areas[r] for r in members) / area
        cy = sum(regions.centroids[r][1] * regions.areas[r] for r in members) / area
        records.append(LesionRecord(lesion, status, origin, area, box, (cx, cy)))
    return labels, tuple(records)


class ProposalMixin:
    """Proposals; mixed into `VideoDocument` (uses its `_apply_state`, `masks`, `_records`...)."""

    # lesion identities ----------------------------------------------------------------------------------
    def _centres(self, index: int) -> list[Reference]:
        """The lesions of frame `index` with their centroids (from the record; measured on the label map for a
        record that lacks them)."""
        record = self._records.get(index)
        if record is None or not record.lesions:
            return []
        if all(x.centroid is not None for x in record.lesions):
            return [Reference(x.id, x.centroid, x.area) for x in record.lesions]
        return lesion_tracking.previous_references(self.masks.labels(index), {})

    def _velocities(self, index: int) -> dict[int, tuple[float, float]]:
        """Per lesion id, its centroid's motion from frame index - 1 to frame `index` (pixels a frame); none for
        a lesion whose area jumped (it touched or left another: its centroid jumped, it did not move)."""
        now, before = self._records.get(index), self._records.get(index - 1)
        if now is None or before is None:
            return {}
        velocities = {}
        for lesion in now.lesions:
            earlier = before.lesion(lesion.id)
            if (lesion.centroid is not None and earlier is not None and earlier.centroid is not None
                    and 2 * min(lesion.area, earlier.area) >= max(lesion.area, earlier.area)):
                velocities[lesion.id] = (lesion.centroid[0] - earlier.centroid[0],
                                         lesion.centroid[1] - earlier.centroid[1])
        return velocities

    def _lesion_ids_for(self, index: int, regions: Regions) -> list[int]:
        """The id of each region of frame `index`'s proposal (see `lesion_tracking`)."""
        if not len(regions):
            return []
        own, previous = [], []
        if self.masks.has_mask(index):  # a re-proposal: the frame's ids so far come first
            own = lesion_tracking.previous_references(self.masks.labels(index), {})
        if index > 0 and self.masks.has_mask(index - 1):
            previous = lesion_tracking.previous_references(self.masks.labels(index - 1), self._velocities(index - 1))
        seen = {r.id for r in (*own, *previous)}
        remembered = []
        for earlier in range(index - 2, max(index - 1 - LOOKBACK_FRAMES, -1), -1):
            for reference in self._centres(earlier):
                if reference.id not in seen:
                    seen.add(reference.id)
                    remembered.append(reference)
        anchor = self._next_anchor(index)
        anchors = [] if anchor is None else self._centres(anchor)
        return lesion_tracking.assign_ids(regions, own, previous, remembered, anchors, self._new_lesion_id)

    def _next_anchor(self, index: int) -> int | None:
        """The next frame after `index` (within ANCHOR_WINDOW) that a human edited or accepted."""
        for later in range(index + 1, min(index + 1 + ANCHOR_WINDOW, self.num_frames)):
            record = self._records.get(later)
            if record is not None and record.status.human_reviewed:
                return later
        return None

    def _reconcile_with_anchor(self, index: int) -> list[int]:
        """Frame `index` was just proposed and frame index + 1 is a human's: ids that the proposals made up
        (`_tracked_ids`) and that the human calls otherwise are renamed to the human's, along the proposed frames
        that carried them up to here. The caller holds the lock. Returns the frames rewritten."""
        anchor = index + 1
        record = self._records.get(anchor)
        if record is None or not record.status.human_reviewed or not record.lesions or not self.masks.has_mask(index):
            return []
        references = lesion_tracking.previous_references(self.masks.labels(anchor), {})
        renames = {mine: theirs for mine, theirs in lesion_tracking.match_to(self.masks.labels(index),
                                                                              references).items()
                   if mine != theirs and mine in self._tracked_ids}
        rewritten = []
        for mine, theirs in renames.items():
            frame = index
            while frame >= 0:
                current = self._records.get(frame)
                if current is None or current.status != FrameStatus.PROPOSED or mine not in current.lesion_ids:
                    break
                swap = {mine: theirs, theirs: mine}
                moved = lesions.relabel(self.masks.labels(frame), mine, theirs)
                lesion_list = tuple(sorted((replace(x, id=swap.get(x.id, x.id)) for x in current.lesions),
                                           key=lambda x: x.id))
                self._pending_notes.append((frame, self._apply_state(frame, moved, current.with_changes(
                    lesions=lesion_list), None)))
                rewritten.append(frame)
                frame -= 1
            self._tracked_ids.discard(mine)
        return rewritten

    def _new_lesion_id(self, taken: set[int]) -> int:
        """One more than any id the video has used; when all 255 are used, the lowest not `taken`."""
        if self._max_lesion_id < MAX_LESION_ID:
            self._max_lesion_id += 1
            lesion = self._max_lesion_id
        else:
            lesion = next(k for k in range(1, MAX_LESION_ID + 1) if k not in taken)
        self._tracked_ids.add(lesion)
        return lesion

    def _proposal_labels(self, index: int, regions: Regions, origin: str, status: FrameStatus = FrameStatus.PROPOSED
                         ) -> tuple[np.ndarray | None, tuple[LesionRecord, ...]]:
        """(label map or None when empty, lesion records) of a proposal's regions on frame `index`."""
        if not len(regions):
            return None, ()
        return lesions_of(regions, self._lesion_ids_for(index, regions), status, origin)

    def _split(self, probability_or_mask: np.ndarray, threshold: float | None = None) -> Regions:
        mask = probability_or_mask if threshold is None else probability_or_mask >= threshold
        return lesion_tracking.split_regions(mask)

    # proposals ---------------------------------------------------------------------------------------
    def rethreshold(self, index: int, threshold: float) -> bool:
        """Re-derive the frame's mask from its probability map at `threshold` (one undo step). The frame keeps
        "proposed" unless a human had reviewed it (then "edited": the human chose this mask)."""
        index = self.source.check_index(index)
        q = self.masks.probability(index)
        if q is None:
            raise EditError(f"frame {index} has no proposal to re-threshold; run 'Propose masks' first")
        regions = self._split(codec.threshold_quantized(q, threshold))
        record = self.record(index)
        status = FrameStatus.EDITED if record.status.human_reviewed else FrameStatus.PROPOSED
        origin = model_origin(record.model) if record.model else HUMAN
        self.check_writable()
        with self._lock:
            labels, lesion_list = self._proposal_labels(index, regions, origin, status)
            current = self.masks.labels(index)
            same = np.array_equal(current, labels) if labels is not None else not current.any()
            if same and record.status == status:
                return False
            new = record.with_changes(status=status, mask_origin=origin, threshold=float(threshold),
                                      lesions=lesion_list, area=sum(x.area for x in lesion_list))
            before = self._apply_state(index, labels, new, f"threshold {threshold:.2f}")
        self._finish(index, before, False, True)
        return True

    def prepare_proposal(self, probability: np.ndarray, threshold: float | None = None) -> PreparedProposal:
        """The slow, pure part of `set_proposal` (quantise, PNG-encode, confidence, split into lesions at
        `threshold`, default the document's: ~30 ms for a 1080p map), safe to run on any thread, several at a
        time, before the frame's turn to be written."""
        probability = np.asarray(probability, dtype=np.float32)
        if probability.shape != self.frame_size:
            raise EditError(f"probability map of shape {probability.shape} for frames of size {self.frame_size}")
        threshold = self.proposal_threshold if threshold is None else float(threshold)
        q = codec.quantize_probability(probability)
        return PreparedProposal(probability, q, codec.encode_probability(q), codec.proposal_confidence(q),
                                threshold, self._split(probability, threshold))

    def set_proposal(self, index: int, probability: np.ndarray | PreparedProposal, model: str,
                     threshold: float | None = None, overwrite_reviewed: bool = False, durable: bool = True) -> bool:
        """Store the model's probability float32 (H, W) for a frame (or that map from `prepare_proposal`) and,
        unless a human edited or accepted the frame (or is painting it now), its mask `probability >= threshold`
        (default: the document's threshold) split into lesions with tracked ids, status "proposed". Not
        undoable. `overwrite_reviewed` replaces even a human's frame. Returns True when the mask was written."""
        self.check_writable()
        index = self.source.check_index(index)
        threshold = self.proposal_threshold if threshold is None else float(threshold)
        prepared = (probability if isinstance(probability, PreparedProposal)
                    else self.prepare_proposal(probability, threshold))  # before the lock: the GUI never waits
        regions = prepared.regions if prepared.threshold == threshold and prepared.regions is not None \
            else self._split(prepared.probability, threshold)
        with self._lock:  # decide and apply atomically: a human edit landing meanwhile is never overwritten
            record = self.record(index)
            painting = self._active_stroke is not None and self._active_stroke.frame == index
            keep_mask = (record.status.human_reviewed and not overwrite_reviewed) or painting
            changes = dict(model=model[:16], confidence=prepared.confidence)
            if keep_mask:
                before = self._apply_state(index, self.masks.mask_bytes(index), record.with_changes(**changes),
                                           None, prepared.quantized, prepared.encoded)
            else:
                origin = model_origin(model)
                labels, lesion_list = self._proposal_labels(index, regions, origin)
                before = self._apply_state(index, labels, record.with_changes(
                    status=FrameStatus.PROPOSED, mask_origin=origin, threshold=threshold, lesions=lesion_list,
                    area=sum(x.area for x in lesion_list), **changes), None, prepared.quantized, prepared.encoded)
                self._reconcile_with_anchor(index)
            renamed, self._pending_notes = self._pending_notes, []
        self._finish(index, before, True, False, durable)  # save and notify outside the lock
        for frame, state in renamed:
            if frame != index:
                self._notify(frame, state, False, False)
        return not keep_mask

    def set_proposal_threshold(self, threshold: float) -> list[int]:
        """Re-threshold every frame still "proposed" by the model (not undoable: move the slider back), in frame
        order so lesion ids follow through. Returns the frames whose mask changed."""
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
                if q is None:
                    continue
                mask = codec.threshold_quantized(q, threshold)
                if np.array_equal(mask, self.masks.mask(index)):
                    continue
                labels, lesion_list = self._proposal_labels(index, self._split(mask), record.mask_origin)
                before = self._apply_state(index, labels, record.with_changes(
                    threshold=float(threshold), lesions=lesion_list, area=sum(x.area for x in lesion_list)), None)
            self._finish(index, before, False, False, durable=False)
            changed.append(index)
        self._save_state()
        self.sync()
        return changed

    def set_checkpoint(self, sha256: str, name: str | None = None) -> None:
        """Remember the checkpoint of the latest proposals (saved with the workspace state)."""
        self.checkpoint = {"sha256": sha256, "name": name}
        self._save_state()
