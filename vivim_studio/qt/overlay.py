"""The mask drawn over the frame: a coloured fill (its own opacity) and the boundary contour.

`MaskFillItem` keeps an ARGB image whose pixels live in a numpy array shared with the QImage: a brush
stroke rewrites only the touched rectangle of that array and repaints only that rectangle (no full-frame
conversion per mouse move, which is what an `ImageItem.setImage` would cost at 1080p).
`MaskContourItem` draws the boundary as vector paths (OpenCV contours) with a cosmetic pen, so it stays a
crisp 2-pixel line at any zoom.

Both sit in image coordinates: pixel (col, row) covers [col, col+1) x [row, row+1), like pyqtgraph's ImageItem.
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsObject, QGraphicsPathItem

from .theme import MASK_CONTOUR, MASK_FILL, qcolor


class MaskFillItem(QGraphicsObject):
    """The mask as a flat colour; `setOpacity` sets the fill opacity (the slider)."""

    def __init__(self, color: tuple[int, int, int] = MASK_FILL, parent: QGraphicsItem | None = None):
        super().__init__(parent)
        # Format_ARGB32_Premultiplied is little-endian B, G, R, A in memory; opaque, so premultiplying is a no-op
        self._pixel = np.array([color[2], color[1], color[0], 255], np.uint8)
        self._argb = np.zeros((1, 1, 4), np.uint8)
        self._image = self._wrap(self._argb)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)  # paint only the exposed part

    @staticmethod
    def _wrap(argb: np.ndarray) -> QImage:
        h, w = argb.shape[:2]
        return QImage(argb.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied)

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self._argb.shape[1], self._argb.shape[0])

    def set_mask(self, mask: np.ndarray | None, shape: tuple[int, int]) -> None:
        """Show the whole bool (H, W) mask (None: empty)."""
        if self._argb.shape[:2] != tuple(shape):
            self.prepareGeometryChange()
            self._argb = np.zeros((*shape, 4), np.uint8)
            self._image = self._wrap(self._argb)  # the QImage reads self._argb's memory: keep both together
        else:
            self._argb[...] = 0
        if mask is not None:
            self._argb[mask] = self._pixel
        self.update()

    def update_region(self, mask: np.ndarray, box: tuple[int, int, int, int]) -> None:
        """Redraw only `box` (x0, y0, x1, y1), end-exclusive, from `mask` (live brush strokes)."""
        x0, y0, x1, y1 = box
        region = self._argb[y0:y1, x0:x1]
        region[...] = 0
        region[mask[y0:y1, x0:x1]] = self._pixel
        self.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def pixel_is_set(self, x: int, y: int) -> bool:
        """For tests: whether the fill covers pixel (x, y)."""
        return bool(self._argb[y, x, 3])

    def paint(self, painter: QPainter, option, widget=None) -> None:
        exposed = option.exposedRect.intersected(self.boundingRect()).toAlignedRect()
        if exposed.isEmpty():
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # crisp pixels when zoomed in
        painter.drawImage(QRectF(exposed), self._image, QRectF(exposed))


class MaskContourItem(QGraphicsPathItem):
    """The mask's boundary as a path (outer outlines and hole outlines)."""

    def __init__(self, color: tuple[int, int, int] = MASK_CONTOUR, width: float = 2.0,
                 parent: QGraphicsItem | None = None):
        super().__init__(parent)
        pen = QPen(qcolor(color), width)
        pen.setCosmetic(True)  # width in screen pixels at any zoom
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        self.setPen(pen)

    def set_color(self, color: tuple[int, int, int]) -> None:
        pen = self.pen()
        pen.setColor(qcolor(color))
        self.setPen(pen)

    def set_mask(self, mask: np.ndarray | None) -> None:
        path = QPainterPath()
        if mask is not None and mask.any():
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
            for contour in contours:
                points = contour.reshape(-1, 2) + 0.5  # through pixel centres
                path.moveTo(QPointF(*points[0]))
                for x, y in points[1:]:
                    path.lineTo(QPointF(x, y))
                path.closeSubpath()
        self.setPath(path)
