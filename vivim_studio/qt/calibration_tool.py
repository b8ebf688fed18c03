"""The Calibrate tool: the user drags a line over a known length on the image (the scanner's depth ruler, say)
and types that length in millimetres; the document keeps it in the workspace (`set_user_calibration`).

    overlay = CalibrationOverlay(); overlay.add_to(viewbox, z)     # the line being drawn, and the saved one
    overlay.show_drawing((x0, y0), (x1, y1))                        # image pixel coordinates (centres at integers)
    overlay.show_saved(document.user_calibration)                   # the line the calibration came from
    dialog = CalibrationDialog(pixels=312.4)                        # asks for the length; .length_mm()

The saved line is shown while the tool is active, with its length, so the user can check it lies on the ruler.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QLineF, QPointF, Qt
from PySide6.QtGui import QFont, QPen
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QGraphicsLineItem,
                               QGraphicsSimpleTextItem, QLabel, QWidget)

from ..document.calibration import MAX_MM, MIN_MM, UserCalibration
from .theme import CALIBRATION_LINE, CALIPER_RIM, qcolor

MIN_LINE_PX = 10  # the document refuses shorter lines (too imprecise): the dialog is not even opened


def line_length(start: tuple[float, float], end: tuple[float, float]) -> float:
    return math.hypot(end[0] - start[0], end[1] - start[1])


def _pen(rgb, width: float, style=Qt.PenStyle.SolidLine, alpha: int = 255) -> QPen:
    pen = QPen(qcolor(rgb, alpha), width, style)
    pen.setCosmetic(True)  # the same width on screen at any zoom
    pen.setCapStyle(Qt.PenCapStyle.FlatCap)
    return pen


class CalibrationOverlay:
    """Two lines on the canvas: `drawing` (follows the mouse) and `saved` (the document's drawn calibration),
    each a magenta line over a dark rim so it shows on bright and dark tissue, the saved one labelled."""

    def __init__(self):
        self.drawing_rim, self.drawing = QGraphicsLineItem(), QGraphicsLineItem()
        self.saved_rim, self.saved = QGraphicsLineItem(), QGraphicsLineItem()
        for rim, line, style in ((self.drawing_rim, self.drawing, Qt.PenStyle.DashLine),
                                 (self.saved_rim, self.saved, Qt.PenStyle.SolidLine)):
            rim.setPen(_pen(CALIPER_RIM, 4.0, alpha=170))
            line.setPen(_pen(CALIBRATION_LINE, 2.0, style))
        self.label = QGraphicsSimpleTextItem()
        self.label.setBrush(qcolor(CALIBRATION_LINE))
        self.label.setPen(_pen(CALIPER_RIM, 0.6))
        font = QFont()
        font.setBold(True)
        self.label.setFont(font)
        self.label.setFlag(self.label.GraphicsItemFlag.ItemIgnoresTransformations)  # readable at any zoom
        self._items = (self.drawing_rim, self.drawing, self.saved_rim, self.saved, self.label)
        self._saved_wanted = False
        self.hide_all()

    def add_to(self, viewbox, z: float) -> None:
        for offset, item in enumerate(self._items):
            item.setZValue(z + offset * 0.01)
            viewbox.addItem(item, ignoreBounds=True)

    def hide_all(self) -> None:
        for item in self._items:
            item.setVisible(False)

    @staticmethod
    def _scene_line(start, end) -> QLineF:
        return QLineF(QPointF(start[0] + 0.5, start[1] + 0.5), QPointF(end[0] + 0.5, end[1] + 0.5))

    def show_drawing(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        line = self._scene_line(start, end)
        for item in (self.drawing_rim, self.drawing):
            item.setLine(line)
            item.setVisible(True)

    def end_drawing(self) -> None:
        self.drawing_rim.setVisible(False)
        self.drawing.setVisible(False)

    def show_saved(self, drawn: UserCalibration | None, visible: bool = True) -> None:
        """Show the line the calibration was drawn on (None: nothing), labelled with its length in mm."""
        self._saved_wanted = drawn is not None
        if drawn is not None:
            line = self._scene_line(drawn.start, drawn.end)
            self.saved_rim.setLine(line)
            self.saved.setLine(line)
            self.label.setText(f"{drawn.length_mm:g} mm")
            self.label.setPos(line.center())
        self.set_saved_visible(visible)

    def set_saved_visible(self, visible: bool) -> None:
        for item in (self.saved_rim, self.saved, self.label):
            item.setVisible(visible and self._saved_wanted)

    @property
    def drawn_line(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """The line being drawn, (start, end) in image pixel coordinates, while it is shown (tests)."""
        if not self.drawing.isVisible():
            return None
        line = self.drawing.line()
        return (line.x1() - 0.5, line.y1() - 0.5), (line.x2() - 0.5, line.y2() - 0.5)


class CalibrationDialog(QDialog):
    """How long is the line just drawn, in millimetres? Shows the millimetres per pixel it would give."""

    def __init__(self, pixels: float, previous_mm: float | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Calibrate: length of the line")
        self.pixels = float(pixels)
        explanation = QLabel(f"The line you drew is <b>{self.pixels:.1f} pixels</b> long. How long is it in the "
                             f"body? Read it on the scanner's depth ruler (centimetre marks) or another scale in "
                             f"the image; a longer line gives a more precise calibration.<br>Saved in the video's "
                             f"workspace; Tools &gt; Remove drawn calibration takes it back.")
        explanation.setWordWrap(True)
        self.length_spin = QDoubleSpinBox()
        self.length_spin.setDecimals(2)
        # one step below the plausible range: "type the length" until the user does (no guessed default)
        lowest = max(MIN_MM * self.pixels, 0.01)
        self.length_spin.setRange(lowest - 0.01, MAX_MM * self.pixels)
        self.length_spin.setSpecialValueText("type the length")
        self.length_spin.setSuffix(" mm")
        self.length_spin.setValue(previous_mm if previous_mm is not None else self.length_spin.minimum())
        self.result_label = QLabel()
        self.length_spin.valueChanged.connect(self._show_result)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Calibrate")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow(explanation)
        form.addRow("Length of the line", self.length_spin)
        form.addRow("Gives", self.result_label)
        form.addRow(buttons)
        self.setMinimumWidth(440)
        self._show_result()

    def _show_result(self) -> None:
        typed = self.length_spin.value() > self.length_spin.minimum()
        self.ok_button.setEnabled(typed)
        self.result_label.setText(f"{self.length_mm() / self.pixels:.4g} mm per pixel" if typed else "—")

    def length_mm(self) -> float:
        return float(self.length_spin.value())
