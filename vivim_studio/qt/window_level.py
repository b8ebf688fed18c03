"""Brightness and contrast (window / level) of the display only: the canvas shows the frame through the window;
the document's frames, the measurements and every export never see it (`document.display`).

    window = DisplayWindow()                          # level 128, width 256: the frames as they are
    window.set(100, 120); shown = window.apply(bgra)  # uint8 (H, W, 4) display image -> a new one
    dialog = WindowLevelDialog(window); dialog.show() # non-modal: sliders, Auto (1..99 %), Reset
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel, QPushButton, QSlider,
                               QWidget)

from ..document.display import FULL_WINDOW, MIN_WIDTH, window_from_percentiles, window_lut
from .theme import MUTED_TEXT

DISPLAY_ONLY = "Display only: the frames, measurements and exports are unchanged."


class DisplayWindow(QObject):
    """The window (level, width) the canvas shows frames through; `changed` when it moves."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.level, self.width = FULL_WINDOW
        self._lut: np.ndarray | None = None

    @property
    def is_identity(self) -> bool:
        return (self.level, self.width) == FULL_WINDOW

    def set(self, level: float, width: float) -> None:
        """ValueError (from `window_lut`) for a width below 1 or a value that is not finite."""
        level, width = float(level), float(width)
        if (level, width) == (self.level, self.width):
            return
        self._lut = None if (level, width) == FULL_WINDOW else window_lut(level, width)
        self.level, self.width = level, width
        self.changed.emit()

    def reset(self) -> None:
        self.set(*FULL_WINDOW)

    def auto(self, rgb: np.ndarray) -> None:
        """A window spanning the 1st to 99th percentile of the frame (uint8 (H, W, 3))."""
        self.set(*window_from_percentiles(rgb))

    def apply(self, display: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 4) B, G, R, 255 display image through the window: the same array when the window is the
        identity, else a new one (the alpha channel stays 255)."""
        if self._lut is None:
            return display
        shown = cv2.LUT(display, self._lut)
        shown[..., 3] = 255
        return shown

    def describe(self) -> str:
        return f"level {self.level:g}, width {self.width:g}"


def _slider(minimum: int, maximum: int) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(minimum, maximum)
    slider.setMinimumWidth(220)
    return slider


class WindowLevelDialog(QDialog):
    """Level and width sliders, Auto and Reset; a tool window that stays open beside the image."""

    def __init__(self, window: DisplayWindow, auto_source=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Brightness / contrast (display only)")
        self.window_level = window
        self.auto_source = auto_source  # () -> uint8 (H, W, 3) frame shown, or None
        self.level_slider, self.width_slider = _slider(0, 255), _slider(int(MIN_WIDTH), 512)
        self.level_label, self.width_label = QLabel(), QLabel()
        for label in (self.level_label, self.width_label):
            label.setMinimumWidth(label.fontMetrics().horizontalAdvance("000") + 6)
        note = QLabel(DISPLAY_ONLY)
        note.setWordWrap(True)
        note.setStyleSheet(f"color: {MUTED_TEXT}")
        self.auto_button = QPushButton("Auto (1–99 %)")
        self.auto_button.setToolTip("Spread the frame's 1st to 99th percentile over black to white")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Show the frames as they are (Shift+W)")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        form = QFormLayout(self)
        for title, slider, label in (("Brightness (level)", self.level_slider, self.level_label),
                                     ("Contrast (width)", self.width_slider, self.width_label)):
            row = QHBoxLayout()
            row.addWidget(slider, 1)
            row.addWidget(label)
            form.addRow(title, row)
        row = QHBoxLayout()
        row.addWidget(self.auto_button)
        row.addWidget(self.reset_button)
        row.addStretch(1)
        form.addRow(row)
        form.addRow(note)
        form.addRow(buttons)
        self._show_window()
        self.level_slider.valueChanged.connect(self._from_sliders)
        self.width_slider.valueChanged.connect(self._from_sliders)
        self.auto_button.clicked.connect(self._auto)
        self.reset_button.clicked.connect(window.reset)
        window.changed.connect(self._show_window)

    def _show_window(self) -> None:
        # (the sliders show the window; a level of 128.5 from Auto shows as 128, and is kept as it is)
        for slider, value in ((self.level_slider, self.window_level.level), (self.width_slider,
                                                                             self.window_level.width)):
            slider.blockSignals(True)
            slider.setValue(int(round(value)))
            slider.blockSignals(False)
        self.level_label.setText(f"{self.window_level.level:.0f}")
        self.width_label.setText(f"{self.window_level.width:.0f}")

    def _from_sliders(self) -> None:
        self.window_level.set(self.level_slider.value(), self.width_slider.value())

    def _auto(self) -> None:
        frame = self.auto_source() if self.auto_source is not None else None
        if frame is not None:
            self.window_level.auto(frame)
