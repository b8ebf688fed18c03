"""File > Lesion size report: which frames, which size thresholds, which folder. The report itself is
`document.report.write_report`, the code of `vivim-studio report`, run by the window in its worker."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QWidget)

from ..document.export_targets import default_export_folder, safe_video_id
from ..document.report import CSV_NAME, FIGURE_NAME, SUMMARY_NAME, ReportOptions
from .theme import MUTED_TEXT, WARNING_TEXT

SELECTIONS = (("Frames I edited or accepted", "reviewed"), ("Accepted frames only", "accepted"),
              ("Every frame, with unreviewed proposals", "all"))
TASKS = (("Thyroid nodules: ACR TI-RADS size thresholds", "thyroid"), ("Polyps: size categories", "polyp"),
         ("None", None))


def default_report_folder(document, remembered: Path | None = None) -> Path:
    """`<export folder>/<video id>-report`, apart from the video and its workspace."""
    base = default_export_folder(document, remembered)
    return base / f"{safe_video_id(document.source.video_id)}-report"


class ReportDialog(QDialog):
    def __init__(self, document, default_folder: Path, task: str | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Lesion size report")
        intro = QLabel(f"Measures every lesion (area, long and short axis) on the chosen frames and writes "
                       f"<code>{CSV_NAME}</code>, <code>{SUMMARY_NAME}</code> and <code>{FIGURE_NAME}</code> into "
                       f"the folder. Millimetres only where a calibration backs them. Information, not a diagnosis.")
        intro.setWordWrap(True)
        self.selection_box = QComboBox()
        for text, value in SELECTIONS:
            self.selection_box.addItem(text, value)
        self.unreviewed_note = QLabel("Unreviewed proposals are the model's masks as they are; the table marks "
                                      "their status.")
        self.unreviewed_note.setWordWrap(True)
        self.unreviewed_note.setStyleSheet(f"color: {WARNING_TEXT}")
        self.unreviewed_note.setVisible(False)
        self.selection_box.currentIndexChanged.connect(
            lambda: self.unreviewed_note.setVisible(self.selection_box.currentData() == "all"))
        self.task_box = QComboBox()
        for text, value in TASKS:
            self.task_box.addItem(text, value)
        self.task_box.setCurrentIndex(next(i for i, (_t, v) in enumerate(TASKS) if v == task) if task in
                                      ("thyroid", "polyp") else len(TASKS) - 1)
        self.folder_edit = QLineEdit(str(default_folder))
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        calibration = QLabel(document.calibrations[0].source if document.calibrations else
                             "none: lengths in pixels (Tools > Calibrate to draw one)")
        calibration.setWordWrap(True)
        calibration.setStyleSheet(f"color: {MUTED_TEXT if document.calibrations else WARNING_TEXT}")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Write report")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow(intro)
        form.addRow("Frames", self.selection_box)
        form.addRow("", self.unreviewed_note)
        form.addRow("Size thresholds", self.task_box)
        form.addRow("Calibration", calibration)
        form.addRow("Folder", folder_row)
        form.addRow(buttons)
        self.setMinimumWidth(520)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Write the report into folder", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def result_options(self) -> tuple[Path, ReportOptions]:
        options = ReportOptions(selection=self.selection_box.currentData(), task=self.task_box.currentData())
        return Path(self.folder_edit.text()).expanduser(), options
