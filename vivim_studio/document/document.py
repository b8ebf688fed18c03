"""`VideoDocument`: one video, its masks, review status, undo history and workspace. No Qt.

    doc = VideoDocument.open("clip.mp4")                 # workspace clip.mp4.vivim/ created or resumed
    doc.events.mask_changed.connect(view.redraw)
    with doc.stroke(frame=10, radius=8) as s:            # brush: painted live, one undo step, saved at the end
        s.add_points([(120, 80), (124, 83)])
    doc.fill_holes(10); doc.undo(10); doc.accept(10)
    doc.active_lesion = 2                                # the second nodule: edits now act on lesion 2
    doc.labels(10)                                       # uint8 (H, W): 0 background, 1..N lesion ids

A frame's mask is a label map: 0 background, 1..255 lesion ids, each lesion keeping its id through the clip
(see `status` for the per-lesion records, `lesion_editing` for merge, split and relabel).

Every change is saved before the call returns (see `workspace`), so a crash loses at most the stroke in
progress; an interactive editor may move these saves to a background thread (`save_in_background`, see
`background_save`), where at most the latest edit is still being written. Methods are thread-safe (one lock):
the proposal job writes proposals from a worker thread while the user edits. Editing operations live in
`editing.EditingMixin`, proposals in `proposals.ProposalMixin`, lesion identities in
`lesion_editing.LesionMixin`, calibrations (`calibrations`, `set_user_calibration`) in
`document_calibration.CalibrationMixin`.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .background_save import BackgroundSaver
from .document_calibration import CalibrationMixin
from .editing import EditingMixin
from .exceptions import EditError
from .events import DocumentEvents
from .frame_cache import DEFAULT_CACHE_BYTES
from .history import FrameState, StepGroup, UndoHistory
from .lesion_editing import LesionMixin
from .lesions import check_lesion_id, geometry
from .mask_store import MaskStore
from .proposals import ProposalMixin
from .sources import VideoSource, open_source
from .status import Click, FrameRecord, FrameStatus, LesionRecord
from .timeline import TimelineMixin
from .workspace import KEEP, Workspace

STATE_SAVE_INTERVAL_S = 1.0  # the current frame is saved at most this often while scrubbing (and on close)


class VideoDocument(EditingMixin, ProposalMixin, LesionMixin, TimelineMixin, CalibrationMixin):
    """A video under review. `workspace=None`: in memory only (nothing saved).

    Frames: `frame(i)` uint8 (H, W, 3) RGB. Masks: `labels(i)` uint8 (H, W) lesion ids, `mask(i)` bool (H, W)
    their union, `lesion_mask(i, k)`; all read-only. Probability: `probability(i)` float32 (H, W) or None.
    Records: `record(i)` / `status(i)`; lesions: `lesions(i)`, `lesion_ids()`, `lesion_record(i, k)`.
    """

    def __init__(self, source: VideoSource, workspace: Workspace | None = None, import_initial_masks: bool = True):
        self.source = source
        self.workspace = workspace
        self.events = DocumentEvents()
        self.history = UndoHistory()
        self.masks = MaskStore(source.frame_size, workspace.read_probability if workspace else None,
                               locate=workspace.blob_path if workspace else None)
        self._records: dict[int, FrameRecord] = {}
        self._lock = threading.RLock()
        self._unsaved: set[int] = set()
        self._active_stroke = None
        self._current = 0
        self.proposal_threshold = 0.5
        self.checkpoint: dict[str, Any] | None = None  # {"sha256", "name"} of the last proposal run
        self.model: dict[str, Any] | None = None  # {"file", "sha256"}: the workspace's adapted model
        self._state_saved_at = 0.0
        self._state_dirty = False
        self._saver: BackgroundSaver | None = None
        self._active_lesion = 1
        self._max_lesion_id = 0  # the highest lesion id the video has used: new lesions get the next one
        self._tracked_ids: set[int] = set()  # ids the proposals' tracking made up (a human frame may rename them)
        self._pending_notes: list = []  # (frame, state before) of frames rewritten under the lock, to notify after
        if workspace is not None:
            self._load(workspace, import_initial_masks)
        elif import_initial_masks:
            self._import_initial_masks()

    # opening / closing ---------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path | str, workspace: Path | str | None = None, *, create: bool = True,
             read_only: bool = False, cache_bytes: int = DEFAULT_CACHE_BYTES) -> "VideoDocument":
        """Open a video (file, frame folder, VTUS case, DICOM) with its workspace (default `<video>.vivim/`
        beside it), creating the workspace on first open and resuming it afterwards."""
        source = open_source(path, cache_bytes=cache_bytes)
        try:
            folder = Path(workspace) if workspace is not None else source.default_workspace()
            created = next((p for p in reversed([folder, *folder.parents]) if not p.exists()), None)
            ws = Workspace.open_for(source, folder, create=create, read_only=read_only)
        except BaseException:
            source.close()
            raise
        try:
            return cls._with_workspace(source, ws)
        except BaseException:
            if created is not None:  # e.g. a VTUS case whose ground truth is unreadable: leave no empty workspace
                shutil.rmtree(created, ignore_errors=True)
            raise

    @classmethod
    def open_workspace(cls, folder: Path | str, source_path: Path | str | None = None, *, read_only: bool = False,
                       require_source: bool = False, cache_bytes: int = DEFAULT_CACHE_BYTES) -> "VideoDocument":
        """Open a workspace folder; its video is looked for where the workspace recorded it (or at
        `source_path`). If absent and not `require_source`, masks stay usable and `frame()` raises."""
        ws = Workspace.open_existing(folder, read_only=read_only)
        try:
            source = ws.find_source(source_path, require=require_source, cache_bytes=cache_bytes)
        except BaseException:
            ws.close()
            raise
        return cls._with_workspace(source, ws)

    @classmethod
    def _with_workspace(cls, source: VideoSource, ws: Workspace) -> "VideoDocument":
        try:
            return cls(source, ws)
        except BaseException:
            ws.close()
            source.close()
            raise

    def _load(self, workspace: Workspace, import_initial_masks: bool) -> None:
        frames = workspace.load_frames()
        state = workspace.load_state()
        for index, stored in frames.items():
            self._records[index] = stored.record
            self.masks.set_mask_bytes(index, stored.mask)
            if stored.probability_file is not None:
                self.masks.attach_probability_file(index)
            self._max_lesion_id = max(self._max_lesion_id, *stored.record.lesion_ids, 0)
        self._current = state["current_frame"]
        self.proposal_threshold = state["proposal_threshold"]
        self.checkpoint = state["checkpoint"]
        self.model = state["model"]
        self._load_calibration(workspace)
        if not workspace.read_only:
            workspace.remove_leftovers()  # only now that everything validated
            workspace.mark_current_format()
        if not frames and import_initial_masks and not workspace.read_only:
            self._import_initial_masks()  # first open of a VTUS case: its ground truth, saved once

    def _import_initial_masks(self) -> None:
        origin = self.source.initial_mask_origin
        for index, mask in self.source.initial_masks():
            area, box, centroid = geometry(mask)
            lesions = (LesionRecord(1, FrameStatus.EDITED, origin, area, box, centroid),) if area else ()
            record = FrameRecord().with_changes(status=FrameStatus.EDITED, mask_origin=origin, area=area,
                                                lesions=lesions)
            self._records[index] = record
            self.masks.set_mask(index, mask)
            self._max_lesion_id = max(self._max_lesion_id, *record.lesion_ids, 0)
            self._unsaved.add(index)
        self._save_pending(durable=False)
        if self._records and self.workspace is not None and not self.workspace.read_only:
            self.workspace.sync()

    def close(self) -> None:
        """Save what is pending (current frame), release the workspace lock and the decoder."""
        try:
            if self._active_stroke is not None:
                self._active_stroke.finish()
            self.flush()
        finally:
            self.save_in_background(False)
            if self.workspace is not None:
                self.workspace.close()
            self.source.close()

    def __enter__(self) -> "VideoDocument":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # reading ------------------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return self.source.num_frames

    def __len__(self) -> int:
        return self.source.num_frames

    @property
    def frame_size(self) -> tuple[int, int]:
        """(H, W)."""
        return self.source.frame_size

    @property
    def fps(self) -> float | None:
        return self.source.fps

    @property
    def warnings(self) -> list[str]:
        """What the user should know about the video and its workspace (non-fatal findings, e.g. ground-truth
        masks without a frame, files in the workspace that were ignored)."""
        return [*self.source.warnings, *(self.workspace.warnings if self.workspace is not None else ())]

    def frame(self, index: int) -> np.ndarray:
        return self.source.frame(index)

    def mask(self, index: int) -> np.ndarray:
        """bool (H, W), the union of the frame's lesions, read-only; while a stroke paints this frame, its live
        mask."""
        stroke = self._active_stroke
        if stroke is not None and stroke.frame == index:
            return stroke.mask
        return self.masks.mask(self.source.check_index(index))

    def labels(self, index: int) -> np.ndarray:
        """uint8 (H, W) label map, read-only: 0 background, 1..255 the lesion ids (live while a stroke paints)."""
        stroke = self._active_stroke
        if stroke is not None and stroke.frame == index:
            return stroke.labels
        return self.masks.labels(self.source.check_index(index))

    def lesion_mask(self, index: int, lesion: int) -> np.ndarray:
        """bool (H, W): the pixels of lesion `lesion` on frame `index`."""
        return self.labels(index) == lesion

    def lesions(self, index: int) -> list[int]:
        """The ids of the lesions on frame `index` (from its record: no decoding)."""
        return list(self.record(index).lesion_ids)

    def lesion_record(self, index: int, lesion: int) -> LesionRecord | None:
        """Status, origin, area, box and centroid of lesion `lesion` on frame `index` (None when absent)."""
        return self.record(index).lesion(lesion)

    def lesion_ids(self) -> list[int]:
        """Every lesion id used on some frame of the video, increasing."""
        return sorted({k for record in self._records_snapshot().values() for k in record.lesion_ids})

    def lesion_frames(self, lesion: int) -> list[int]:
        """The frames lesion `lesion` is on."""
        return sorted(i for i, record in self._records_snapshot().items() if lesion in record.lesion_ids)

    def clicks(self, index: int, lesion: int | None = None) -> tuple[Click, ...]:
        """The expert's clicks (x, y, positive) that drew `lesion` (default: the active one) on frame `index`."""
        return self.record(index).clicks_of(self.active_lesion if lesion is None else lesion)

    # the lesion edits act on ----------------------------------------------------------------------------------
    @property
    def active_lesion(self) -> int:
        """The lesion that brush, eraser, lasso, prompts and lesion operations act on (default 1)."""
        return self._active_lesion

    @active_lesion.setter
    def active_lesion(self, lesion: int) -> None:
        try:
            lesion = check_lesion_id(lesion)
        except ValueError as exc:
            raise EditError(str(exc)) from None
        if lesion != self._active_lesion:
            self._active_lesion = lesion
            self.events.active_lesion_changed.emit(lesion)

    def next_lesion_id(self) -> int:
        """An id no frame of the video has used yet (for "new lesion"); EditError when all 255 are used."""
        used = max(self._max_lesion_id, *self.lesion_ids(), 0)
        if used >= 255:
            raise EditError("all 255 lesion ids are used in this video; merge or relabel lesions to free some")
        return used + 1

    def probability(self, index: int) -> np.ndarray | None:
        """The model's probability float32 (H, W) (quantised to 1/256), or None without a proposal."""
        q = self.masks.probability(self.source.check_index(index))
        return None if q is None else (q.astype(np.float32) + 0.5) / 256.0

    def record(self, index: int) -> FrameRecord:
        return self._records.get(self.source.check_index(index), FrameRecord())

    def status(self, index: int) -> FrameStatus:
        return self.record(index).status

    # current frame --------------------------------------------------------------------------------------
    @property
    def current_frame(self) -> int:
        return self._current

    @current_frame.setter
    def current_frame(self, index: int) -> None:
        index = self.source.check_index(index)
        if index == self._current:
            return
        self._current = index
        self._state_dirty = True
        if time.monotonic() - self._state_saved_at >= STATE_SAVE_INTERVAL_S:
            if self._saver is not None:
                self._saver.request()  # scrubbing never waits for the disk (the saver writes the state)
            else:
                self._save_state()
        self.events.current_frame_changed.emit(index)

    # the one way state changes -----------------------------------------------------------------------
    def _state(self, index: int) -> FrameState:
        return FrameState(self.masks.mask_bytes(index), self._records.get(index, FrameRecord()))

    @property
    def writable(self) -> bool:
        """Edits are allowed: an in-memory document, or a workspace not opened read-only."""
        return self.workspace is None or not self.workspace.read_only

    def check_writable(self) -> None:
        """Raise EditError, saying why and what to do, when the workspace is read-only (before long work that
        would write into it, e.g. proposals)."""
        if not self.writable:
            raise EditError(self.workspace.read_only_reason
                            or f"{self.workspace.folder}: opened read-only; reopen it normally to edit")

    # the workspace's adapted model ---------------------------------------------------------------------------
    def workspace_model_path(self) -> Path | None:
        """The model adapted to this video (saved in the workspace), when there is a usable one."""
        if self.workspace is None:
            return None
        return self.workspace.model_path(self.model)

    def save_workspace_model(self, model, provenance: dict[str, Any]) -> str:
        """Store an adapted model in the workspace as its model; returns its SHA-256."""
        self.check_writable()
        if self.workspace is None:
            raise EditError("this document has no workspace to keep an adapted model in")
        self.model = self.workspace.save_model(model, provenance)
        self._save_state()
        return self.model["sha256"]

    def _commit(self, index: int, mask: np.ndarray | bytes | None, record: FrameRecord, label: str | None,
                probability: Any = KEEP, durable: bool = True, group: StepGroup | None = None) -> None:
        """Apply a new mask (label map uint8, bool array = lesion 1, encoded bytes, or None = empty) and record
        to a frame, push the undo step `label` (None: not undoable; `group`: of an operation over several
        frames), save, then notify (outside the lock)."""
        self._wait_for_saves()
        with self._lock:
            before = self._apply_state(index, mask, record, label, probability, group=group)
        self._finish(index, before, probability is not KEEP, label is not None, durable)

    def _apply_state(self, index: int, mask: np.ndarray | bytes | None, record: FrameRecord, label: str | None,
                     probability: Any = KEEP, probability_encoded: bytes | None = None,
                     group: StepGroup | None = None) -> FrameState:
        """The in-memory part of `_commit`; the caller holds the lock. Returns the state before.
        probability_encoded: the new probability map's encoding, made before the lock was taken."""
        before = self._state(index)
        if isinstance(mask, np.ndarray):
            if mask.dtype == bool:
                self.masks.set_mask(index, mask)
            else:
                self.masks.set_labels(index, mask, only_lesion_1=record.lesion_ids in ((), (1,)))
        else:
            self.masks.set_mask_bytes(index, mask)
        if probability is not KEEP:
            self.masks.set_probability(index, probability, probability_encoded)
        self._records[index] = record
        self._max_lesion_id = max(self._max_lesion_id, *record.lesion_ids, 0)
        if label is not None:
            self.history.record(index, label, before, group)
        self._unsaved.add(index)
        return before

    def _finish(self, index: int, before: FrameState, probability_changed: bool, history_changed: bool,
                durable: bool = True) -> None:
        """Save, then notify the views even if the save failed (the change is in memory either way)."""
        try:
            self._save_after_edit(durable)
        finally:
            self._notify(index, before, probability_changed, history_changed)

    def _notify(self, index: int, before: FrameState, probability_changed: bool, history_changed: bool) -> None:
        after = self._state(index)
        if after.mask != before.mask:
            self.events.mask_changed.emit(index)
        if probability_changed:
            self.events.probability_changed.emit(index)
        if (after.record.status, after.record.mask_origin) != (before.record.status, before.record.mask_origin):
            self.events.status_changed.emit(index, after.record.status)
        if after.record.lesions != before.record.lesions:
            self.events.lesions_changed.emit(index)
        if history_changed:
            self.events.history_changed.emit(index)

    # saving ----------------------------------------------------------------------------------------------
    def save_in_background(self, enabled: bool = True) -> None:
        """Run the durable saves of edits on a background thread (`background_save`): edits return once applied
        in memory; each waits for the previous edit's save, so at most the latest edit is not yet on disk. A
        failed background save is reported by `events.save_failed(message)`; its frames stay unsaved and are
        written with the next save (or by `flush`/`close`). No effect without a writable workspace."""
        if enabled and self._saver is None and self.workspace is not None and not self.workspace.read_only:
            self._saver = BackgroundSaver(self._save_pending, lambda exc: self.events.save_failed.emit(str(exc)))
        elif not enabled and self._saver is not None:
            saver, self._saver = self._saver, None
            saver.close()

    def _wait_for_saves(self) -> None:
        saver = self._saver
        if saver is not None:
            saver.wait_idle()

    def _save_after_edit(self, durable: bool = True) -> None:
        saver = self._saver
        if durable and saver is not None:
            saver.request()
        else:
            self._save_pending(durable)

    def _save_pending(self, durable: bool = True) -> None:
        """Write every unsaved frame (normally just the one changed) and the state if due."""
        if self.workspace is None or self.workspace.read_only:
            self._unsaved.clear()
            return
        with self._lock:
            for index in sorted(self._unsaved):
                self.workspace.save_frame(index, self._records.get(index, FrameRecord()),
                                          self.masks.mask_bytes(index), self._probability_to_save(index), durable)
                self.masks.mark_probability_saved(index)
                self._unsaved.discard(index)
            if self._state_dirty:
                self._save_state(durable)

    def _probability_to_save(self, index: int) -> Any:
        if not self.masks.has_probability(index):
            return None
        return self.masks.probability_in_memory(index) or KEEP

    def _save_state(self, durable: bool = True) -> None:
        self._state_dirty = True
        if self.workspace is None or self.workspace.read_only:
            return
        with self._lock:
            self.workspace.save_state({"current_frame": self._current, "checkpoint": self.checkpoint,
                                       "proposal_threshold": self.proposal_threshold, "model": self.model}, durable)
            self._state_dirty = False
            self._state_saved_at = time.monotonic()

    def flush(self) -> None:
        """Save anything still pending (frames whose save failed, the current frame) durably."""
        self._wait_for_saves()
        self._save_pending()
        if self._state_dirty:
            self._save_state()

    def sync(self) -> None:
        """After bulk writes (proposals): make them durable against power loss."""
        self._save_pending()
        if self.workspace is not None:
            self.workspace.sync()

    # undo / redo -----------------------------------------------------------------------------------------
    def undo(self, index: int | None = None) -> str | None:
        """Undo the last step of frame `index` (default: current); returns its label, None if nothing. A step of
        an action on several frames (propagation) is undone on all of them (see `history`)."""
        return self._undo_redo(index, undo=True)

    def redo(self, index: int | None = None) -> str | None:
        return self._undo_redo(index, undo=False)

    def _undo_redo(self, index: int | None, undo: bool) -> str | None:
        """Undo (redo) the frame's last step; a step of an operation over several frames is undone (redone) on
        each of its frames."""
        self.check_writable()
        self._wait_for_saves()
        index = self._current if index is None else self.source.check_index(index)
        stroke = self._active_stroke
        if undo and stroke is not None and stroke.frame == index:
            stroke.cancel()
            return stroke.label
        with self._lock:  # a grouped step (propagation) moves on every frame of its group at once
            label = self.history.undo_label(index) if undo else self.history.redo_label(index)
            befores = {}
            for frame in self.history.frames_to_move(index, undo):
                befores[frame] = self._state(frame)
                step = (self.history.undo if undo else self.history.redo)(frame, befores[frame])
                self.masks.set_mask_bytes(frame, step.state.mask)
                self._records[frame] = step.state.record
                self._unsaved.add(frame)
        if not befores:
            return None
        try:
            self._save_after_edit()
        finally:
            for frame, before in befores.items():
                self._notify(frame, before, False, True)
        return label

    def can_undo(self, index: int | None = None) -> bool:
        return self.history.can_undo(self._current if index is None else index)

    def can_redo(self, index: int | None = None) -> bool:
        return self.history.can_redo(self._current if index is None else index)

    def frames_in(self, frames: Iterable[int] | None) -> list[int]:
        return list(range(self.num_frames)) if frames is None else [self.source.check_index(i) for i in frames]
