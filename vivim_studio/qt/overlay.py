"""The mask drawn over the frame: a coloured fill (its own opacity) and the boundary contour.

`MaskFillItem` keeps an ARGB image whose pixels live in a numpy array shared with the QImage: a brush
stroke rewrites only the touched rectangle of that array and repaints only that rectangle (no full-frame
conversion per mouse move, which is what an `ImageItem.setImage` would cost at 1080p). A new mask rewrites
only its bounding box and the box drawn before (a lesion covers a small part of a frame; clearing and
refilling a whole 1080p ARGB buffer took ~8 ms per frame change).
`MaskContourItem` draws the boundary as vector paths (OpenCV contours, traced inside the mask's bounding box)
with a cosmetic pen, so it stays a crisp 2-pixel line at any zoom.

Both sit in image coordinates: pixel (col, row) covers [col, col+1) x [row, row+1), like pyqtgraph's ImageItem.
"""

from __future__ import annotations

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsObject, QGraphicsPathItem

from .theme import MASK_CONTOUR, MASK_FILL, qcolor

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, end-exclusive


def bounding_box(mask: np.ndarray | None) -> Box | None:
    """The smallest box holding every set pixel of a bool (H, W) mask; None when it is empty."""
    if mask is None:
        return None
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    return None if w == 0 else (x, y, x + w, y + h)


def union(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


class MaskFillItem(QGraphicsObject):
    """The mask as a flat colour; `setOpacity` sets the fill opacity (the slider)."""

    def __init__(self, color: tuple[int, int, int] = MASK_FILL, parent: QGraphicsItem | None = None):
        super().__init__(parent)
        # Format_ARGB32_Premultiplied is little-endian B, G, R, A in memory; opaque, so premultiplying is a no-op
        self._pixel = np.array([color[2], color[1], color[0], 255], np.uint8)
        self._pixel32 = self._pixel.view(np.uint32)[0]  # the same pixel as one 32-bit word
        self._argb = np.zeros((1, 1, 4), np.uint8)
        self._image = self._wrap(self._argb)
        self._drawn: Box | None = None  # where set pixels may be (everything outside is clear)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)  # paint only the exposed part

    @staticmethod
    def _wrap(argb: np.ndarray) -> QImage:
        h, w = argb.shape[:2]
        return QImage(argb.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied)

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self._argb.shape[1], self._argb.shape[0])

    def set_mask(self, mask: np.ndarray | None, shape: tuple[int, int], box: Box | None = None) -> None:
        """Show the whole bool (H, W) mask (None: empty). `box`: its `bounding_box`, when the caller has it."""
        if self._argb.shape[:2] != tuple(shape):
            self.prepareGeometryChange()
            self._argb = np.zeros((*shape, 4), np.uint8)
            self._image = self._wrap(self._argb)  # the QImage reads self._argb's memory: keep both together
            self._drawn = None
            self.update()
        before = self._drawn
        if before is not None:
            x0, y0, x1, y1 = before
            self._argb[y0:y1, x0:x1] = 0
        self._drawn = None if mask is None else box if box is not None else bounding_box(mask)
        if self._drawn is not None:
            self._write(mask, self._drawn)
        changed = union(before, self._drawn)  # nothing outside the old and new boxes changed: repaint those only
        if changed is not None:
            x0, y0, x1, y1 = changed
            self.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def update_region(self, mask: np.ndarray, box: Box) -> None:
        """Redraw only `box` (x0, y0, x1, y1), end-exclusive, from `mask` (live brush strokes)."""
        x0, y0, x1, y1 = box
        self._write(mask, box)
        self._drawn = union(self._drawn, box)
        self.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def _write(self, mask: np.ndarray, box: Box) -> None:
        x0, y0, x1, y1 = box
        words = self._argb.view(np.uint32)[..., 0]  # (H, W) 32-bit pixels: one multiply writes the region
        np.multiply(mask[y0:y1, x0:x1], self._pixel32, out=words[y0:y1, x0:x1])

    def pixel_is_set(self, x: int, y: int) -> bool:
        """For tests: whether the fill covers pixel (x, y)."""
        return bool(self._argb[y, x, 3])

    def paint(self, painter: QPainter, option, widget=None) -> None:
        if self._drawn is None:
            return  # nothing set: a transparent image
        x0, y0, x1, y1 = self._drawn  # outside it every pixel is clear: drawing it would cost ~2 ms at 1080p
        exposed = option.exposedRect.intersected(QRectF(x0, y0, x1 - x0, y1 - y0)).toAlignedRect()
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
        pen.setJoinStyle(Qt.PenJoinStyle.BevelJoin)  # round joins made Qt's stroker ~10x slower (4-10 ms a paint
        # for a lesion's outline at 1080p); at 2 px the two look the same
        self.setPen(pen)

    def set_color(self, color: tuple[int, int, int]) -> None:
        pen = self.pen()
        pen.setColor(qcolor(color))
        self.setPen(pen)

    def set_mask(self, mask: np.ndarray | None, box: Box | None = None) -> None:
        """Trace the bool (H, W) mask's boundary; `box`: where its pixels are (default: found), padded by one
        pixel here so the trace is the same as on the whole frame."""
        path = QPainterPath()
        box = bounding_box(mask) if box is None else box
        if mask is not None and box is not None:
            h, w = mask.shape
            x0, y0, x1, y1 = max(box[0] - 1, 0), max(box[1] - 1, 0), min(box[2] + 1, w), min(box[3] + 1, h)
            crop = np.ascontiguousarray(mask[y0:y1, x0:x1].view(np.uint8))
            contours, _ = cv2.findContours(crop, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE, offset=(x0, y0))
            if contours:
                path = contours_to_path(contours)
        self.setPath(path)


def contours_to_path(contours) -> QPainterPath:
    """OpenCV contours -> one path of closed outlines through pixel centres, built from numpy arrays in one call
    (pyqtgraph's `arrayToQPath`; a Python loop of `lineTo` took ~2 ms for a lesion's outline)."""
    closed = [np.concatenate([c.reshape(-1, 2), c.reshape(-1, 2)[:1]]) for c in contours]  # back to the start
    points = np.concatenate(closed).astype(np.float64) + 0.5
    connect = np.ones(len(points), bool)
    connect[np.cumsum([len(c) for c in closed]) - 1] = False  # no segment from one outline to the next
    return pg.arrayToQPath(points[:, 0], points[:, 1], connect=connect)
