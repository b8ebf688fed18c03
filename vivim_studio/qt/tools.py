"""Canvas tools and the transparent item that turns mouse input into image-coordinate gestures.

The editing itself belongs to the document model (`VideoDocument.stroke`, `add_polygon`, ...); this module only
says *where* the user pointed. `ToolSurface` lies over the image and grabs left-button presses while a
drawing tool is active (pyqtgraph's ViewBox then never sees them, so left-drag paints instead of panning), and
right-button presses too in the prompt tool (a right-click says "not lesion here"); in the pan tool, and for
the other buttons and the wheel, everything goes to the ViewBox (pan, zoom).
"""

from __future__ import annotations

from enum import Enum

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QGraphicsItem, QGraphicsObject, QGraphicsSceneHoverEvent, QGraphicsSceneMouseEvent


class Tool(str, Enum):
    BRUSH = "brush"
    ERASER = "eraser"
    LASSO = "lasso"
    LASSO_SUBTRACT = "lasso_subtract"
    PAN = "pan"
    PROMPT = "prompt"  # clicks and boxes that the model turns into a mask (`services.assist`)
    CALIBRATE = "calibrate"  # a line over a known length gives the millimetres per pixel (`calibration_tool`)

    @property
    def paints(self) -> bool:
        return self in (Tool.BRUSH, Tool.ERASER)

    @property
    def draws_outline(self) -> bool:
        return self in (Tool.LASSO, Tool.LASSO_SUBTRACT)


TOOL_COMMANDS = {Tool.BRUSH: "tool_brush", Tool.ERASER: "tool_eraser", Tool.LASSO: "tool_lasso",
                 Tool.LASSO_SUBTRACT: "tool_lasso_subtract", Tool.PAN: "tool_pan", Tool.PROMPT: "tool_prompt",
                 Tool.CALIBRATE: "tool_calibrate"}

MIN_BRUSH_RADIUS, MAX_BRUSH_RADIUS = 1, 200


def pixel_of(pos: QPointF) -> tuple[float, float]:
    """Scene position in image coordinates -> (x, y) pixel coordinates of the document (pixel centres are at
    integer positions there, at +0.5 here)."""
    return pos.x() - 0.5, pos.y() - 0.5


class ToolSurface(QGraphicsObject):
    """Invisible, covers the image (plus a margin, so strokes can start just outside the edge).

    Signals carry image pixel coordinates (x, y) as floats; `pressed_button` and `pressed_modifiers` say how the
    gesture in progress (or the last one) started.
    """

    gesture_started = Signal(float, float)
    gesture_moved = Signal(float, float)
    gesture_finished = Signal(float, float)
    hovered = Signal(float, float)  # pointer over the image (also while not pressing)
    left = Signal()  # pointer left the image

    MARGIN = 64

    def __init__(self, parent: QGraphicsItem | None = None):
        super().__init__(parent)
        self._size = (1, 1)
        self._active = False
        self._pressed = False
        self._buttons = Qt.MouseButton.LeftButton
        self.pressed_button = Qt.MouseButton.NoButton
        self.pressed_modifiers = Qt.KeyboardModifier.NoModifier
        self.setAcceptHoverEvents(True)
        self.set_active(False)

    def set_image_size(self, height: int, width: int) -> None:
        self.prepareGeometryChange()
        self._size = (height, width)

    def set_active(self, active: bool, right_button: bool = False) -> None:
        """Active: left-button gestures (and right-button ones with `right_button`) are ours. Inactive: all
        buttons go to the ViewBox."""
        self._active = active
        self._buttons = Qt.MouseButton.LeftButton | (Qt.MouseButton.RightButton if right_button
                                                     else Qt.MouseButton.NoButton)
        self.setAcceptedMouseButtons(self._buttons if active else Qt.MouseButton.NoButton)

    @property
    def pressed(self) -> bool:
        return self._pressed

    def boundingRect(self) -> QRectF:
        h, w = self._size
        return QRectF(-self.MARGIN, -self.MARGIN, w + 2 * self.MARGIN, h + 2 * self.MARGIN)

    def paint(self, painter, option, widget=None) -> None:  # invisible
        pass

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if not self._active or self._pressed or not (event.button() & self._buttons):
            event.ignore()
            return
        event.accept()
        self._pressed = True
        self.pressed_button, self.pressed_modifiers = event.button(), event.modifiers()
        self.gesture_started.emit(*pixel_of(event.pos()))

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        x, y = pixel_of(event.pos())
        self.hovered.emit(x, y)
        if self._pressed:
            self.gesture_moved.emit(x, y)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._pressed and event.button() == self.pressed_button:
            self._pressed = False
            self.gesture_finished.emit(*pixel_of(event.pos()))

    def hoverMoveEvent(self, event: QGraphicsSceneHoverEvent) -> None:
        self.hovered.emit(*pixel_of(event.pos()))

    def hoverLeaveEvent(self, event: QGraphicsSceneHoverEvent) -> None:
        self.left.emit()
