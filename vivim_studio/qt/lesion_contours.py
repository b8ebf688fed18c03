"""Each lesion's boundary in its own colour (`theme.lesion_color`), over a dark rim, the active lesion's line
wider: with two nodules on the image, the expert sees at once which one the brush will change.

`LesionContours` holds one path item per lesion id shown, traced with OpenCV inside the label map's bounding
box (`overlay.contours_to_path`), with cosmetic pens (constant width on screen at any zoom).
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsObject, QGraphicsPathItem

from ..document.lesions import present_ids
from .overlay import Box, bounding_box, contours_to_path
from .theme import LESION_RIM, lesion_color, qcolor

ACTIVE_WIDTH, OTHER_WIDTH, RIM_EXTRA = 2.5, 1.5, 1.5  # screen pixels


def _pen(rgb: tuple[int, int, int], width: float) -> QPen:
    pen = QPen(qcolor(rgb), width)
    pen.setCosmetic(True)
    pen.setJoinStyle(Qt.PenJoinStyle.BevelJoin)  # round joins cost Qt's stroker ~10x more, invisible at 2 px
    return pen


class _RimmedPath(QGraphicsPathItem):
    """A path drawn twice: a dark rim, then its colour on top."""

    def __init__(self, parent: QGraphicsItem):
        super().__init__(parent)
        self.rim = _pen(LESION_RIM, OTHER_WIDTH + RIM_EXTRA)

    def style(self, rgb: tuple[int, int, int], width: float) -> None:
        self.rim = _pen(LESION_RIM, width + RIM_EXTRA)
        self.setPen(_pen(rgb, width))

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setPen(self.rim)
        painter.drawPath(self.path())
        super().paint(painter, option, widget)


class LesionContours(QGraphicsObject):
    """The outlines of every lesion of a label map (`set_labels`)."""

    def __init__(self, parent: QGraphicsItem | None = None):
        super().__init__(parent)
        self._items: dict[int, _RimmedPath] = {}
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)

    def boundingRect(self) -> QRectF:
        return QRectF()

    def paint(self, painter, option, widget=None) -> None:  # the children draw
        pass

    def set_labels(self, labels: np.ndarray | None, box: Box | None = None, active: int = 1) -> None:
        """Trace each lesion of the uint8 (H, W) label map (bool: lesion 1; None: nothing); `box`: where its
        pixels are (default: found), padded by one pixel so the trace is the same as on the whole frame."""
        paths: dict[int, QPainterPath] = {}
        if labels is not None:
            labels = labels.view(np.uint8)
            box = bounding_box(labels) if box is None else box
        if labels is not None and box is not None:
            h, w = labels.shape
            x0, y0, x1, y1 = max(box[0] - 1, 0), max(box[1] - 1, 0), min(box[2] + 1, w), min(box[3] + 1, h)
            crop = labels[y0:y1, x0:x1]
            for lesion in present_ids(crop):
                piece = np.ascontiguousarray(crop == lesion).view(np.uint8)
                contours, _ = cv2.findContours(piece, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE, offset=(x0, y0))
                if contours:
                    paths[lesion] = contours_to_path(contours)
        for lesion in [k for k in self._items if k not in paths]:
            item = self._items.pop(lesion)
            item.setParentItem(None)
            if item.scene() is not None:
                item.scene().removeItem(item)
        for lesion, path in paths.items():
            item = self._items.get(lesion)
            if item is None:
                item = self._items[lesion] = _RimmedPath(self)
            item.style(lesion_color(lesion), ACTIVE_WIDTH if lesion == active else OTHER_WIDTH)
            item.setZValue(1 if lesion == active else 0)  # the active outline over a neighbour's
            item.setPath(path)

    def lesions(self) -> list[int]:
        """The ids outlined now (tests)."""
        return sorted(self._items)

    def pen_of(self, lesion: int) -> QPen:
        return self._items[lesion].pen()

    def path(self) -> QPainterPath:
        """Every outline, in one path (tests)."""
        whole = QPainterPath()
        for item in self._items.values():
            whole.addPath(item.path())
        return whole
