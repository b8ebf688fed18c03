"""The image canvas: the frame (pyqtgraph ImageItem), the probability heat map, the mask fill and contour, the
brush cursor and the lasso outline, in a ViewBox with zoom (wheel) and pan (middle drag, or the pan tool).

Brush strokes go straight to the document's live `Stroke`: every mouse move paints into the stroke's buffer,
and only the rectangle it returns is redrawn; the contour follows at most every CONTOUR_INTERVAL_MS. Releasing
the button commits the stroke as one undo step (the window has the document save it on a background thread).

Changing frame: the frame comes ready for display from a `FramePrefetcher` (decoded ahead on a background
thread, in the direction the user scrubs), and the mask overlay is rewritten only inside its bounding box.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsPathItem, QLabel, QStackedLayout, QWidget

from vivim_core.errors import VivimError

from ..document import VideoDocument
from .frame_item import FrameItem
from .overlay import MaskContourItem, MaskFillItem, bounding_box, union
from .prefetch import FramePrefetcher, blank_display
from .theme import BRUSH_CURSOR, ERASER_CURSOR, HEATMAP_CONTOUR, MASK_CONTOUR, MUTED_TEXT, qcolor
from .tools import MAX_BRUSH_RADIUS, MIN_BRUSH_RADIUS, Tool, ToolSurface

CONTOUR_INTERVAL_MS = 40
HEATMAP_LUT = None  # built on first use (pyqtgraph colormap)


def heatmap_lut() -> np.ndarray:
    """'inferno' with alpha rising with probability: background stays clear, the lesion glows."""
    global HEATMAP_LUT
    if HEATMAP_LUT is None:
        rgb = pg.colormap.get("inferno").getLookupTable(0.0, 1.0, 256, alpha=False)
        alpha = np.clip(np.arange(256) * 1.6 - 40, 0, 210).astype(np.uint8)
        HEATMAP_LUT = np.concatenate([rgb, alpha[:, None]], axis=1).astype(np.uint8)
    return HEATMAP_LUT


def _cosmetic_pen(rgb: tuple[int, int, int], width: float = 1.5, style=Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(qcolor(rgb), width, style)
    pen.setCosmetic(True)
    return pen


class Canvas(QWidget):
    lasso_drawn = Signal(object, bool)  # points [(x, y), ...], subtract
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
        self.contour_item = MaskContourItem()
        self.outline_item = QGraphicsPathItem()
        self.outline_item.setPen(_cosmetic_pen(MASK_CONTOUR, 1.5, Qt.PenStyle.DashLine))
        self.cursor_item = QGraphicsEllipseItem()
        self.cursor_item.setVisible(False)
        self.surface = ToolSurface()
        for z, item in enumerate((self.frame_item, self.heat_item, self.fill_item, self.contour_item,
                                  self.outline_item, self.cursor_item, self.surface)):
            item.setZValue(z)
            self.viewbox.addItem(item, ignoreBounds=item is not self.frame_item)
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
        self._stack.setCurrentWidget(self.placeholder if document is None else self.view)
        if document is None:
            self.frame_item.set_frame(None)
            self.heat_item.clear()
            self.fill_item.set_mask(None, (1, 1))
            self.contour_item.set_mask(None)
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
        self.frame_index = index
        try:
            display = self._prefetcher.frame(index)
        except VivimError as exc:  # e.g. the workspace's video moved: masks stay editable, say why no image
            display = blank_display(*self.document.frame_size)
            self.frame_unavailable.emit(str(exc))
        self.frame_item.set_frame(display)
        self.refresh_mask()
        self.refresh_probability()

    def refresh_mask(self, index: int | None = None) -> None:
        """Redraw the mask of the shown frame (ignored for other frames, and while a stroke paints it: the
        stroke redraws its own region)."""
        if self.document is None or (index is not None and index != self.frame_index):
            return
        if self._stroke is not None and self._stroke.frame == self.frame_index:
            return
        mask = self.document.mask(self.frame_index)
        self._mask_box = bounding_box(mask)
        self.fill_item.set_mask(mask, self.document.frame_size, self._mask_box)
        self.contour_item.set_mask(mask, self._mask_box)

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
        """With the heat map on, the fill would tint the probabilities: show only the outline, in a colour that
        stands out from the heat map's yellows."""
        heat = self.heat_item.isVisible()
        self.fill_item.setVisible(self._mask_visible and not heat)
        self.contour_item.setVisible(self._mask_visible)
        self.contour_item.set_color(HEATMAP_CONTOUR if heat else MASK_CONTOUR)

    def fit(self) -> None:
        if self.document is not None:
            h, w = self.document.frame_size
            self.viewbox.setRange(QRectF(0, 0, w, h), padding=0.02)

    def zoom(self, factor: float) -> None:
        self.viewbox.scaleBy((1 / factor, 1 / factor))

    # tools --------------------------------------------------------------------------------------------
    def set_tool(self, tool: Tool) -> None:
        self.finish_stroke()
        self.tool = Tool(tool)
        self.surface.set_active(self.tool is not Tool.PAN)
        self.view.setCursor(Qt.CursorShape.OpenHandCursor if self.tool is Tool.PAN else Qt.CursorShape.CrossCursor)
        colour = ERASER_CURSOR if self.tool is Tool.ERASER else BRUSH_CURSOR
        self.cursor_item.setPen(_cosmetic_pen(colour, 1.5))
        if not self.tool.paints:
            self.cursor_item.setVisible(False)

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

    def _on_move(self, x: float, y: float) -> None:
        if self._stroke is not None:
            self._paint(x, y)
        elif self._lasso:
            self._lasso.append((x, y))
            self._draw_outline()

    def _on_release(self, x: float, y: float) -> None:
        if self._stroke is not None:
            self._paint(x, y)
            self.finish_stroke()
        elif self._lasso:
            points, self._lasso = self._lasso, []
            self.outline_item.setPath(QPainterPath())
            if len(points) >= 3:
                self.lasso_drawn.emit(points, self.tool is Tool.LASSO_SUBTRACT)

    def _paint(self, x: float, y: float) -> None:
        box = self._stroke.add_points([(x, y)])
        if box is not None:
            self._stroke_box = union(self._stroke_box, box)
            self.fill_item.update_region(self._stroke.mask, box)
            if not self._contour_timer.isActive():
                self._contour_timer.start()

    def _refresh_contour(self) -> None:
        if self._stroke is not None:
            self.contour_item.set_mask(self._stroke.mask, self._stroke_box)

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
