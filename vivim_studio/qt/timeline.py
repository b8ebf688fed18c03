"""The timeline: a per-frame status strip (the scrubber), a thin row per lesion (in the lesion's colour on the
frames it is on), and plots of mask area and model confidence.

The strip colours each frame by its review status, frames proposed by optical flow in their own colour
("Propagated"); a thin row along its top marks the frames the last learning round re-proposed differently
(`set_changed`), each mark cleared once the user has visited that frame.

Frame index i (0-based in the document) is drawn at x = i + 1, and the axis (`FrameAxis`) ticks only whole
frame numbers from 1, so it reads like the frame label and the exports (NNNN.png). The curves' axis titles,
in the curves' colours, are their legend. Click or drag anywhere on the timeline to go to a frame; drag the
dashed line to set what counts as "low confidence" (key M jumps to the next such frame). Refreshes are
coalesced: proposals arriving for hundreds of frames cause a few redraws, not hundreds, and none while a brush
stroke paints. `set_long_axis_shown(True)` plots the lesion's long axis (`long_axis_curve`: mm with a calibration,
else px) in place of the mask area. The curves of a long video are drawn from about two points per pixel column and cached while
only the playhead moves (see CURVE_SPEED).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QGraphicsItem, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from ..document import FrameStatus, VideoDocument
from .long_axis_curve import LongAxisSeries
from .theme import (AREA_CURVE, CHANGED_MARK, CONFIDENCE_CURVE, LONG_AXIS_CURVE, MUTED_TEXT,
                    PLAYHEAD, PROPAGATED_COLOR, PROPAGATED_LABEL, STATUS_COLORS, STATUS_LABELS, css, lesion_color,
                    qcolor, review_label_html, status_css)

DEFAULT_LOW_CONFIDENCE = 0.75
REFRESH_INTERVAL_MS = 120
# The curves of a long video: about two points per pixel column (the min and max of the frames under it), one
# pixel wide (wider antialiased lines go through Qt's stroker: seconds for 10,000 noisy points), and cached as
# a pixmap while only the playhead moves.
CURVE_SPEED = dict(autoDownsample=True, downsampleMethod="peak", autoDownsampleFactor=1.0, clipToView=True,
                   antialias=False)
STATUS_ORDER = list(FrameStatus)
STATUS_CODES = {status: code for code, status in enumerate(STATUS_ORDER)}
PROPAGATED_CODE = len(STATUS_ORDER)
STATUS_RGB = np.array([STATUS_COLORS[s] for s in STATUS_ORDER] + [PROPAGATED_COLOR], np.uint8)
CHANGED_ROW = 0.22  # the top fraction of the strip that carries the "changed by the last round" marks
LESION_ROWS_PX = 40  # the lesion rows' height in all (a row each, at most LESION_ROW_MAX_PX high)
LESION_ROW_MAX_PX = 12
LESION_ABSENT = (44, 47, 53, 255)  # a lesion's row where it is not on the frame: a dark track


def _small_font() -> QFont:
    font = QFont()
    font.setPointSize(7)
    return font


class FrameAxis(pg.AxisItem):
    """The frame-number axis: ticks on whole frame numbers from 1 to the video's last (frame index i sits at
    x = i + 1), never at 0 or between frames, so it reads like the frame label ("Frame 1 / 48") and the exports.
    A view starting at the first frame gets a tick at 1 where a round number would have fallen at 0."""

    def __init__(self, orientation: str = "bottom", **kwargs):
        super().__init__(orientation, **kwargs)
        self.frame_count = 0

    def set_frame_count(self, count: int) -> None:
        self.frame_count = int(count)
        self.picture = None  # pyqtgraph's cached drawing of the ticks
        self.update()

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:
        levels = [(spacing, offset) for spacing, offset in super().tickSpacing(minVal, maxVal, size) if spacing >= 1]
        return levels or [(1.0, 0.0)]

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, list[float]]]:
        levels, seen = [], set()
        for spacing, values in super().tickValues(minVal, maxVal, size):
            kept = [v for v in values if 1 <= v <= self.frame_count and float(v).is_integer() and v not in seen]
            if not levels and minVal <= 1 <= maxVal and 1 not in kept and (not kept or kept[0] - 1 >= spacing / 2):
                kept.insert(0, 1.0)  # the first frame, where the round tick "0" would have been
            seen.update(kept)
            levels.append((spacing, kept))
        return levels


class Timeline(QWidget):
    frame_requested = Signal(int)
    low_confidence_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.document: VideoDocument | None = None
        self.current = 0
        self.low_confidence = DEFAULT_LOW_CONFIDENCE
        self.long_axis = LongAxisSeries(self)
        self.long_axis.updated.connect(self._draw_long_axis)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("#1a1c20")
        self.graphics.ci.layout.setSpacing(0)
        self._build_curves()
        self.graphics.nextRow()
        self._build_lesion_rows()
        self.graphics.nextRow()
        self._build_strip()
        self.play_button = QToolButton()
        self.play_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.play_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.position_label = QLabel("No video")
        self.position_label.setMinimumWidth(220)
        header = QHBoxLayout()
        header.setContentsMargins(6, 2, 6, 0)
        header.addWidget(self.play_button)
        header.addWidget(self.position_label)
        header.addStretch(1)
        header.setSpacing(10)
        legend = [(status_css(status), STATUS_LABELS[status]) for status in STATUS_ORDER]
        for colour, text in legend[:2] + [(css(PROPAGATED_COLOR), PROPAGATED_LABEL)] + legend[2:]:
            header.addWidget(QLabel(f"<span style='color:{colour}'>&#9632;</span> "
                                    f"<span style='color:{MUTED_TEXT}'>{text}</span>"))
        self.changed_legend = QLabel(f"<span style='color:{css(CHANGED_MARK)}'>&#9644;</span> "
                                     f"<span style='color:{MUTED_TEXT}'>Re-proposed by learning</span>")
        self.changed_legend.setToolTip("Frames whose proposal the last learning round changed (cleared as you "
                                       "visit them)")
        self.changed_legend.setVisible(False)
        header.addWidget(self.changed_legend)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(header)
        layout.addWidget(self.graphics)
        self._refresh_timer = QTimer(self, singleShot=True, interval=REFRESH_INTERVAL_MS)
        self._refresh_timer.timeout.connect(self._refresh_due)
        self.defer_refresh: Callable[[], bool] = lambda: False  # e.g. while a brush stroke paints

    def _build_curves(self) -> None:
        plot = self.curves = self.graphics.addPlot(axisItems={"bottom": FrameAxis()})
        plot.setMouseEnabled(x=True, y=False)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.getAxis("bottom").setStyle(showValues=False)
        plot.setLabel("left", "mask area (px)", color=qcolor(AREA_CURVE).name())  # the axis titles are the legend
        plot.getAxis("left").enableAutoSIPrefix(False)
        plot.getAxis("left").setWidth(64)
        plot.showAxis("right")
        plot.setLabel("right", "confidence", color=qcolor(CONFIDENCE_CURVE).name())
        plot.getAxis("right").setWidth(64)
        plot.setDownsampling(auto=True, mode="peak")  # the plot applies its own modes to the items it gets
        plot.setClipToView(True)
        self.area_curve = pg.PlotDataItem(pen=pg.mkPen(qcolor(AREA_CURVE), width=1), fillLevel=0,
                                          brush=qcolor(AREA_CURVE, 40), **CURVE_SPEED)
        plot.addItem(self.area_curve)
        self.long_axis_curve = pg.PlotDataItem(pen=pg.mkPen(qcolor(LONG_AXIS_CURVE), width=1), connect="finite",
                                               **CURVE_SPEED)
        self.long_axis_curve.setVisible(False)
        plot.addItem(self.long_axis_curve)
        self.confidence_view = pg.ViewBox(enableMouse=False, enableMenu=False)
        plot.scene().addItem(self.confidence_view)
        plot.getAxis("right").linkToView(self.confidence_view)
        self.confidence_view.setXLink(plot)
        self.confidence_view.setYRange(0, 1.02, padding=0)
        self.confidence_curve = pg.PlotDataItem(pen=pg.mkPen(qcolor(CONFIDENCE_CURVE), width=1), connect="finite",
                                                **CURVE_SPEED)
        self.confidence_view.addItem(self.confidence_curve)
        for curve in (self.area_curve.curve, self.confidence_curve.curve, self.long_axis_curve.curve):
            # drawn once into a pixmap, reused while only the playhead moves (a 2-px antialiased curve with its
            # fill, over a long video, took up to hundreds of ms to draw; every frame change redrew it)
            curve.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.threshold_line = pg.InfiniteLine(self.low_confidence, angle=0, movable=True,
                                              pen=pg.mkPen(qcolor(CONFIDENCE_CURVE, 160), width=1,
                                                           style=Qt.PenStyle.DashLine))
        self.threshold_line.setToolTip("Low-confidence line: drag it; M jumps to the next proposed frame below it")
        self.threshold_line.sigPositionChangeFinished.connect(self._on_threshold_moved)
        self.confidence_view.addItem(self.threshold_line)
        plot.vb.sigResized.connect(lambda: self.confidence_view.setGeometry(plot.vb.sceneBoundingRect()))
        self.curve_playhead = pg.InfiniteLine(0, angle=90, pen=pg.mkPen(qcolor(PLAYHEAD, 140), width=1))
        plot.addItem(self.curve_playhead, ignoreBounds=True)

    def _build_lesion_rows(self) -> None:
        rows = self.lesion_rows = self.graphics.addPlot(axisItems={"bottom": FrameAxis()})
        rows.setMouseEnabled(x=True, y=False)
        rows.setMenuEnabled(False)
        rows.hideButtons()
        rows.invertY(True)  # lesion 1 on top
        rows.hideAxis("bottom")
        rows.showAxis("right")
        for side in ("left", "right"):
            rows.getAxis(side).setWidth(64)
        rows.getAxis("right").setStyle(showValues=False)
        rows.getAxis("left").setStyle(tickLength=0, tickFont=_small_font())
        rows.getAxis("left").setTextPen(qcolor((160, 166, 176)))
        rows.setXLink(self.curves)
        rows.setToolTip("Lesions: a row per lesion, coloured on the frames it is on (as on the image)")
        self.lesion_image = pg.ImageItem(axisOrder="row-major")
        rows.addItem(self.lesion_image)
        self.lesion_playhead = pg.InfiniteLine(0, angle=90, pen=pg.mkPen(qcolor(PLAYHEAD, 140), width=1))
        rows.addItem(self.lesion_playhead, ignoreBounds=True)
        self.lesion_row_ids: list[int] = []
        self._show_lesion_rows(0)

    def _show_lesion_rows(self, count: int) -> None:
        """Room for `count` rows (none: the rows take no room)."""
        height = min(LESION_ROWS_PX, count * LESION_ROW_MAX_PX) if count else 0
        self.lesion_rows.setFixedHeight(height)
        self.lesion_rows.setVisible(count > 0)
        self.lesion_rows.getAxis("left").setStyle(showValues=height / max(count, 1) >= LESION_ROW_MAX_PX - 1)

    def _draw_lesion_rows(self) -> None:
        document = self.document
        ids, presence = document.lesion_presence() if document is not None else ([], np.zeros((0, 0), bool))
        self.lesion_row_ids = ids
        self._show_lesion_rows(len(ids))
        if not ids:
            self.lesion_image.clear()
            return
        rgba = np.empty((*presence.shape, 4), np.uint8)
        rgba[:] = LESION_ABSENT
        for row, lesion in enumerate(ids):
            rgba[row, presence[row]] = (*lesion_color(lesion), 255)
        count = presence.shape[1]
        self.lesion_image.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.lesion_image.setRect(0.5, 0, count, len(ids))
        self.lesion_rows.setYRange(0, len(ids), padding=0)
        self.lesion_rows.setLimits(xMin=0.5 - count * 0.02, xMax=count + 0.5 + count * 0.02)
        self.lesion_rows.getAxis("left").setTicks([[(row + 0.5, f"L{k}") for row, k in enumerate(ids)]])

    def lesion_row_colors(self, frame: int) -> dict[int, tuple[int, int, int]]:
        """{lesion id: RGB drawn on frame `frame`'s column of its row} (tests)."""
        image = self.lesion_image.image
        if image is None or not self.lesion_row_ids:
            return {}
        return {k: tuple(int(v) for v in image[row, frame, :3]) for row, k in enumerate(self.lesion_row_ids)}

    def _build_strip(self) -> None:
        strip = self.strip = self.graphics.addPlot(axisItems={"bottom": FrameAxis()})
        strip.setMouseEnabled(x=True, y=False)
        strip.setMenuEnabled(False)
        strip.hideButtons()
        strip.setFixedHeight(46)
        strip.showAxis("right")
        strip.getAxis("right").setWidth(64)
        strip.getAxis("right").setStyle(showValues=False)
        strip.getAxis("bottom").setHeight(20)
        strip.showAxis("left")
        strip.getAxis("left").setWidth(64)
        strip.getAxis("left").setStyle(showValues=False)
        strip.setLabel("left", "status")
        strip.setXLink(self.curves)
        strip.setYRange(0, 1, padding=0)
        self.status_image = pg.ImageItem(axisOrder="row-major")
        strip.addItem(self.status_image)
        self.changed_image = pg.ImageItem(axisOrder="row-major")
        strip.addItem(self.changed_image)
        self.changed: set[int] = set()
        self.playhead = pg.InfiniteLine(0, angle=90, movable=True, pen=pg.mkPen(qcolor(PLAYHEAD), width=2),
                                        hoverPen=pg.mkPen(qcolor(PLAYHEAD), width=4))
        self.playhead.sigDragged.connect(lambda line: self._request(line.value()))
        strip.addItem(self.playhead, ignoreBounds=True)
        self.graphics.scene().sigMouseClicked.connect(self._on_click)

    # document --------------------------------------------------------------------------------------------
    def set_document(self, document: VideoDocument | None) -> None:
        self.document = document
        self.changed = set()
        self._draw_changed()
        self.long_axis.set_document(document)
        if document is None:
            self._draw_lesion_rows()
            self.status_image.clear()
            self.area_curve.setData([], [])
            self.long_axis_curve.setData([], [])
            self.confidence_curve.setData([], [])
            self.position_label.setText("No video")
            for plot in (self.curves, self.strip):
                plot.getAxis("bottom").set_frame_count(0)
            return
        count = document.num_frames
        for plot in (self.curves, self.strip):
            plot.setLimits(xMin=0.5 - count * 0.02, xMax=count + 0.5 + count * 0.02)
            plot.getAxis("bottom").set_frame_count(count)
        self.curves.setXRange(0.5, count + 0.5, padding=0.01)
        self.refresh()
        self.set_current(document.current_frame)

    def schedule_refresh(self, *_args) -> None:
        """Redraw soon (many changes in a burst cause one redraw)."""
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def _refresh_due(self) -> None:
        if self.defer_refresh():  # redrawing the curves of a long video takes tens of ms: not mid-stroke
            self._refresh_timer.start()
        else:
            self.refresh()

    def refresh(self) -> None:
        document = self.document
        if document is None:
            return
        count = document.num_frames
        statuses, areas, confidences = document.statuses(), document.areas(), document.confidences()
        codes = np.fromiter((STATUS_CODES[s] for s in statuses), np.intp, count=count)
        codes[document.propagated()] = PROPAGATED_CODE
        self.status_image.setImage(STATUS_RGB[codes][None, :, :], autoLevels=False, levels=(0, 255))
        self.status_image.setRect(0.5, 0, count, 1)
        x = np.arange(1, count + 1, dtype=np.float64)
        areas = areas.astype(np.float64)
        self.area_curve.setData(x, areas)
        if not self.long_axis_curve.isVisible():
            self.curves.setYRange(0, max(float(areas.max()), 1.0) * 1.1, padding=0)
        self.confidence_curve.setData(x, confidences.astype(np.float64))
        self._draw_lesion_rows()

    # the long axis in place of the area ----------------------------------------------------------------------
    def set_long_axis_shown(self, shown: bool) -> None:
        self.area_curve.setVisible(not shown)
        self.long_axis_curve.setVisible(shown)
        if shown:
            self.long_axis.start()
            self._draw_long_axis()
        else:
            self.long_axis.stop()
            self.curves.setLabel("left", "mask area (px)", color=qcolor(AREA_CURVE).name())
            self.refresh()

    def mask_changed(self, index: int) -> None:
        self.long_axis.invalidate(index)

    def _draw_long_axis(self) -> None:
        if not self.long_axis_curve.isVisible() or self.document is None:
            return
        values = self.long_axis.values()
        unit = self.long_axis.unit
        label = "long axis (mm)" if unit == "mm" else "long axis (px, uncalibrated)"
        self.curves.setLabel("left", label, color=qcolor(LONG_AXIS_CURVE).name())
        self.long_axis_curve.setData(np.arange(1, len(values) + 1, dtype=np.float64), values)
        top = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
        self.curves.setYRange(0, max(top, 1.0) * 1.1, padding=0)

    # frames changed by the last learning round -------------------------------------------------------------
    def set_changed(self, frames) -> None:
        """Mark `frames` (0-based) as changed by the last round (replacing the previous round's marks)."""
        self.changed = {int(i) for i in frames}
        self._draw_changed()

    def clear_changed(self, index: int) -> None:
        """The user has seen frame `index`: its mark goes."""
        if index in self.changed:
            self.changed.discard(index)
            self._draw_changed()

    def _draw_changed(self) -> None:
        document = self.document
        self.changed_legend.setVisible(bool(self.changed))
        if document is None or not self.changed:
            self.changed_image.clear()
            return
        count = document.num_frames
        rgba = np.zeros((1, count, 4), np.uint8)
        rgba[0, sorted(i for i in self.changed if 0 <= i < count)] = (*CHANGED_MARK, 255)
        self.changed_image.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.changed_image.setRect(0.5, 1 - CHANGED_ROW, count, CHANGED_ROW)

    def set_current(self, index: int) -> None:
        self.current = index
        self.playhead.setValue(index + 1)
        self.curve_playhead.setValue(index + 1)
        self.lesion_playhead.setValue(index + 1)
        document = self.document
        if document is None:
            return
        fps = f" · {document.fps:.3g} fps" if document.fps else ""
        self.position_label.setText(f"Frame <b>{index + 1}</b> / {document.num_frames}{fps} · "
                                    f"{review_label_html(document.record(index))}")

    # input -----------------------------------------------------------------------------------------------
    def frame_at(self, x: float) -> int:
        count = self.document.num_frames if self.document is not None else 1
        return int(min(max(round(x) - 1, 0), count - 1))

    def _request(self, x: float) -> None:
        if self.document is not None:
            self.frame_requested.emit(self.frame_at(x))

    def _on_click(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        for plot in (self.strip, self.lesion_rows, self.curves):
            if plot.isVisible() and plot.vb.sceneBoundingRect().contains(event.scenePos()):
                self._request(plot.vb.mapSceneToView(event.scenePos()).x())
                return

    def _on_threshold_moved(self) -> None:
        self.low_confidence = float(min(max(self.threshold_line.value(), 0.0), 1.0))
        self.low_confidence_changed.emit(self.low_confidence)
