"""The status bar: frame and its status, review counts, device, checkpoint, save state, and the running job's
progress with a Cancel button. Everything a clinician needs to trust what is on screen, at a glance."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar, QWidget

from ..document import FrameStatus, VideoDocument
from .theme import MUTED_TEXT, STATUS_LABELS, status_css


class StudioStatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizeGripEnabled(False)
        self.pointer_label = QLabel()
        self.pointer_label.setMinimumWidth(110)
        self.counts_label = QLabel()
        self.saved_label = QLabel()
        self.device_label = QLabel()
        self.checkpoint_label = QLabel()
        self.job_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setFixedWidth(180)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for widget in (self.job_label, self.progress, self.cancel_button):
            widget.setVisible(False)
            self.addPermanentWidget(widget)  # permanent: a transient message must not hide the progress
        for widget in (self.pointer_label, self.counts_label, self.saved_label, self.checkpoint_label,
                       self.device_label):
            self.addPermanentWidget(widget)
        self.set_device(None)
        self.set_checkpoint(None)

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

    def show_saved(self, document: VideoDocument | None) -> None:
        if document is None or document.workspace is None:
            self.saved_label.setText("<span style='color:#e0a040'>not saved (no workspace)</span>")
        elif document.workspace.read_only:
            self.saved_label.setText("<span style='color:#e0a040'>read-only</span>")
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
        self.checkpoint_label.setText(f"Model: {name}" if name else
                                      f"<span style='color:#e0a040'>Model: none</span>")
        self.checkpoint_label.setToolTip(tip or ("Model > Choose checkpoint... to set one" if not name else ""))

    def set_pointer(self, x: int, y: int) -> None:
        self.pointer_label.setText("" if x < 0 else f"x {x}, y {y}")

    def job_started(self, title: str) -> None:
        self.job_label.setText(title)
        self.progress.setRange(0, 0)  # busy until the first report
        for widget in (self.job_label, self.progress, self.cancel_button):
            widget.setVisible(True)
        self.cancel_button.setEnabled(True)

    def job_progress(self, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))
            self.progress.setFormat(f"{done} / {total}")

    def job_cancelling(self) -> None:
        self.job_label.setText(self.job_label.text() + " (cancelling...)")
        self.cancel_button.setEnabled(False)

    def job_finished(self) -> None:
        for widget in (self.job_label, self.progress, self.cancel_button):
            widget.setVisible(False)
