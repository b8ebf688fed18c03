"""Calipers on the image: each lesion's long axis (maximum Feret diameter, orange) and short axis (the longest
chord perpendicular to it, cyan), with their lengths: millimetres only with a calibration, else pixels.

    calipers = CalipersOverlay(); calipers.add_to(viewbox, z)
    calipers.set_measurements(rows)      # [report.LesionFrame] of the frame shown; [] clears
    calipers.segments()                  # [(lesion, "long" | "short", ((x0, y0), (x1, y1)))]: the measured ends

The measured ends are pixel centres on the lesion's outline, and a measured length adds one pixel's extent to
the distance between them (`measurements`): each caliper is drawn half a pixel beyond both ends, from outer
edge to outer edge, so the segment on screen is as long as the number beside it.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QFont, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsSimpleTextItem

from ..document.report import LesionFrame
from .theme import CALIPER_LONG, CALIPER_RIM, CALIPER_SHORT, qcolor

TICK_FRACTION, MIN_TICK_PX = 0.06, 2.0  # the end ticks' half-length: a fraction of the segment, in image pixels


def _pen(rgb, width: float) -> QPen:
    pen = QPen(qcolor(rgb), width)
    pen.setCosmetic(True)
    pen.setCapStyle(Qt.PenCapStyle.FlatCap)
    return pen


def caliper_path(start: tuple[float, float], end: tuple[float, float]) -> QPainterPath:
    """The segment from `start` to `end` (image pixel coordinates, centres at integers) drawn half a pixel past
    each end, with a tick across each end."""
    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0)
    ux, uy = ((x1 - x0) / length, (y1 - y0) / length) if length > 0 else (1.0, 0.0)
    a = QPointF(x0 + 0.5 - 0.5 * ux, y0 + 0.5 - 0.5 * uy)
    b = QPointF(x1 + 0.5 + 0.5 * ux, y1 + 0.5 + 0.5 * uy)
    tick = max(MIN_TICK_PX, TICK_FRACTION * (length + 1.0))
    across = QPointF(-uy * tick, ux * tick)
    path = QPainterPath(a)
    path.lineTo(b)
    for point in (a, b):
        path.moveTo(point - across)
        path.lineTo(point + across)
    return path


class CalipersOverlay:
    """The calipers of the frame shown (see the module docstring); hidden until `set_visible(True)`."""

    def __init__(self):
        self._viewbox = None
        self._z = 0.0
        self._visible = False
        self._items: list = []
        self._segments: list[tuple[int, str, tuple[tuple[float, float], tuple[float, float]]]] = []
        self._font = QFont()
        self._font.setBold(True)

    def add_to(self, viewbox, z: float) -> None:
        self._viewbox, self._z = viewbox, z

    @property
    def visible(self) -> bool:
        return self._visible

    def set_visible(self, visible: bool) -> None:
        self._visible = visible
        for item in self._items:
            item.setVisible(visible)

    def clear(self) -> None:
        for item in self._items:
            self._viewbox.removeItem(item)
        self._items, self._segments = [], []

    def set_measurements(self, rows: list[LesionFrame]) -> None:
        self.clear()
        for row in rows:
            for name, axis, colour in (("long", row.pixels.long_axis, CALIPER_LONG),
                                       ("short", row.pixels.short_axis, CALIPER_SHORT)):
                if axis is None:
                    continue
                self._segments.append((row.lesion, name, axis.ends))
                self._add_caliper(axis.ends, colour, self._length_text(row, name))

    @staticmethod
    def _length_text(row: LesionFrame, name: str) -> str:
        if row.physical is not None:
            value = row.physical.long_axis_mm if name == "long" else row.physical.short_axis_mm
            return f"{value:.1f} mm"
        axis = row.pixels.long_axis if name == "long" else row.pixels.short_axis
        return f"{axis.length:.0f} px"

    def _add_caliper(self, ends, colour, text: str) -> None:
        path = caliper_path(*ends)
        rim, line = QGraphicsPathItem(path), QGraphicsPathItem(path)
        rim.setPen(_pen(CALIPER_RIM, 4.0))  # a dark rim: the caliper shows on bright tissue and on the mask
        line.setPen(_pen(colour, 2.0))
        label = QGraphicsSimpleTextItem(text)
        label.setFont(self._font)
        label.setBrush(qcolor(colour))
        label.setPen(_pen(CALIPER_RIM, 0.6))
        label.setFlag(label.GraphicsItemFlag.ItemIgnoresTransformations)  # readable at any zoom
        (x0, y0), (x1, y1) = ends
        end = (x0, y0) if (x0, -y0) > (x1, -y1) else (x1, y1)  # beside the right-hand (then upper) end
        label.setPos(QPointF(end[0] + 3.0, end[1] - 6.0))
        for offset, item in enumerate((rim, line, label)):
            item.setZValue(self._z + offset * 0.01)
            item.setVisible(self._visible)
            self._viewbox.addItem(item, ignoreBounds=True)
            self._items.append(item)

    def segments(self) -> list[tuple[int, str, tuple[tuple[float, float], tuple[float, float]]]]:
        """(lesion, "long" | "short", measured ends) of every caliper (tests, and a screen reader's summary)."""
        return list(self._segments)

    def labels(self) -> list[str]:
        return [item.text() for item in self._items if isinstance(item, QGraphicsSimpleTextItem)]
