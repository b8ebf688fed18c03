"""The lesions of the current frame in the frame panel (`frame_info`): one row each (colour, id, review status,
area and long x short axis, the full text in the row's tooltip), the active one selected and marked; choosing a row makes that lesion the one edits act on. Merge into..., Split and
Relabel as... act on the active lesion (buttons, and the same menus on a row's context menu); the window runs
them on the document, each one undo step.

    panel.show_frame(document, index)      # rows of frame `index`, measured as the frame panel measures them
    panel.lesion_chosen.connect(...)       # (lesion id) a row was clicked
    panel.merge_requested.connect(...)     # (source, target, this frame only)
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QFrame, QHBoxLayout, QMenu, QSizePolicy, QToolButton, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from ..document import EditError, VideoDocument
from ..document.lesion_view import lesion_status
from .measurement_text import frame_measurements, size_lines
from .theme import MUTED_TEXT, STATUS_COLORS, STATUS_LABELS, lesion_color, qcolor

COMPACT_BUTTON = "QToolButton { padding: 2px 6px; }"  # a lower row of buttons: the frame panel stays in view
ACTIVE_ROW = "#3a4352"  # the active lesion's row
VISIBLE_ROWS = 2  # the list's height: a 768-pixel-high screen keeps the whole panel in view; more rows scroll


def _size_text(row) -> tuple[str, str]:
    """(short text for the row, tooltip) of a measured lesion: area and long x short axis."""
    lines = size_lines(row)
    if row.physical is not None:
        short = f"{row.physical.area_mm2:,.1f} mm² · {row.physical.long_axis_mm:.1f}×{row.physical.short_axis_mm:.1f}"
    else:
        short = f"{row.pixels.area_px:,} px · {row.pixels.long_axis.length:.0f}×{row.pixels.short_axis.length:.0f}"
    return short, f"Area {lines['Size']}\nAxes {lines['Axes']}\nCalibration {lines['Calibration']}"


def _swatch(lesion: int) -> QIcon:
    pixmap = QPixmap(10, 10)
    pixmap.fill(qcolor(lesion_color(lesion)))
    return QIcon(pixmap)


def _menu_button(text: str, tip: str, menu: QMenu | None = None) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    if menu is not None:
        button.setMenu(menu)
        button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    return button


class LesionPanel(QWidget):
    lesion_chosen = Signal(int)
    merge_requested = Signal(int, int, bool)  # source, target, this frame only
    relabel_requested = Signal(int, int, bool)
    split_requested = Signal(int)

    def __init__(self, actions: dict[str, QAction], parent: QWidget | None = None):
        super().__init__(parent)
        self.active = 1
        self.video_ids: list[int] = []
        self.next_id: int | None = None
        self.frame_ids: list[int] = []
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(1)
        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.tree.setToolTip("The lesions on this frame: click one to edit it (keys 1-9); right-click for merge, "
                             "split, relabel")
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Lesion", "Status", "Area · axes"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrow keys keep moving between frames
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)  # the active row is marked
        # with a background of its own: a selection highlight would paint over the lesion and status colours
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.tree.itemClicked.connect(lambda item, _column: self.lesion_chosen.emit(item.data(0, Qt.ItemDataRole.UserRole)))
        self.tree.header().setStretchLastSection(True)
        self.tree.setColumnWidth(0, 62)
        self.tree.setColumnWidth(1, 70)
        self.tree.setIndentation(0)
        self.tree.setFrameShape(QFrame.Shape.NoFrame)
        self.tree.setStyleSheet("QTreeWidget::item { padding: 0px; }")
        row_height = self.tree.fontMetrics().height() + 2
        self.tree.setFixedHeight(VISIBLE_ROWS * row_height + 2)
        box.addWidget(self.tree)
        self.merge_menu = QMenu("&Merge into")
        self.merge_menu.aboutToShow.connect(lambda: self._fill(self.merge_menu, self.merge_requested, False))
        self.relabel_menu = QMenu("&Relabel as")
        self.relabel_menu.aboutToShow.connect(lambda: self._fill(self.relabel_menu, self.relabel_requested, True))
        buttons = QHBoxLayout()
        buttons.setSpacing(3)
        self.new_button = QToolButton()
        self.new_button.setDefaultAction(actions["new_lesion"])
        self.new_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.new_button.setText("New")
        self.new_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.merge_button = _menu_button("Merge", "Make the active lesion part of another lesion", self.merge_menu)
        self.split_button = QToolButton()
        self.split_button.setDefaultAction(actions["split_lesion"])
        self.split_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.split_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.relabel_button = _menu_button("Relabel", "Give the active lesion another id (two lesions present "
                                           "exchange their ids)", self.relabel_menu)
        for button in (self.new_button, self.merge_button, self.split_button, self.relabel_button):
            button.setStyleSheet(COMPACT_BUTTON)
            buttons.addWidget(button)
        box.addLayout(buttons)
        self.show_frame(None, 0)

    # the frame's lesions ----------------------------------------------------------------------------------------
    def show_frame(self, document: VideoDocument | None, index: int) -> None:
        self.tree.clear()
        if document is None:
            self.video_ids, self.frame_ids, self.next_id = [], [], None
            self._enable(False)
            return
        self.active = document.active_lesion
        self.video_ids = document.lesion_ids()
        try:
            self.next_id = document.next_lesion_id()
        except EditError:  # all 255 ids used: "new lesion" entries are left out
            self.next_id = None
        rows = {row.lesion: row for row in frame_measurements(document, index)}
        self.frame_ids = sorted(rows)
        for lesion in sorted({*self.frame_ids, self.active}):
            item = QTreeWidgetItem([f"L{lesion}", "", ""])
            item.setData(0, Qt.ItemDataRole.UserRole, lesion)
            item.setIcon(0, _swatch(lesion))
            item.setText(0, f"L{lesion}" + (" \u270E" if lesion == self.active else ""))  # pencil: being edited
            item.setToolTip(0, f"Lesion {lesion}" + (": brush, eraser, lasso and Prompt act on it"
                                                     if lesion == self.active else f" (key {lesion} to edit it)"
                                                     if lesion <= 9 else ""))
            if lesion in rows:
                status = lesion_status(document, index, lesion)
                item.setText(1, STATUS_LABELS[status])
                item.setForeground(1, qcolor(STATUS_COLORS[status]))
                size, tip = _size_text(rows[lesion])
                item.setText(2, size)
                item.setToolTip(2, tip)
            else:
                item.setText(1, "—")
                item.setText(2, "not on this frame")
                item.setForeground(2, QColor(MUTED_TEXT))
            self.tree.addTopLevelItem(item)
            if lesion == self.active:
                font = item.font(0)
                font.setBold(True)
                for column in range(3):
                    item.setBackground(column, QColor(ACTIVE_ROW))
                    item.setFont(column, font)
                self.tree.scrollToItem(item)
        self._enable(True)

    def _enable(self, has_document: bool) -> None:
        present = has_document and self.active in self.frame_ids
        self.merge_button.setEnabled(present and len(self.video_ids) > 1)
        self.relabel_button.setEnabled(present)

    def shown_rows(self) -> list[tuple[int, str, str]]:
        """(id, status, size) of each row (tests, a screen reader's summary)."""
        return [(self.tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole), self.tree.topLevelItem(i).text(1),
                 self.tree.topLevelItem(i).text(2)) for i in range(self.tree.topLevelItemCount())]

    # menus ----------------------------------------------------------------------------------------------------
    def _fill(self, menu: QMenu, signal, offer_new: bool) -> None:
        """The targets of the active lesion: every other lesion of the video (and a new id for relabelling),
        on every frame or on this frame only."""
        menu.clear()
        source = self.active
        targets = [k for k in self.video_ids if k != source]
        if offer_new and self.next_id is not None:
            targets.append(self.next_id)
        if source not in self.frame_ids or not targets:
            menu.addAction("(no other lesion)").setEnabled(False)
            return
        for this_frame, title in ((False, "On every frame"), (True, "On this frame only")):
            menu.addSection(title)
            for target in targets:
                name = f"L{target} (new)" if target == self.next_id and target not in self.video_ids else f"L{target}"
                action = menu.addAction(f"L{source} \u2192 {name}" + ("" if this_frame else " (all frames)"))
                action.setObjectName(f"{'frame' if this_frame else 'video'}_{target}")
                action.triggered.connect(lambda _checked=False, t=target, f=this_frame: signal.emit(source, t, f))

    def _context_menu(self, position) -> None:
        item = self.tree.itemAt(position)
        if item is None:
            return
        self.lesion_chosen.emit(item.data(0, Qt.ItemDataRole.UserRole))  # the menu acts on the row's lesion
        menu = QMenu(self)
        menu.addMenu(self.merge_menu)
        menu.addAction(self.split_button.defaultAction())
        menu.addMenu(self.relabel_menu)
        menu.exec(self.tree.viewport().mapToGlobal(position))
