"""The main window: canvas over timeline, tool panel on the left, status bar; opens and closes documents.

Editing, navigation and review commands live in `commands.EditingCommands`; model jobs (propose, threshold,
propagate, export, fine-tune) in `model_jobs.ModelJobs`; the Prompt tool and learning from corrections in
`assist_commands.AssistCommands`; calibration, calipers, the display window and the lesion report in
`clinical_commands.ClinicalCommands`; lesions (choose, merge, split, relabel, import masks) in
`lesion_commands.LesionCommands`. The window owns one `JobRunner`: long work never runs on the GUI thread
(clicks and learning rounds have workers of their own). Opening a video also runs in the worker (hashing,
reading a long workspace).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (QDockWidget, QFrame, QLabel, QMainWindow, QScrollArea, QSplitter, QStyle, QVBoxLayout,
                               QWidget)

from vivim_core.errors import VivimError

from ..document import VideoDocument
from . import error_reporting
from .assist_commands import AssistCommands
from .canvas import Canvas
from .clinical_commands import ClinicalCommands
from .commands import EditingCommands
from .compat import guard_none_refcount
from .document_bridge import DocumentBridge
from .lesion_commands import LesionCommands
from .menus import build_menus
from .model_jobs import ModelJobs
from .opening import OpeningCommands
from .recent import RecentFiles
from .shortcuts import build_actions
from .status_bar import StudioStatusBar
from .timeline import Timeline
from .tool_panel import ToolPanel
from .workers import JobRunner

log = logging.getLogger(__name__)

COUNTS_INTERVAL_MS = 150
CLOSE_WAIT_MS = 60_000  # closing waits this long at most for a running job to stop between frames or steps
MESSAGE_MS, FAILURE_MESSAGE_MS = 15_000, 30_000  # how long the status bar shows a message (all are in the log)
PREFERRED_SIZE = QSize(1500, 940)
TIMELINE_HEIGHT = 230  # its first height: status strip, frame axis and area/confidence plots that can be read
WINDOW_FRAME = QSize(16, 40)  # title bar and borders, drawn by the window manager around the window's own size


def initial_size(available: QSize) -> QSize:
    """The window's first size: PREFERRED_SIZE, or less so that it fits, frame included, in `available` (the
    screen without its task bars: on a 1366x768 laptop, the window opens at most 1350 x 688 with a 40-px bar)."""
    return QSize(min(PREFERRED_SIZE.width(), available.width() - WINDOW_FRAME.width()),
                 min(PREFERRED_SIZE.height(), available.height() - WINDOW_FRAME.height()))
FRAME_UI_INTERVAL_MS = 40  # while scrubbing, the playhead, frame number and frame panel follow at most 25 times a
# second (the canvas follows every frame): redrawing them for every frame cost ~3 ms of each 16 ms frame


@dataclass
class StudioOptions:
    checkpoint: Path | None = None
    device: str = "auto"
    task: str | None = None
    interactive: bool = True  # False: no modal dialogs (--screenshot, tests); messages go to the log
    inference: dict[str, Any] = field(default_factory=dict)  # extra InferenceService options (tests: small sizes)
    settings_file: Path | None = None  # QSettings .ini (tests); None: the platform's default place
    probe_device: bool = True  # find CPU/GPU in the background at start (imports torch off the GUI thread)
    runs_dir: Path | None = None  # where fine-tuning runs go (default: the user's app data folder)
    learning: dict[str, Any] = field(default_factory=lambda: {"seconds": 20.0})  # one learning round's budget:
    # `AssistService.adapt`'s seconds and/or steps (tests: {"steps": 1, "seconds": None})


class MainWindow(OpeningCommands, EditingCommands, ModelJobs, AssistCommands, ClinicalCommands, LesionCommands,
                 QMainWindow):
    device_found = Signal(str)  # emitted from a worker: queued to the GUI thread
    proposals_finished = Signal()
    document_opened = Signal()

    def __init__(self, options: StudioOptions | None = None):
        guard_none_refcount()  # before the first of the many None-returning Qt calls (see compat)
        QMainWindow.__init__(self)
        self.options = options or StudioOptions()
        self.document: VideoDocument | None = None
        self.bridge: DocumentBridge | None = None
        self.messages: list[str] = []  # what the user was told (status bar and dialogs), newest last
        self.last_export = None
        self._closing = False
        self.setWindowTitle("Vivim Studio")
        screen = self.screen()
        self.resize(initial_size(screen.availableGeometry().size()) if screen is not None else PREFERRED_SIZE)
        self.setAcceptDrops(True)
        self.actions_by_id = build_actions(self)
        self.runner = JobRunner(self)
        self.canvas = Canvas()
        self.timeline = Timeline()
        self.timeline.defer_refresh = self.canvas.painting
        play = self.actions_by_id["play"]
        play.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.timeline.play_button.setDefaultAction(play)
        self.panel = ToolPanel(self.actions_by_id, self.canvas.brush_radius)
        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        self.status = StudioStatusBar()
        self.setStatusBar(self.status)
        self._build_layout()
        settings = (QSettings(str(self.options.settings_file), QSettings.Format.IniFormat)
                    if self.options.settings_file else QSettings("Vivim", "Vivim Studio"))
        self.recent = RecentFiles(settings)
        build_menus(self)
        self._counts_timer = QTimer(self, singleShot=True, interval=COUNTS_INTERVAL_MS)
        self._counts_timer.timeout.connect(self._refresh_counts)
        self._frame_ui_timer = QTimer(self, singleShot=True, interval=FRAME_UI_INTERVAL_MS)
        self._frame_ui_timer.timeout.connect(self._frame_ui_due)
        self._frame_ui_pending = False
        self._connect()
        self.init_opening()
        self.init_editing()
        self.init_assist()
        self.init_model()
        self.init_clinical()
        self.init_lesions()
        self._update_enabled()

    def _build_layout(self) -> None:
        top = QWidget()
        box = QVBoxLayout(top)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addWidget(self.banner)
        box.addWidget(self.canvas, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(self.timeline)
        splitter.setStretchFactor(0, 1)  # a taller window gives the image the room; the timeline keeps its own
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([self.height() - TIMELINE_HEIGHT, TIMELINE_HEIGHT])
        self.setCentralWidget(splitter)
        scroll = QScrollArea()  # the panel fits a 1366x768 screen; a smaller window scrolls it
        scroll.setWidget(self.panel)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.panel.sizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        self.panel_scroll = scroll
        dock = QDockWidget("Tools", self)
        dock.setObjectName("toolsDock")
        dock.setFeatures(QDockWidget.DockWidgetFeature.NoDockWidgetFeatures)
        dock.setTitleBarWidget(QWidget())  # the panel's group boxes carry the titles
        dock.setWidget(scroll)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)

    def _connect(self) -> None:
        a = self.actions_by_id
        a["quit"].triggered.connect(self.close)
        self.runner.started.connect(self._job_started)
        self.runner.progress.connect(lambda _title, done, total: self.status.job_progress(done, total))
        self.runner.finished.connect(self._job_finished)
        self.status.cancel_button.clicked.connect(self.cancel_job)
        self.canvas.pointer_moved.connect(self.status.set_pointer)
        self.canvas.edit_failed.connect(lambda message: self.tell(message, dialog=True))
        self.canvas.frame_unavailable.connect(self._show_frame_unavailable)
        self.timeline.frame_requested.connect(self.go_to)

    # messages ------------------------------------------------------------------------------------------
    def tell(self, message: str, dialog: bool = False, title: str = "Vivim Studio", hint: str = "") -> None:
        """Tell the user something: the status bar, and a dialog for what needs reading and acting on."""
        self.messages.append(message + (f" {hint}" if hint else ""))
        log.info("told the user: %s", message)
        self.status.show_message(message, MESSAGE_MS)
        if dialog:
            error_reporting.show_error(self, title, message, hint, self.options.interactive)

    def fail(self, title: str, error: BaseException, details: str = "") -> None:
        """A job or command failed: a dialog with what happened and what to do (traceback only in the log)."""
        if details:
            log.error("%s failed:\n%s", title, details)
        text, advice = error_reporting.describe(error)
        self.messages.append(f"{title}: {text}")
        self.status.show_message(f"{title}: {text}", FAILURE_MESSAGE_MS)
        error_reporting.show_error(self, title, text, advice, self.options.interactive)

    def set_document(self, document: VideoDocument | None) -> None:
        self.close_document()
        self.document = document
        if document is not None:
            document.save_in_background()  # edits return at once; the disk catches up beside the GUI thread
            self.bridge = DocumentBridge(document, self)
            self.bridge.save_failed.connect(self._on_save_failed)
            self.bridge.mask_changed.connect(self._on_mask_changed)
            self.bridge.probability_changed.connect(self.canvas.refresh_probability)
            self.bridge.probability_changed.connect(self.timeline.schedule_refresh)
            # a new proposal on a reviewed frame (or with the same mask) changes only its confidence and time
            self.bridge.probability_changed.connect(self._refresh_frame_info)
            self.bridge.status_changed.connect(self._on_status_changed)
            self.bridge.current_frame_changed.connect(self._on_current_changed)
            self.bridge.history_changed.connect(self._update_undo)
            self.bridge.history_changed.connect(self.canvas.refresh_marks)  # a click's record, an undone click
            self.bridge.history_changed.connect(self._refresh_frame_info)  # a click that left the mask as it was
            self.panel.set_threshold(document.proposal_threshold)
            name = document.source.name
            self.setWindowTitle(f"{name} — Vivim Studio")
            self.tell(f"Opened {name}: {document.num_frames} frames of {document.frame_size[1]}x"
                      f"{document.frame_size[0]}" + (f", workspace {document.workspace.folder}"
                                                      if document.workspace else ""))
        else:
            self.setWindowTitle("Vivim Studio")
        self.canvas.set_document(document)
        self.timeline.set_document(document)
        self.status.show_saved(document)
        self.clinical_document_set()
        self.lesions_document_set()
        self._refresh_frame_info()
        self._refresh_counts()
        self._update_enabled()
        self._update_undo()
        self.refresh_assist()
        if document is not None and self.uses_workspace_model():
            self.tell(f"Using the model {self.model_name()}, kept in its workspace (Model > Choose checkpoint... "
                      f"to use another).")

    def close_document(self) -> None:
        """Finish a stroke in progress, save what is pending, release the workspace."""
        document, self.document = self.document, None
        if document is None:
            return
        self.stop_playing()
        self.canvas.finish_stroke()
        self._learn_timer.stop()
        self.learning_wanted = False
        self.prompt_queue.drain()  # clicks not started are dropped; the one computing finishes first
        self.wait_for_learning(CLOSE_WAIT_MS)
        if self.bridge is not None:
            self.bridge.disconnect_document()
            self.bridge.deleteLater()
            self.bridge = None
        self.canvas.set_document(None)
        self.timeline.set_document(None)
        try:
            document.close()
        except VivimError as exc:  # e.g. disk full: the user must know the last change may be unsaved
            self.fail("Could not save the workspace", exc)

    def closeEvent(self, event) -> None:
        self._closing = True
        if self.runner.busy:
            self.runner.cancel()  # jobs stop between frames / steps; what they finished is saved
            self.runner.wait(CLOSE_WAIT_MS)
        if self.device_probe is not None:
            self.device_probe.wait(CLOSE_WAIT_MS)  # importing torch cannot be cancelled: a thread must not outlive Qt
        self.close_document()
        self.prompt_queue.close()
        super().closeEvent(event)

    # document events (GUI thread) ------------------------------------------------------------------
    def _show_frame_unavailable(self, message: str) -> None:
        """No image (e.g. the video moved since the workspace was made): say so once, in the banner."""
        self.banner.setText(f"<b>The video's frames cannot be shown.</b> {message}. Masks can still be reviewed "
                            f"and exported (PNG, NIfTI).")
        self.banner.setVisible(True)

    def _on_save_failed(self, message: str) -> None:
        self.tell(message, dialog=True, title="Could not save the workspace")

    def _on_mask_changed(self, index: int) -> None:
        if self.canvas.painting(index):  # a live stroke: the canvas draws it itself; the rest follows its commit
            return
        self.canvas.refresh_mask(index)
        self.timeline.mask_changed(index)
        self.timeline.schedule_refresh()
        self._refresh_frame_info(index)
        self.labels_changed(index)

    def _refresh_frame_info(self, index: int | None = None) -> None:
        document = self.document
        if document is None or index is None or index == document.current_frame:
            current = document.current_frame if document else 0
            self.panel.frame_info.show_frame(document, current, getattr(self, "task", None))
            self.panel.lesion_panel.show_frame(document, current)

    def _on_status_changed(self, index: int) -> None:
        self.labels_changed(index)
        self.timeline.schedule_refresh()
        if not self._counts_timer.isActive():
            self._counts_timer.start()
        if self.document is not None and index == self.document.current_frame:
            self.timeline.set_current(index)
            self._refresh_frame_info(index)

    def _on_current_changed(self, index: int) -> None:
        self.canvas.show_frame(index)
        self.timeline.clear_changed(index)  # seen: no longer news
        self._update_undo()
        if self._frame_ui_timer.isActive():
            self._frame_ui_pending = True  # shown when the interval ends: where the user stopped, at the latest
        else:
            self._show_frame_ui()  # the first change after a pause shows at once (a single step, a click)
            self._frame_ui_timer.start()

    def _frame_ui_due(self) -> None:
        if self._frame_ui_pending:
            self._frame_ui_pending = False
            self._show_frame_ui()
            self._frame_ui_timer.start()

    def _show_frame_ui(self) -> None:
        if self.document is not None:
            self.timeline.set_current(self.document.current_frame)
            self._refresh_frame_info()

    def _refresh_counts(self) -> None:
        self.status.show_counts(self.document)
        if self.document is not None:
            self.timeline.set_current(self.document.current_frame)

    # jobs ------------------------------------------------------------------------------------------------
    def _job_started(self, title: str) -> None:
        self.status.job_started(title)
        self._update_enabled()

    def _job_finished(self, _title: str) -> None:
        if not self.runner.busy:  # the finished job's callback may have started the next one
            self.status.job_finished()
            self._resume_learning()
        self._update_enabled()

    def start_job(self, title: str, function, on_done=None) -> bool:
        """Run `function(progress, cancel)` in the worker; failures become a dialog titled after the job."""
        if self.runner.busy:
            self.tell(f"'{self.runner.title}' is still running: wait for it or cancel it (Esc).")
            return False
        return self.runner.start(title, function, on_done,
                                 on_error=lambda exc, details: self.fail(f"{title} failed", exc, details))

    def cancel_job(self) -> None:
        if self.runner.busy:
            self.runner.cancel()
            self.status.job_cancelling()

    def _update_enabled(self) -> None:
        has_doc, busy = self.document is not None, self.runner.busy
        for name in ("export", "report", "propose", "finetune", "propagate", "import_masks"):
            self.actions_by_id[name].setEnabled(has_doc and not busy)
        for name in ("open", "open_folder"):
            self.actions_by_id[name].setEnabled(not busy)
        for name in ("accept", "accept_range", "fill_holes", "keep_largest", "smooth", "copy_previous",
                     "copy_next", "clear", "next_frame", "previous_frame", "first_frame", "last_frame",
                     "next_unreviewed", "previous_unreviewed", "next_low_confidence", "play", "fit_view",
                     "tool_calibrate", "toggle_calipers", "toggle_long_axis_curve", "window_level",
                     "reset_window_level", "new_lesion", "split_lesion", *(f"lesion_{k}" for k in range(1, 10))):
            self.actions_by_id[name].setEnabled(has_doc)
        self.actions_by_id["cancel_job"].setEnabled(busy)
        self.panel.threshold_slider.setEnabled(has_doc and not busy)
