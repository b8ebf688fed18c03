"""The mask drawn over the frame: a coloured fill (its own opacity) and the boundary contour.

The fill shows a label map (uint8 (H, W), 0 background, 1..N lesion ids): each lesion in its palette colour
(`theme.lesion_color`), the active lesion opaque and the others paler (a 256-entry look-up table of 32-bit
pixels). `MaskFillItem` keeps an ARGB image whose pixels live in a numpy array shared with the QImage: a brush
stroke rewrites only the touched rectangle of that array and repaints only that rectangle (no full-frame
conversion per mouse move, which is what an `ImageItem.setImage` would cost at 1080p). A new mask rewrites
only its bounding box and the box drawn before (a lesion covers a small part of a frame; clearing and
refilling a whole 1080p ARGB buffer took ~8 ms per frame change).
The boundaries are vector paths (`contours_to_path`, drawn per lesion by `lesion_contours.LesionContours`) with a
cosmetic pen, so they stay crisp lines at any zoom.

Both sit in image coordinates: pixel (col, row) covers [col, col+1) x [row, row+1), like pyqtgraph's ImageItem.
"""

from __future__ import annotations

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter, QPainterPath
from PySide6.QtWidgets import QGraphicsItem, QGraphicsObject

from .theme import lesion_color

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, end-exclusive
OTHER_LESION_ALPHA = 0.55  # a lesion other than the active one: its fill this much as strong


def lesion_lut(active: int) -> np.ndarray:
    """uint32 (256,): each label's premultiplied ARGB pixel (B, G, R, A in memory), 0 for the background."""
    lut = np.zeros((256, 4), np.uint8)
    for k in range(1, 256):
        alpha = 1.0 if k == active else OTHER_LESION_ALPHA
        r, g, b = lesion_color(k)
        lut[k] = (round(b * alpha), round(g * alpha), round(r * alpha), round(255 * alpha))
    return lut.view(np.uint32)[:, 0]


def bounding_box(mask: np.ndarray | None) -> Box | None:
    """The smallest box holding every set pixel of a bool (H, W) mask or non-zero label; None when empty."""
    if mask is None:
        return None
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    return None if w == 0 else (x, y, x + w, y + h)


def union(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


class MaskFillItem(QGraphicsObject):
    """The lesions as flat colours; `setOpacity` sets the fill opacity (the slider)."""

    def __init__(self, active: int = 1, parent: QGraphicsItem | None = None):
        super().__init__(parent)
        # Format_ARGB32_Premultiplied is little-endian B, G, R, A in memory: one 32-bit word per pixel
        self.active = active
        self._lut = lesion_lut(active)
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

    def set_active(self, active: int) -> None:
        """Emphasise lesion `active` from the next `set_mask` on."""
        if active != self.active:
            self.active, self._lut = active, lesion_lut(active)

    def set_mask(self, mask: np.ndarray | None, shape: tuple[int, int], box: Box | None = None) -> None:
        """Show the whole label map uint8 (H, W) (bool: lesion 1; None: empty). `box`: its `bounding_box`, when
        the caller has it."""
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
        """Redraw only `box` (x0, y0, x1, y1), end-exclusive, from the label map `mask` (live brush strokes)."""
        x0, y0, x1, y1 = box
        self._write(mask, box)
        self._drawn = union(self._drawn, box)
        self.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def _write(self, mask: np.ndarray, box: Box) -> None:
        x0, y0, x1, y1 = box
        words = self._argb.view(np.uint32)[..., 0]  # (H, W) 32-bit pixels: one look-up writes the region
        np.take(self._lut, mask[y0:y1, x0:x1].view(np.uint8), out=words[y0:y1, x0:x1], mode="clip")

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


def contours_to_path(contours) -> QPainterPath:
    """OpenCV contours -> one path of closed outlines through pixel centres, built from numpy arrays in one call
    (pyqtgraph's `arrayToQPath`; a Python loop of `lineTo` took ~2 ms for a lesion's outline)."""
    closed = [np.concatenate([c.reshape(-1, 2), c.reshape(-1, 2)[:1]]) for c in contours]  # back to the start
    points = np.concatenate(closed).astype(np.float64) + 0.5
    connect = np.ones(len(points), bool)
    connect[np.cumsum([len(c) for c in closed]) - 1] = False  # no segment from one outline to the next
    return pg.arrayToQPath(points[:, 0], points[:, 1], connect=connect)
