"""The image canvas: the frame (pyqtgraph ImageItem), the probability heat map, the lesions' fill and outlines
(each lesion in its colour, the active one emphasised: `overlay`, `lesion_contours`), the brush cursor and the lasso outline, in a ViewBox with zoom (wheel) and pan (middle drag, or the pan tool).

Brush strokes go straight to the document's live `Stroke` (of the document's active lesion): every mouse move paints into the stroke's buffer,
and only the rectangle it returns is redrawn; the contour follows at most every CONTOUR_INTERVAL_MS. Releasing
the button commits the stroke as one undo step (the window has the document save it on a background thread).

Changing frame: the frame comes ready for display from a `FramePrefetcher` (decoded ahead on a background
thread, in the direction the user scrubs), and the mask overlay is rewritten only inside its bounding box.

The Prompt tool: a click (press and release within the platform's drag distance) emits `prompt_clicked` at the
pixel pressed (left: lesion; right or Shift+left: background); a left drag draws a box and emits
`prompt_boxed`. The Calibrate tool: a left drag draws a line, and `calibration_line_drawn` carries its ends
(the window asks for its length, `calibration_tool`). The frame's clicks (`FrameRecord.clicks`) show as markers, green + and red -, and clicks still
waiting for the model as paler ones (`add_pending_click`), so every click is seen at once.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QPainterPath, QPen
from PySide6.QtWidgets import (QApplication, QGraphicsEllipseItem, QGraphicsPathItem, QGraphicsRectItem, QLabel,
                               QStackedLayout, QWidget)

from vivim_core.errors import VivimError

from ..document import VideoDocument
from .calibration_tool import MIN_LINE_PX, CalibrationOverlay, line_length
from .calipers import CalipersOverlay
from .frame_item import FrameItem
from .lesion_contours import LesionContours
from .overlay import MaskFillItem, bounding_box, union
from .prefetch import FramePrefetcher, blank_display
from .theme import (BOX_OUTLINE, BRUSH_CURSOR, CLICK_NEGATIVE, CLICK_POSITIVE, ERASER_CURSOR, MARKER_OUTLINE,
                    MASK_CONTOUR, MUTED_TEXT, qcolor)
from .measurement_text import frame_measurements
from .tools import MAX_BRUSH_RADIUS, MIN_BRUSH_RADIUS, Tool, ToolSurface
from .window_level import DisplayWindow

CONTOUR_INTERVAL_MS = 40
HEATMAP_LUT = None  # built on first use (pyqtgraph colormap)
MARKER_PX = 18  # click markers keep this size on screen at any zoom
PENDING_ALPHA = 110  # a click waiting for the model: the same marker, paler


def heatmap_lut() -> np.ndarray:
    """'inferno' with alpha rising with probability: background stays clear, the lesion glows."""
    global HEATMAP_LUT
    if HEATMAP_LUT is None:
        rgb = pg.colormap.get("inferno").getLookupTable(0.0, 1.0, 256, alpha=False)
        alpha = np.clip(np.arange(256) * 1.6 - 40, 0, 210).astype(np.uint8)
        HEATMAP_LUT = np.concatenate([rgb, alpha[:, None]], axis=1).astype(np.uint8)
    return HEATMAP_LUT


def _marker_symbol(positive: bool) -> QPainterPath:
    """A "+" (lesion) or "-" (background) of unit size centred on the origin, for a ScatterPlotItem."""
    arm = 0.19
    path = QPainterPath()
    path.addRect(QRectF(-0.5, -arm, 1.0, 2 * arm))
    if positive:
        path.addRect(QRectF(-arm, -0.5, 2 * arm, 1.0))
    return path.simplified()


def _cosmetic_pen(rgb: tuple[int, int, int], width: float = 1.5, style=Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(qcolor(rgb), width, style)
    pen.setCosmetic(True)
    return pen


class Canvas(QWidget):
    lasso_drawn = Signal(object, bool)  # points [(x, y), ...], subtract
    prompt_clicked = Signal(int, int, bool)  # Prompt tool: pixel (x, y), positive (lesion) or not
    prompt_boxed = Signal(object)  # Prompt tool: (x0, y0, x1, y1) in pixels, x0 < x1 and y0 < y1
    calibration_line_drawn = Signal(object, object)  # Calibrate tool: (x, y) start and end, inside the image
    pointer_moved = Signal(int, int)  # pixel under the pointer, (-1, -1) outside the image
    edit_failed = Signal(str)  # an edit was refused (e.g. read-only workspace): a message for a dialog
    frame_unavailable = Signal(str)  # the frame cannot be decoded (e.g. the video moved): a banner, not a dialog

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        pg.setConfigOptions(imageAxisOrder="row-major")
        self.document: VideoDocument | None = None
        self.frame_index = -1
        self.tool = Tool.BRUSH
        self.brush_radius = 8
        self._stroke = None
        self._stroke_box = None  # where the stroke's mask may have set pixels: the contour is traced there
        self._mask_box = None  # bounding box of the mask shown
        self._lasso: list[tuple[float, float]] = []
        self._prompt_press: tuple[float, float] | None = None  # where a Prompt-tool gesture started
        self._prompt_drag = False
        self._calibration_start: tuple[float, float] | None = None  # where a Calibrate-tool drag started
        self._pending_clicks: dict[int, list[tuple[int, int, bool]]] = {}  # frame -> clicks waiting for the model
        self._prefetcher: FramePrefetcher | None = None

        self.view = pg.GraphicsView(background="#111316")
        self.viewbox = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.02)
        self.view.setCentralItem(self.viewbox)
        self.frame_item = FrameItem()
        self.heat_item = pg.ImageItem(axisOrder="row-major")
        self.heat_item.setLookupTable(heatmap_lut())
        self.heat_item.setVisible(False)
        self.fill_item = MaskFillItem()
        self.fill_item.setOpacity(0.4)
        self._mask_visible = True
        self.contour_item = LesionContours()
        self.outline_item = QGraphicsPathItem()
        self.outline_item.setPen(_cosmetic_pen(MASK_CONTOUR, 1.5, Qt.PenStyle.DashLine))
        self.cursor_item = QGraphicsEllipseItem()
        self.cursor_item.setVisible(False)
        self.box_item = QGraphicsRectItem()
        self.box_item.setPen(_cosmetic_pen(BOX_OUTLINE, 2.0, Qt.PenStyle.DashLine))
        self.box_item.setVisible(False)
        self.marks_item = pg.ScatterPlotItem(pxMode=True)
        self.surface = ToolSurface()
        self.calibration_overlay = CalibrationOverlay()
        self.calipers = CalipersOverlay()
        self.display_window = DisplayWindow(self)  # brightness / contrast of the display only
        self.display_window.changed.connect(self._apply_display_window)
        self._raw_display: np.ndarray | None = None  # the frame shown, before the display window
        for z, item in enumerate((self.frame_item, self.heat_item, self.fill_item, self.contour_item,
                                  self.outline_item, self.box_item, self.marks_item, self.cursor_item,
                                  self.surface)):
            item.setZValue(z)
            self.viewbox.addItem(item, ignoreBounds=item is not self.frame_item)
        self.calibration_overlay.add_to(self.viewbox, self.cursor_item.zValue() - 0.5)  # under the tool surface
        self.calipers.add_to(self.viewbox, self.contour_item.zValue() + 0.5)  # over the mask, under the tools
        self.surface.gesture_started.connect(self._on_press)
        self.surface.gesture_moved.connect(self._on_move)
        self.surface.gesture_finished.connect(self._on_release)
        self.surface.hovered.connect(self._on_hover)
        self.surface.left.connect(self._on_leave)
        self._contour_timer = QTimer(self, singleShot=True, interval=CONTOUR_INTERVAL_MS)
        self._contour_timer.timeout.connect(self._refresh_contour)
        self.placeholder = QLabel(
            "<h2>No video open</h2><p>File &gt; Open video or DICOM (Ctrl+O), or a folder of frames or a VTUS "
            "case (Ctrl+Shift+O), or drop a file here.</p><p>To try Vivim Studio: <code>vivim-studio --demo</code></p>")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setStyleSheet(f"color: {MUTED_TEXT}; background: #111316;")
        self._stack = QStackedLayout(self)
        self._stack.addWidget(self.placeholder)
        self._stack.addWidget(self.view)
        self.set_tool(Tool.BRUSH)

    # document and frame -------------------------------------------------------------------------------
    def set_document(self, document: VideoDocument | None) -> None:
        self.finish_stroke()
        if self._prefetcher is not None:
            self._prefetcher.close()  # before the document (and its decoder) closes
            self._prefetcher = None
        self.document, self.frame_index = document, -1
        self._pending_clicks = {}
        self._end_prompt_gesture()
        self._calibration_start = None
        self.calibration_overlay.end_drawing()
        self.show_calibration(document.user_calibration if document is not None else None)
        self._stack.setCurrentWidget(self.placeholder if document is None else self.view)
        if document is None:
            self._raw_display = None
            self.frame_item.set_frame(None)
            self.calipers.clear()
            self.heat_item.clear()
            self.fill_item.set_mask(None, (1, 1))
            self.contour_item.set_labels(None)
            self.marks_item.clear()
            return
        self._prefetcher = FramePrefetcher(document)
        h, w = document.frame_size
        self.surface.set_image_size(h, w)
        self.show_frame(document.current_frame)
        self.fit()
        QTimer.singleShot(0, self._prefetcher.start)  # after the first frame is painted

    def show_frame(self, index: int) -> None:
        """Draw frame `index` with its mask and heat map (a finished stroke on another frame is committed)."""
        if self.document is None:
            return
        if self._stroke is not None and self._stroke.frame != index:
            self.finish_stroke()
        if index != self.frame_index:
            self._end_prompt_gesture()
        self.frame_index = index
        try:
            display = self._prefetcher.frame(index)
        except VivimError as exc:  # e.g. the workspace's video moved: masks stay editable, say why no image
            display = blank_display(*self.document.frame_size)
            self.frame_unavailable.emit(str(exc))
        self._raw_display = display
        self.frame_item.set_frame(self.display_window.apply(display))
        self.refresh_mask()
        self.refresh_probability()

    def refresh_mask(self, index: int | None = None) -> None:
        """Redraw the mask of the shown frame (ignored for other frames, and while a stroke paints it: the
        stroke redraws its own region)."""
        if self.document is None or (index is not None and index != self.frame_index):
            return
        if self._stroke is not None and self._stroke.frame == self.frame_index:
            return
        labels = self.document.labels(self.frame_index)
        active = self.document.active_lesion
        self._mask_box = bounding_box(labels)
        self.fill_item.set_active(active)
        self.fill_item.set_mask(labels, self.document.frame_size, self._mask_box)
        self.contour_item.set_labels(labels, self._mask_box, active)
        self.refresh_marks()
        self.refresh_calipers()

    # calipers and the display window -------------------------------------------------------------------------
    def set_calipers_visible(self, visible: bool) -> None:
        self.calipers.set_visible(visible)
        self.refresh_calipers()

    def refresh_calipers(self) -> None:
        """Measure the shown frame's lesions again (mask or calibration changed); only while calipers show."""
        if self.document is None or self.frame_index < 0 or not self.calipers.visible:
            self.calipers.clear()
            return
        self.calipers.set_measurements(frame_measurements(self.document, self.frame_index))

    def _apply_display_window(self) -> None:
        if self._raw_display is not None:
            self.frame_item.set_frame(self.display_window.apply(self._raw_display))

    def shown_frame_rgb(self) -> np.ndarray | None:
        """The frame shown, before the display window: uint8 (H, W, 3) in B, G, R order (for Auto)."""
        return None if self._raw_display is None else self._raw_display[..., :3]

    # Prompt-tool markers --------------------------------------------------------------------------------
    def refresh_marks(self, index: int | None = None) -> None:
        """Redraw the click markers of the shown frame: its recorded clicks, then those still waiting."""
        if self.document is None or (index is not None and index != self.frame_index) or self.frame_index < 0:
            return
        spots = [self._spot(x, y, positive, PENDING_ALPHA if pending else 255)
                 for pending, clicks in ((False, self.document.record(self.frame_index).clicks),
                                         (True, self._pending_clicks.get(self.frame_index, ())))
                 for x, y, positive in clicks]
        if spots:
            self.marks_item.setData(spots)
        elif len(self.marks_item.data):  # most frames have no clicks: leave an empty item alone
            self.marks_item.clear()

    @staticmethod
    def _spot(x: int, y: int, positive: bool, alpha: int) -> dict:
        colour = CLICK_POSITIVE if positive else CLICK_NEGATIVE
        return dict(pos=(x + 0.5, y + 0.5), size=MARKER_PX, symbol=_marker_symbol(positive),
                    brush=pg.mkBrush(qcolor(colour, alpha)), pen=pg.mkPen(qcolor(MARKER_OUTLINE, alpha), width=1.5),
                    data=(x, y, positive))

    def add_pending_click(self, frame: int, x: int, y: int, positive: bool) -> None:
        self._pending_clicks.setdefault(frame, []).append((x, y, positive))
        self.refresh_marks(frame)

    def remove_pending_click(self, frame: int, x: int, y: int, positive: bool) -> None:
        pending = self._pending_clicks.get(frame, [])
        if (x, y, positive) in pending:
            pending.remove((x, y, positive))
        self.refresh_marks(frame)

    def marker_positions(self) -> list[tuple[int, int, bool]]:
        """The markers drawn now, (x, y, positive) each (tests, and a screen reader's summary)."""
        return [tuple(point.data()) for point in self.marks_item.points()]

    def refresh_probability(self, index: int | None = None) -> None:
        if self.document is None or (index is not None and index != self.frame_index):
            return
        if not self.heat_item.isVisible():
            return
        probability = self.document.probability(self.frame_index)
        if probability is None:
            self.heat_item.clear()
        else:
            self.heat_item.setImage((probability * 255).astype(np.uint8), autoLevels=False, levels=(0, 255))

    # view options -------------------------------------------------------------------------------------
    def set_fill_opacity(self, opacity: float) -> None:
        self.fill_item.setOpacity(opacity)

    def set_mask_visible(self, visible: bool) -> None:
        self._mask_visible = visible
        self._apply_layer_visibility()

    def set_heatmap_visible(self, visible: bool) -> None:
        self.heat_item.setVisible(visible)
        self._apply_layer_visibility()
        self.refresh_probability()

    def _apply_layer_visibility(self) -> None:
        """With the heat map on, the fill would tint the probabilities: show only the outlines (each on its dark
        rim, so that they stand out from the heat map's yellows)."""
        heat = self.heat_item.isVisible()
        self.fill_item.setVisible(self._mask_visible and not heat)
        self.contour_item.setVisible(self._mask_visible)

    def fit(self) -> None:
        if self.document is not None:
            h, w = self.document.frame_size
            self.viewbox.setRange(QRectF(0, 0, w, h), padding=0.02)

    def zoom(self, factor: float) -> None:
        self.viewbox.scaleBy((1 / factor, 1 / factor))

    # tools --------------------------------------------------------------------------------------------
    def set_tool(self, tool: Tool) -> None:
        self.finish_stroke()
        self._end_prompt_gesture()
        self.tool = Tool(tool)
        self.surface.set_active(self.tool is not Tool.PAN, right_button=self.tool is Tool.PROMPT)
        self.view.setCursor(Qt.CursorShape.OpenHandCursor if self.tool is Tool.PAN else Qt.CursorShape.CrossCursor)
        colour = ERASER_CURSOR if self.tool is Tool.ERASER else BRUSH_CURSOR
        self.cursor_item.setPen(_cosmetic_pen(colour, 1.5))
        if not self.tool.paints:
            self.cursor_item.setVisible(False)
        self._calibration_start = None
        self.calibration_overlay.end_drawing()
        self.calibration_overlay.set_saved_visible(self.tool is Tool.CALIBRATE)

    def show_calibration(self, drawn) -> None:
        """The document's drawn calibration line (`UserCalibration` or None), shown while calibrating."""
        self.calibration_overlay.show_saved(drawn, visible=self.tool is Tool.CALIBRATE)

    def set_brush_radius(self, radius: int) -> None:
        self.brush_radius = int(min(max(radius, MIN_BRUSH_RADIUS), MAX_BRUSH_RADIUS))
        self._place_cursor(self.cursor_item.rect().center() if self.cursor_item.isVisible() else None)

    def painting(self, index: int | None = None) -> bool:
        """A brush stroke is in progress (on frame `index`, when given)."""
        return self._stroke is not None and (index is None or self._stroke.frame == index)

    def finish_stroke(self) -> None:
        """Commit a stroke in progress (the window changes frame or tool in the middle of one)."""
        stroke, self._stroke = self._stroke, None
        if stroke is not None:
            self._run_edit(stroke.finish)
            self.refresh_mask()

    def _run_edit(self, function, *args) -> None:
        try:
            function(*args)
        except VivimError as exc:
            self.edit_failed.emit(str(exc))

    # gestures (image pixel coordinates) -------------------------------------------------------------
    def _on_press(self, x: float, y: float) -> None:
        if self.document is None or self.frame_index < 0:
            return
        if self.tool.paints:
            try:
                self._stroke = self.document.stroke(self.frame_index, self.brush_radius, self.tool is Tool.ERASER)
            except VivimError as exc:
                self.edit_failed.emit(str(exc))
                return
            self._stroke_box = self._mask_box
            self._paint(x, y)
        elif self.tool.draws_outline:
            self._lasso = [(x, y)]
            self._draw_outline()
        elif self.tool is Tool.PROMPT:
            self._prompt_press, self._prompt_drag = (x, y), False
        elif self.tool is Tool.CALIBRATE:
            self._calibration_start = self._inside(x, y)
            self.calibration_overlay.show_drawing(self._calibration_start, self._calibration_start)

    def _inside(self, x: float, y: float) -> tuple[float, float]:
        """(x, y) moved onto the image's nearest pixel centre range (a line ends on the image)."""
        h, w = self.document.frame_size
        return min(max(x, 0.0), w - 1.0), min(max(y, 0.0), h - 1.0)

    def _on_move(self, x: float, y: float) -> None:
        if self._calibration_start is not None:
            self.calibration_overlay.show_drawing(self._calibration_start, self._inside(x, y))
        elif self._stroke is not None:
            self._paint(x, y)
        elif self._lasso:
            self._lasso.append((x, y))
            self._draw_outline()
        elif self._prompt_press is not None and self._draws_box():
            self._prompt_drag = self._prompt_drag or self._is_drag(self._prompt_press, (x, y))
            if self._prompt_drag:
                (x0, y0), (x1, y1) = self._prompt_press, (x, y)
                self.box_item.setRect(QRectF(QPointF(min(x0, x1) + 0.5, min(y0, y1) + 0.5),
                                             QPointF(max(x0, x1) + 0.5, max(y0, y1) + 0.5)))
                self.box_item.setVisible(True)

    def _on_release(self, x: float, y: float) -> None:
        if self._calibration_start is not None:
            start, end = self._calibration_start, self._inside(x, y)
            self._calibration_start = None
            self.calibration_overlay.show_drawing(start, end)
            if line_length(start, end) >= MIN_LINE_PX:
                self.calibration_line_drawn.emit(start, end)  # the window asks for the length, then ends it
            else:
                self.calibration_overlay.end_drawing()
                self.edit_failed.emit(f"The calibration line is {line_length(start, end):.1f} pixels long: drag it "
                                      f"over at least {MIN_LINE_PX} pixels (the whole depth ruler is best).")
        elif self._prompt_press is not None:
            self._finish_prompt_gesture(x, y)
        elif self._stroke is not None:
            self._paint(x, y)
            self.finish_stroke()
        elif self._lasso:
            points, self._lasso = self._lasso, []
            self.outline_item.setPath(QPainterPath())
            if len(points) >= 3:
                self.lasso_drawn.emit(points, self.tool is Tool.LASSO_SUBTRACT)

    # Prompt-tool gestures ----------------------------------------------------------------------------------
    def _draws_box(self) -> bool:
        """A left drag without Shift draws a box; a right or Shift drag stays a (background) click."""
        return (self.surface.pressed_button == Qt.MouseButton.LeftButton
                and not self.surface.pressed_modifiers & Qt.KeyboardModifier.ShiftModifier)

    def _is_drag(self, start: tuple[float, float], end: tuple[float, float]) -> bool:
        """Moved at least the platform's drag distance on screen (a click's jitter stays a click)."""
        return (self.widget_point(*start) - self.widget_point(*end)).manhattanLength() >= \
            QApplication.startDragDistance()

    def _finish_prompt_gesture(self, x: float, y: float) -> None:
        (x0, y0), drag = self._prompt_press, self._prompt_drag
        self._end_prompt_gesture()
        if self.document is None:
            return
        if drag and self._draws_box():
            h, w = self.document.frame_size
            xs = sorted(min(max(v, 0.0), w - 1.0) for v in (x0, x))
            ys = sorted(min(max(v, 0.0), h - 1.0) for v in (y0, y))
            self.prompt_boxed.emit((xs[0], ys[0], xs[1], ys[1]))
            return
        negative = (self.surface.pressed_button == Qt.MouseButton.RightButton
                    or bool(self.surface.pressed_modifiers & Qt.KeyboardModifier.ShiftModifier))
        self.prompt_clicked.emit(int(round(x0)), int(round(y0)), not negative)  # the pixel under the press

    def _end_prompt_gesture(self) -> None:
        self._prompt_press, self._prompt_drag = None, False
        self.box_item.setVisible(False)

    def _paint(self, x: float, y: float) -> None:
        box = self._stroke.add_points([(x, y)])
        if box is not None:
            self._stroke_box = union(self._stroke_box, box)
            self.fill_item.update_region(self._stroke.labels, box)
            if not self._contour_timer.isActive():
                self._contour_timer.start()

    def _refresh_contour(self) -> None:
        if self._stroke is not None:
            self.contour_item.set_labels(self._stroke.labels, self._stroke_box, self._stroke.lesion)

    def _draw_outline(self) -> None:
        path = QPainterPath(QPointF(self._lasso[0][0] + 0.5, self._lasso[0][1] + 0.5))
        for x, y in self._lasso[1:]:
            path.lineTo(x + 0.5, y + 0.5)
        self.outline_item.setPath(path)

    def _on_hover(self, x: float, y: float) -> None:
        if self.document is None:
            return
        h, w = self.document.frame_size
        inside = 0 <= round(x) < w and 0 <= round(y) < h
        self.pointer_moved.emit(int(round(x)), int(round(y))) if inside else self.pointer_moved.emit(-1, -1)
        self._place_cursor(QPointF(x + 0.5, y + 0.5) if self.tool.paints else None)

    def _on_leave(self) -> None:
        self.cursor_item.setVisible(False)
        self.pointer_moved.emit(-1, -1)

    def _place_cursor(self, centre: QPointF | None) -> None:
        if centre is None:
            self.cursor_item.setVisible(False)
            return
        r = self.brush_radius + 0.5  # the painted disk covers pixel centres within brush_radius
        self.cursor_item.setRect(QRectF(centre.x() - r, centre.y() - r, 2 * r, 2 * r))
        self.cursor_item.setVisible(True)

    # for tests and the GUI benchmark ----------------------------------------------------------------
    def widget_point(self, x: float, y: float) -> QPoint:
        """Viewport position (of `self.view.viewport()`) showing image pixel (x, y)."""
        scene = self.viewbox.mapViewToScene(QPointF(x + 0.5, y + 0.5))
        return self.view.mapFromScene(scene)
