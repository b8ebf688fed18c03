"""The status bar: the latest message, then frame review counts, save state, checkpoint and device, the
running job's progress with a Cancel button, and the learning round in the background ("Learning from 12
frames", its progress, a Stop button). Everything a clinician needs to trust what is on screen, at a glance.

The message takes the room the fields leave: a long one (a workspace path) is elided with the whole text in its
tooltip, and the fields stay in view. Qt's own transient messages (menu hints) show over it and then give it
back."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar, QWidget

from ..document import FrameStatus, VideoDocument
from .elided_label import ElidedLabel
from .theme import MUTED_TEXT, STATUS_LABELS, WARNING_TEXT, lesion_swatch_html, status_css

CHECKPOINT_MAX_WIDTH = 300  # a long checkpoint name is elided (the whole name and its provenance in the tooltip)


class StudioStatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizeGripEnabled(False)
        self.message_label = ElidedLabel()
        self._message_timer = QTimer(self, singleShot=True)
        self._message_timer.timeout.connect(lambda: self.message_label.set_full_text(""))
        self.addWidget(self.message_label, 1)
        self.pointer_label = QLabel()
        self.pointer_label.setMinimumWidth(self.pointer_label.fontMetrics().horizontalAdvance("x 0000, y 0000") + 12)
        self.counts_label = QLabel()
        self.lesion_label = QLabel()  # "■ Lesion 2": the lesion edits act on, in its colour
        self.lesion_label.setToolTip("The lesion that brush, eraser, lasso and Prompt act on (keys 1-9, Ctrl+N: new)")
        self.calibration_label = QLabel()  # "0.128 mm/px · drawn line", or "uncalibrated" in amber
        self.window_label = QLabel()  # "W/L 100/120 (display only)" while the display window is not the identity
        self.window_label.setVisible(False)
        self.saved_label = QLabel()
        self.device_label = QLabel()
        self.checkpoint_label = ElidedLabel()
        self.checkpoint_label.setMaximumWidth(CHECKPOINT_MAX_WIDTH)
        self._job_title = ""
        self.progress = QProgressBar()  # its text names the job: "Proposing masks  12 / 48"
        self.progress.setFixedWidth(230)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.learning_label = QLabel()  # "Learning from 12 frames…", then "Learning: re-proposing 40 / 300"
        self.learning_progress = QProgressBar()  # busy while it trains, then the re-proposal's progress
        self.learning_progress.setFixedWidth(70)
        self.learning_progress.setTextVisible(False)
        self.learning_stop = QPushButton("Stop")
        self.learning_stop.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.learning_stop.setToolTip("Stop this learning round: while it trains, the model stays as it was; while "
                                      "it re-proposes, the frames done so far keep their new proposal")
        for widget in (self.progress, self.cancel_button, self.learning_label, self.learning_progress,
                       self.learning_stop):
            widget.setVisible(False)
            self.addPermanentWidget(widget)  # permanent: a transient message must not hide the progress
        for widget in (self.lesion_label, self.pointer_label, self.window_label, self.calibration_label, self.counts_label,
                       self.saved_label, self.checkpoint_label, self.device_label):
            self.addPermanentWidget(widget)
        self.set_device(None)
        self.set_checkpoint(None)

    def show_message(self, text: str, timeout_ms: int = 0) -> None:
        """Show `text` until the next message (or for `timeout_ms`); elided to the room there is, whole in its
        tooltip."""
        self.message_label.set_full_text(text)
        if timeout_ms > 0:
            self._message_timer.start(timeout_ms)
        else:
            self._message_timer.stop()

    def show_active_lesion(self, lesion: int | None) -> None:
        self.lesion_label.setVisible(lesion is not None)
        if lesion is not None:
            self.lesion_label.setText(lesion_swatch_html(lesion, f"Lesion {lesion}"))

    def show_counts(self, document: VideoDocument | None) -> None:
        if document is None:
            self.counts_label.setText("")
            self.saved_label.setText("")
            return
        counts = document.status_counts()
        parts = [f"<span style='color:{status_css(s)}'>&#9632;</span> {counts[s]} {STATUS_LABELS[s].lower()}"
                 for s in FrameStatus]
        self.counts_label.setText("&nbsp;&nbsp;".join(parts))
        self.counts_label.setMinimumWidth(self.counts_label.sizeHint().width())  # never clipped by a long message
        self.counts_label.setToolTip(f"{document.num_frames} frames in total")

    def show_calibration(self, short: str, full: str) -> None:
        """The video's calibration (`measurement_text.calibration_summary`): uncalibrated shows in amber."""
        colour = WARNING_TEXT if short == "uncalibrated" else MUTED_TEXT
        self.calibration_label.setText(f"<span style='color:{colour}'>{short}</span>" if short else "")
        self.calibration_label.setToolTip(full)

    def show_display_window(self, text: str) -> None:
        """The display window in force ("" hides it): what is on screen is not the frame as it is."""
        self.window_label.setText(f"<span style='color:{WARNING_TEXT}'>{text}</span>")
        self.window_label.setToolTip("Brightness / contrast of the display only: the frames, measurements and "
                                     "exports are unchanged (View > Reset brightness / contrast, Shift+W)")
        self.window_label.setVisible(bool(text))

    def show_saved(self, document: VideoDocument | None) -> None:
        if document is None or document.workspace is None:
            self.saved_label.setText(f"<span style='color:{WARNING_TEXT}'>not saved (no workspace)</span>")
        elif document.workspace.read_only:
            self.saved_label.setText(f"<span style='color:{WARNING_TEXT}'>read-only</span>")
        else:
            self.saved_label.setText(f"<span style='color:{MUTED_TEXT}'>&#10003; saved</span>")
            self.saved_label.setToolTip(f"Every change is saved at once in {document.workspace.folder}")

    def set_device(self, device: str | None, detail: str = "") -> None:
        if device is None:
            text, tip = "Device: —", "Found when the model first runs"
        elif device.startswith("cuda"):
            text, tip = f"<b style='color:#7fd67f'>GPU</b> ({device})", detail or "Proposals run on the GPU"
        else:
            text, tip = "<b>CPU</b>", detail or "No usable CUDA GPU: proposals run on the CPU (slower)"
        self.device_label.setText(text)
        self.device_label.setToolTip(tip)

    def set_checkpoint(self, name: str | None, tip: str = "") -> None:
        self.checkpoint_label.setStyleSheet("" if name else f"color: {WARNING_TEXT}")
        self.checkpoint_label.set_full_text(f"Model: {name}" if name else "Model: none",
                                            tip or ("" if name else "Model > Choose checkpoint... to set one"))

    def set_pointer(self, x: int, y: int) -> None:
        self.pointer_label.setText("" if x < 0 else f"x {x}, y {y}")

    def job_started(self, title: str) -> None:
        self._job_title = title
        self.progress.setRange(0, 0)  # busy until the first report
        self.progress.setFormat(title)
        self.progress.setToolTip(title)
        for widget in (self.progress, self.cancel_button):
            widget.setVisible(True)
        self.cancel_button.setEnabled(True)

    def job_progress(self, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))
            self.progress.setFormat(f"{self._job_title}  {done} / {total}")

    def job_cancelling(self) -> None:
        self._job_title += " (cancelling)"
        self.progress.setFormat(self._job_title)
        self.cancel_button.setEnabled(False)

    def job_finished(self) -> None:
        for widget in (self.progress, self.cancel_button):
            widget.setVisible(False)

    # the learning round in the background -------------------------------------------------------------------
    def learning_started(self, frames: int) -> None:
        self.learning_label.setText(f"Learning from {frames} frame{'s' if frames != 1 else ''}…")
        self.learning_progress.setRange(0, 0)  # busy while it trains
        tip = (f"{self.learning_label.text()} The model adapts to the frames you accepted or corrected, then "
               f"re-proposes the frames you have not touched (yours are never overwritten). You can keep working.")
        for widget in (self.learning_label, self.learning_progress):
            widget.setToolTip(tip)
        self.learning_stop.setEnabled(True)
        for widget in (self.learning_label, self.learning_progress, self.learning_stop):
            widget.setVisible(True)

    def learning_progress_update(self, done: int, total: int) -> None:
        if total > 0:
            self.learning_progress.setRange(0, total)
            self.learning_progress.setValue(min(done, total))
            self.learning_label.setText(f"Learning: re-proposing {done} / {total}")

    def learning_stopping(self) -> None:
        self.learning_label.setText("Stopping the learning round…")
        self.learning_stop.setEnabled(False)

    def learning_finished(self) -> None:
        for widget in (self.learning_label, self.learning_progress, self.learning_stop):
            widget.setVisible(False)

    @property
    def learning_text(self) -> str:
        """What the learning indicator says now ("" when no round runs)."""
        return "" if self.learning_label.isHidden() else self.learning_label.text()
