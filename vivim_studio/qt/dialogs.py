"""Dialogs: export options, accept a range, fine-tune settings, the shortcut cheat sheet, about.

Each dialog only collects choices; the window does the work (in a worker thread), so every flow can also be
driven without a dialog (tests, scripts).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QTextBrowser,
                               QVBoxLayout, QWidget)

from ..document import FrameStatus, VideoDocument
from ..document.export import ExportOptions
from ..document.exceptions import ExportError
from ..document.export_dicom_seg import PRIVACY_NOTE, require_dicom_source
from ..document.export_targets import safe_video_id
from ..services.finetune import MIN_FRAMES_TO_MEASURE, FinetuneLimits, default_limits, split_heldout
from .shortcuts import cheat_sheet_html


def _buttons(dialog: QDialog, ok_text: str) -> QDialogButtonBox:
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    buttons.button(QDialogButtonBox.StandardButton.Ok).setText(ok_text)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    return buttons


class ExportDialog(QDialog):
    """Format (VTUS by default), which frames (the reviewed ones by default; unreviewed proposals only when
    asked for explicitly), split, video id, size, output folder. DICOM-SEG is offered for DICOM sources only,
    and says that it carries the source's patient and study identifiers."""

    FORMATS = (("VTUS layout: frames + masks (for vivim-core finetune)", "vtus"),
               ("PNG masks only", "png"), ("NIfTI volume (.nii.gz)", "nifti"),
               ("DICOM-SEG (for PACS and DICOM viewers)", "dicom-seg"))
    SELECTIONS = (("Frames I edited or accepted", "reviewed"), ("Accepted frames only", "accepted"))
    UNREVIEWED_TEXT = "Include unreviewed proposals (every frame)"
    UNREVIEWED_HELP = ("Also export the frames nobody reviewed, with the model's masks as they are. They are not "
                       "ground truth: fine-tuning on them teaches the model its own mistakes. The manifest lists "
                       "which frames were reviewed.")

    def __init__(self, document: VideoDocument, default_folder: Path, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export masks")
        counts = document.status_counts()
        form = QFormLayout()
        self.format_box = QComboBox()
        for text, value in self.FORMATS:
            self.format_box.addItem(text, value)
        self.dicom_seg_problem = dicom_seg_problem(document)
        self.format_note = QLabel()
        self.format_note.setWordWrap(True)
        self.format_note.setStyleSheet("color: #e0a040")
        if self.dicom_seg_problem is not None:  # listed, greyed, with the reason: the user learns why not
            item = self.format_box.model().item(self.format_box.findData("dicom-seg"))
            item.setEnabled(False)
            item.setToolTip(self.dicom_seg_problem)
        self.selection_box = QComboBox()
        for text, value in self.SELECTIONS:
            self.selection_box.addItem(text, value)
        self.unreviewed_check = QCheckBox(self.UNREVIEWED_TEXT)
        self.unreviewed_check.setToolTip(self.UNREVIEWED_HELP)
        self.unreviewed_note = QLabel(self.UNREVIEWED_HELP)
        self.unreviewed_note.setWordWrap(True)
        self.unreviewed_note.setStyleSheet("color: #e0a040")
        self.unreviewed_note.setVisible(False)
        self.unreviewed_check.toggled.connect(self.unreviewed_note.setVisible)
        self.unreviewed_check.toggled.connect(lambda on: self.selection_box.setEnabled(not on))
        self.split_edit = QLineEdit("Train")
        identity = document.workspace.identity.digest if document.workspace is not None else None  # (no hashing here)
        self.suggested_video_id = safe_video_id(document.source.video_id, identity)
        self.video_id_edit = QLineEdit(self.suggested_video_id)
        self.video_id_edit.setToolTip("The video's folder name in the export. Left as suggested, a video whose name "
                                      "another video's export already uses gets a short hash appended.")
        self.resize_check = QCheckBox("Resize to")
        self.width_spin, self.height_spin = QSpinBox(), QSpinBox()
        for spin, value in ((self.width_spin, document.frame_size[1]), (self.height_spin, document.frame_size[0])):
            spin.setRange(16, 8192)
            spin.setValue(value)
            spin.setEnabled(False)
        self.resize_check.toggled.connect(self.width_spin.setEnabled)
        self.resize_check.toggled.connect(self.height_spin.setEnabled)
        size_row = QHBoxLayout()
        for widget in (self.resize_check, self.width_spin, QLabel("x"), self.height_spin):
            size_row.addWidget(widget)
        self.folder_edit = QLineEdit(str(default_folder))
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        form.addRow("Format", self.format_box)
        form.addRow("", self.format_note)
        form.addRow("Frames", self.selection_box)
        form.addRow("", self.unreviewed_check)
        form.addRow("", self.unreviewed_note)
        form.addRow("Split (VTUS)", self.split_edit)
        form.addRow("Video id", self.video_id_edit)
        form.addRow("Size", size_row)
        form.addRow("Output folder", folder_row)
        summary = QLabel(" · ".join(f"{n} {s.value}" for s, n in counts.items()))
        summary.setStyleSheet("color: #a0a6b0")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(summary)
        layout.addWidget(_buttons(self, "Export"))
        self.format_box.currentIndexChanged.connect(self._show_format)
        self._show_format()

    def _show_format(self) -> None:
        """DICOM-SEG: native size only, no split; say that it carries the patient and study identifiers."""
        seg = self.format_box.currentData() == "dicom-seg"
        if seg:
            self.resize_check.setChecked(False)
            text = f"Note: {PRIVACY_NOTE}. It is the one export that copies them."
        elif self.dicom_seg_problem is not None:
            text = f"DICOM-SEG is not available: {self.dicom_seg_problem}"
        else:
            text = ("DICOM-SEG is available for this DICOM cine; it carries the source's patient and study "
                    "identifiers (the one export that copies them).")
        self.format_note.setText(text)
        self.format_note.setStyleSheet(f"color: {'#e0a040' if seg or self.dicom_seg_problem is None else '#a0a6b0'}")
        self.resize_check.setEnabled(not seg)
        self.split_edit.setEnabled(self.format_box.currentData() == "vtus")
    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into folder", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def result_options(self) -> tuple[Path, ExportOptions]:
        size = (self.height_spin.value(), self.width_spin.value()) if self.resize_check.isChecked() else None
        selection = "all" if self.unreviewed_check.isChecked() else self.selection_box.currentData()
        video_id = self.video_id_edit.text().strip()
        options = ExportOptions(format=self.format_box.currentData(), split=self.split_edit.text().strip() or "Train",
                                selection=selection, size=size,
                                video_id=None if video_id in ("", self.suggested_video_id) else video_id)
        return Path(self.folder_edit.text()).expanduser(), options


def dicom_seg_problem(document: VideoDocument) -> str | None:
    """Why this video cannot be exported as DICOM-SEG (None: it can), naming the formats that work."""
    try:
        require_dicom_source(document)
    except ExportError as exc:
        return str(exc)
    return None


class AcceptRangeDialog(QDialog):
    """Frames in 1-based numbers, as shown on the timeline."""

    def __init__(self, num_frames: int, current: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Accept proposals in a range")
        self.first, self.last = QSpinBox(), QSpinBox()
        for spin, value in ((self.first, current + 1), (self.last, num_frames)):
            spin.setRange(1, num_frames)
            spin.setValue(value)
        self.include_edited = QCheckBox("Also accept frames I edited")
        self.include_edited.setChecked(True)
        form = QFormLayout(self)
        form.addRow(QLabel("Accept every proposed frame (the model's masks, as they are) in:"))
        form.addRow("From frame", self.first)
        form.addRow("To frame", self.last)
        form.addRow(self.include_edited)
        form.addRow(_buttons(self, "Accept"))

    def frames(self) -> range:
        first, last = sorted((self.first.value(), self.last.value()))
        return range(first - 1, last)


class FinetuneDialog(QDialog):
    def __init__(self, document: VideoDocument, checkpoint_name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Fine-tune on my corrections")
        corrected = document.frames_with_status(FrameStatus.EDITED, FrameStatus.ACCEPTED)
        trained, heldout = split_heldout(corrected)
        quality = (f"every 4th of them (<b>{len(heldout)}</b>) is held out: the quality it reports is measured on "
                   f"frames it did not train on." if heldout else
                   f"with fewer than {MIN_FRAMES_TO_MEASURE}, all train and its quality cannot be measured yet.")
        text = QLabel(f"Starts from <b>{checkpoint_name}</b> and trains on <b>{len(trained)}</b> of the "
                      f"{len(corrected)} frame(s) you edited or accepted; {quality} When it finishes, the new model "
                      f"becomes this video's model and the frames you have not touched are re-proposed with it "
                      f"(edited and accepted frames are never overwritten).")
        text.setWordWrap(True)
        defaults = default_limits()
        self.steps = QSpinBox()
        self.steps.setRange(10, 5000)
        self.steps.setValue(defaults.max_steps)
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0.5, 240)
        self.minutes.setValue(defaults.max_minutes)
        self.minutes.setSuffix(" min")
        form = QFormLayout(self)
        form.addRow(text)
        form.addRow("At most (steps)", self.steps)
        form.addRow("At most (time)", self.minutes)
        form.addRow(_buttons(self, "Fine-tune"))

    def choice(self) -> FinetuneLimits:
        return FinetuneLimits(self.steps.value(), self.minutes.value())


class TextDialog(QDialog):
    def __init__(self, title: str, html: str, parent: QWidget | None = None, size: tuple[int, int] = (560, 640)):
        super().__init__(parent)
        self.setWindowTitle(title)
        browser = QTextBrowser()
        browser.setOpenExternalLinks(True)
        browser.setHtml(html)
        layout = QVBoxLayout(self)
        layout.addWidget(browser)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(*size)


def shortcuts_dialog(parent: QWidget | None = None) -> TextDialog:
    return TextDialog("Keyboard shortcuts", cheat_sheet_html(), parent)


def about_dialog(log_file: Path | None, parent: QWidget | None = None) -> TextDialog:
    from .. import __version__

    log = f"<p>Log file (for bug reports): <code>{log_file}</code></p>" if log_file else ""
    html = (f"<h3>Vivim Studio {__version__}</h3><p>Review and correct Vivim's lesion mask proposals for "
            f"ultrasound and endoscopy videos. Every change is saved at once in the video's workspace "
            f"(<code>&lt;video&gt;.vivim</code>).</p>{log}<p>Apache-2.0. For research use; not a medical device.</p>")
    return TextDialog("About Vivim Studio", html, parent, (480, 300))
