"""Editing, navigation and review commands of the main window (a mixin of `MainWindow`).

Every edit is one call into the document model, which makes it one undo step and saves it before returning;
errors meant for the user (`EditError`: e.g. copying from before the first frame) become a status message.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QStyle

from vivim_core.errors import VivimError

from ..document import FrameStatus
from .dialogs import AcceptRangeDialog, about_dialog, shortcuts_dialog
from .error_reporting import log_file
from .tools import TOOL_COMMANDS, Tool

DEFAULT_FPS = 25.0
SMOOTH_RADIUS = 3


class EditingCommands:
    """Needs: self.document, self.canvas, self.timeline, self.panel, self.actions_by_id, self.tell()."""

    def init_editing(self) -> None:
        a = self.actions_by_id
        self._play_timer = QTimer(self)
        self._play_timer.timeout.connect(self._play_tick)
        a["undo"].triggered.connect(self.undo)
        a["redo"].triggered.connect(self.redo)
        for tool, name in TOOL_COMMANDS.items():
            a[name].triggered.connect(lambda _checked=False, t=tool: self.set_tool(t))
        a["brush_smaller"].triggered.connect(lambda: self.change_brush(0.8))
        a["brush_larger"].triggered.connect(lambda: self.change_brush(1.25))
        self.panel.brush_radius_changed.connect(self.canvas.set_brush_radius)
        self.panel.opacity_changed.connect(self.canvas.set_fill_opacity)
        a["toggle_mask"].toggled.connect(self.canvas.set_mask_visible)
        a["toggle_heatmap"].toggled.connect(self.canvas.set_heatmap_visible)
        a["fit_view"].triggered.connect(self.canvas.fit)
        a["zoom_in"].triggered.connect(lambda: self.canvas.zoom(1.25))
        a["zoom_out"].triggered.connect(lambda: self.canvas.zoom(0.8))
        operations = {"fill_holes": "fill_holes", "keep_largest": "keep_largest_component", "clear": "clear",
                      "copy_previous": "copy_from_previous", "copy_next": "copy_from_next"}
        for name, method in operations.items():
            a[name].triggered.connect(lambda _checked=False, m=method: self.edit_current(m))
        a["smooth"].triggered.connect(lambda: self.edit_current("smooth", SMOOTH_RADIUS))
        self.canvas.lasso_drawn.connect(self.apply_lasso)
        a["next_frame"].triggered.connect(lambda: self.step(1))
        a["previous_frame"].triggered.connect(lambda: self.step(-1))
        a["first_frame"].triggered.connect(lambda: self.go_to(0))
        a["last_frame"].triggered.connect(lambda: self.go_to(self.document.num_frames - 1 if self.document else 0))
        a["next_unreviewed"].triggered.connect(lambda: self.next_unreviewed(1))
        a["previous_unreviewed"].triggered.connect(lambda: self.next_unreviewed(-1))
        a["next_low_confidence"].triggered.connect(self.next_low_confidence)
        a["play"].toggled.connect(self.set_playing)
        a["accept"].triggered.connect(self.accept_current)
        a["accept_range"].triggered.connect(self.accept_range_dialog)
        a["shortcuts"].triggered.connect(lambda: shortcuts_dialog(self).exec())
        a["about"].triggered.connect(lambda: about_dialog(log_file(), self).exec())

    # tools -------------------------------------------------------------------------------------------
    def set_tool(self, tool: Tool) -> None:
        tool = Tool(tool)
        problem = self.prompt_problem() if tool is Tool.PROMPT else None
        if problem is not None:  # say why, and keep the tool the user had
            self.actions_by_id[TOOL_COMMANDS[self.canvas.tool]].setChecked(True)
            self.tell(problem, dialog=True, title="Prompt tool unavailable")
            return
        self.canvas.set_tool(tool)
        self.actions_by_id[TOOL_COMMANDS[tool]].setChecked(True)
        if tool is Tool.CALIBRATE:
            self.calibrate_tool_chosen()
        if tool is Tool.PROMPT:
            self.tell("Prompt: click the lesion (left), the background (right-click or Shift+click), or drag a box "
                      "around it; the model redraws the mask after each click (Ctrl+Z undoes one click).")

    def change_brush(self, factor: float) -> None:
        radius = self.canvas.brush_radius
        new = int(round(radius * factor))
        self.panel.set_brush_radius(new if new != radius else radius + (1 if factor > 1 else -1))

    # edits -------------------------------------------------------------------------------------------
    def edit_current(self, method: str, *args) -> bool:
        """Run `document.<method>(current_frame, *args)`; True when the mask changed."""
        if self.document is None:
            return False
        self.canvas.finish_stroke()
        try:
            changed = getattr(self.document, method)(self.document.current_frame, *args)
        except VivimError as exc:
            self.tell(str(exc))
            return False
        if not changed:
            self.tell(f"{method.replace('_', ' ').capitalize()}: nothing to change on this frame.")
        return bool(changed)

    def apply_lasso(self, points, subtract: bool) -> bool:
        return self.edit_current("add_polygon", points, subtract)

    def undo(self) -> None:
        self._undo_redo(undo=True)

    def redo(self) -> None:
        self._undo_redo(undo=False)

    def _undo_redo(self, undo: bool) -> None:
        if self.document is None:
            return
        self.canvas.finish_stroke()
        try:
            label = self.document.undo() if undo else self.document.redo()
        except VivimError as exc:
            self.tell(str(exc))
            return
        what = "Undo" if undo else "Redo"
        self.tell(f"{what}: {label}" if label else f"Nothing to {what.lower()} on this frame.")

    def _update_undo(self, index: int | None = None) -> None:
        document = self.document
        if document is not None and index is not None and index != document.current_frame:
            return
        undo_label = document.history.undo_label(document.current_frame) if document else None
        redo_label = document.history.redo_label(document.current_frame) if document else None
        self.actions_by_id["undo"].setEnabled(undo_label is not None)
        self.actions_by_id["redo"].setEnabled(redo_label is not None)
        self.actions_by_id["undo"].setText(f"&Undo {undo_label}" if undo_label else "&Undo")
        self.actions_by_id["redo"].setText(f"&Redo {redo_label}" if redo_label else "&Redo")

    # navigation --------------------------------------------------------------------------------------
    def go_to(self, index: int) -> None:
        document = self.document
        if document is None:
            return
        index = int(min(max(index, 0), document.num_frames - 1))
        if index != document.current_frame:
            self.canvas.finish_stroke()
            document.current_frame = index  # the document's event redraws canvas and timeline

    def step(self, delta: int) -> None:
        if self.document is not None:
            self.go_to(self.document.current_frame + delta)

    def _search(self, wanted, direction: int = 1) -> int | None:
        """The next frame after the current one (wrapping around) for which wanted(index) holds."""
        document = self.document
        count, start = document.num_frames, document.current_frame
        for offset in range(1, count + 1):
            index = (start + direction * offset) % count
            if wanted(index):
                return index
        return None

    def next_unreviewed(self, direction: int = 1) -> None:
        if self.document is None:
            return
        statuses = self.document.statuses()
        found = self._search(lambda i: not statuses[i].human_reviewed, direction)
        if found is None:
            self.tell("Every frame is reviewed (edited or accepted).")
        else:
            self.go_to(found)

    def next_low_confidence(self) -> None:
        if self.document is None:
            return
        limit = self.timeline.low_confidence
        confidences, statuses = self.document.confidences(), self.document.statuses()
        found = self._search(lambda i: statuses[i] == FrameStatus.PROPOSED and not np.isnan(confidences[i])
                             and confidences[i] < limit)
        if found is None:
            self.tell(f"No proposed frame has a confidence below {limit:.2f} (drag the dashed line on the timeline "
                      f"to change the limit).")
        else:
            self.go_to(found)

    def set_playing(self, playing: bool) -> None:
        icon = QStyle.StandardPixmap.SP_MediaPause if playing and self.document else QStyle.StandardPixmap.SP_MediaPlay
        self.actions_by_id["play"].setIcon(self.style().standardIcon(icon))
        if playing and self.document is not None:
            if self.document.current_frame >= self.document.num_frames - 1:
                self.go_to(0)
            self._play_timer.start(int(1000 / (self.document.fps or DEFAULT_FPS)))
        else:
            self._play_timer.stop()
            if self.actions_by_id["play"].isChecked():
                self.actions_by_id["play"].setChecked(False)

    def stop_playing(self) -> None:
        self.set_playing(False)

    @property
    def playing(self) -> bool:
        return self._play_timer.isActive()

    def _play_tick(self) -> None:
        document = self.document
        if document is None or document.current_frame >= document.num_frames - 1:
            self.stop_playing()
        else:
            self.go_to(document.current_frame + 1)

    # review ------------------------------------------------------------------------------------------
    def accept_current(self) -> None:
        if self.document is None:
            return
        index = self.document.current_frame
        if self.document.status(index) == FrameStatus.ACCEPTED:
            self.tell(f"Frame {index + 1} is already accepted.")
        elif self.edit_current("accept"):
            empty = not self.document.mask(index).any()
            self.tell(f"Frame {index + 1} accepted" + (" (no lesion)." if empty else "."))

    def accept_range(self, frames: range, include_edited: bool = True) -> bool:
        """Accept the proposed (and, if asked, edited) frames in `frames` (0-based), one undo step each, in the
        worker (each acceptance is saved durably: hundreds of frames take a moment)."""
        if self.document is None:
            return False
        document = self.document
        only = (FrameStatus.PROPOSED, FrameStatus.EDITED) if include_edited else (FrameStatus.PROPOSED,)

        def job(progress, cancel) -> list[int]:
            return document.accept_frames(frames, only=only)

        def done(accepted: list[int]) -> None:
            self.tell(f"Accepted {len(accepted)} frame(s) between {frames.start + 1} and {frames.stop}.")

        return self.start_job("Accepting frames", job, done)

    def accept_range_dialog(self) -> None:
        if self.document is None:
            return
        dialog = AcceptRangeDialog(self.document.num_frames, self.document.current_frame, self)
        if dialog.exec():
            self.accept_range(dialog.frames(), dialog.include_edited.isChecked())
