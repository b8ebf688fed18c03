"""The video frame on the canvas, drawn from an RGB32 image.

Why not pyqtgraph's `ImageItem`: it rescales every pixel through its levels into a fresh ARGB buffer before
each new frame is drawn (~6 ms for a 1080p frame here). An RGB32 image (`prefetch.to_display`, made off the
GUI thread) is what Qt's raster engine draws fastest (~1 ms for 1080p scaled to the window). Only the exposed
part is painted, so a brush stroke repaints a few pixels of the frame, not all of it.
Image coordinates as everywhere on the canvas: pixel (col, row) covers [col, col+1) x [row, row+1).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QGraphicsItem, QGraphicsObject


class FrameItem(QGraphicsObject):
    def __init__(self, parent: QGraphicsItem | None = None):
        super().__init__(parent)
        self._pixels: np.ndarray | None = None  # (H, W, 4) B, G, R, 255: the memory the QImage reads
        self._image = QImage()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)  # paint only the exposed part

    @property
    def image(self) -> np.ndarray | None:
        """The frame shown, uint8 (H, W, 3) RGB (a view, no copy), or None."""
        return None if self._pixels is None else self._pixels[..., 2::-1]

    def set_frame(self, pixels: np.ndarray | None) -> None:
        """Show `pixels`, uint8 (H, W, 4) in RGB32 order (B, G, R, 255), C-contiguous; None clears. The array is
        kept, not copied: it must not change while shown."""
        old = (0, 0) if self._pixels is None else self._pixels.shape[:2]
        new = (0, 0) if pixels is None else pixels.shape[:2]
        if old != new:
            self.prepareGeometryChange()
        self._pixels = pixels
        if pixels is None:
            self._image = QImage()
        else:
            h, w = new
            self._image = QImage(pixels.data, w, h, 4 * w, QImage.Format.Format_RGB32)
        self.update()

    def boundingRect(self) -> QRectF:
        if self._pixels is None:
            return QRectF()
        h, w = self._pixels.shape[:2]
        return QRectF(0, 0, w, h)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        if self._image.isNull():
            return
        exposed = option.exposedRect.intersected(self.boundingRect()).toAlignedRect()
        if not exposed.isEmpty():
            painter.drawImage(QRectF(exposed), self._image, QRectF(exposed))
