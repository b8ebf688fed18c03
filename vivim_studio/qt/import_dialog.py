"""File > Import masks...: which masks to bring in (a folder of PNGs, a VTUS `_GT` case folder or lesion folders,
or a NIfTI volume) and how to mark them. It only collects the choices; the window runs
`document.mask_import.import_masks`, the code of `vivim-studio import`, in its worker."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget)

from ..document.mask_import import NIFTI_SUFFIXES

STATUSES = (("Edited (to review)", "edited"), ("Accepted (already reviewed ground truth)", "accepted"))
EXPLANATION = ("Masks named like the video's frames or by frame number (0001.png, as Vivim Studio exports "
               "them): binary masks are lesion 1, label maps keep their lesion ids; lesion<k>/ folders give "
               "lesion k. A NIfTI volume holds one slice per frame. Everything is checked before anything is "
               "written, and the masks' folder is only read. Edit > Undo on any imported frame undoes the "
               "whole import.")


class ImportMasksDialog(QDialog):
    def __init__(self, start_folder: Path | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Import masks")
        self.start_folder = start_folder
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("a folder of PNG masks, or a .nii / .nii.gz file")
        folder_button, file_button = QPushButton("Folder..."), QPushButton("NIfTI file...")
        folder_button.clicked.connect(self._choose_folder)
        file_button.clicked.connect(self._choose_file)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(folder_button)
        row.addWidget(file_button)
        self.status_box = QComboBox()
        for text, value in STATUSES:
            self.status_box.addItem(text, value)
        self.replace_check = QCheckBox("Also replace frames I already edited or accepted")
        self.replace_check.setToolTip("Left off, frames a human edited or accepted keep their masks")
        form = QFormLayout()
        form.addRow("Masks", row)
        form.addRow("Mark them", self.status_box)
        form.addRow("", self.replace_check)
        note = QLabel(EXPLANATION)
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Import")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        self.problem = QLabel()
        self.problem.setStyleSheet("color: #e0a040")
        self.problem.setVisible(False)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)
        self.setMinimumWidth(560)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of masks", str(self.start_folder or ""))
        if folder:
            self.path_edit.setText(folder)

    def _choose_file(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "NIfTI volume of masks", str(self.start_folder or ""),
                                              "NIfTI (*.nii *.nii.gz)")
        if name:
            self.path_edit.setText(name)

    def _accept(self) -> None:
        path = Path(self.path_edit.text().strip())
        if not self.path_edit.text().strip():
            problem = "Choose a folder of masks or a NIfTI file."
        elif path.is_dir() or (path.is_file() and path.name.lower().endswith(NIFTI_SUFFIXES)):
            problem = None
        elif path.exists():
            problem = f"{path.name} is neither a folder nor a .nii / .nii.gz file."
        else:
            problem = f"{path} does not exist."
        self.problem.setText(problem or "")
        self.problem.setVisible(problem is not None)
        if problem is None:
            self.accept()

    def choices(self) -> tuple[Path, str, bool]:
        """(masks path, status "edited" or "accepted", replace reviewed frames)."""
        return Path(self.path_edit.text().strip()), self.status_box.currentData(), self.replace_check.isChecked()
