"""The side panel: tools, brush size, mask operations, display options, proposal threshold, review buttons, the
current frame's record and lesions (`frame_info`, `lesion_panel`).

Buttons are views of the window's QActions (`setDefaultAction`), so a button, its menu entry and its shortcut
are one command. Sliders take no keyboard focus: arrow keys always move between frames.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QCheckBox, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QSizePolicy,
                               QSlider, QToolButton, QVBoxLayout, QWidget)

from .frame_info import FrameInfo, describe_origin  # noqa: F401 (describe_origin re-exported)
from .tools import MAX_BRUSH_RADIUS, MIN_BRUSH_RADIUS

THRESHOLD_STEPS = 100  # slider units per 1.0 of probability


def _slider(minimum: int, maximum: int, value: int) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(minimum, maximum)
    slider.setValue(value)
    slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    return slider


def _button(action: QAction, wide: bool = True) -> QToolButton:
    button = QToolButton()
    button.setDefaultAction(action)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    if wide:
        button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    return button


def _group(title: str, layout_class=QGridLayout) -> tuple[QGroupBox, QGridLayout | QVBoxLayout]:
    group = QGroupBox(title)
    layout = layout_class(group)
    layout.setContentsMargins(6, 4, 6, 6)
    layout.setSpacing(4)
    return group, layout


def _slider_row(label: QLabel, slider: QSlider) -> QHBoxLayout:
    """A value label and its slider on one line (the label wide enough for its longest value)."""
    row = QHBoxLayout()
    label.setMinimumWidth(label.fontMetrics().horizontalAdvance("Threshold 0.00") + 4)
    row.addWidget(label)
    row.addWidget(slider, 1)
    return row


class ToolPanel(QWidget):
    """Compact enough to show whole beside the image on a 1366x768 laptop screen (the window puts it in a scroll
    area for smaller ones)."""

    brush_radius_changed = Signal(int)
    opacity_changed = Signal(float)
    threshold_released = Signal(float)  # the user let go of the threshold slider

    def __init__(self, actions: dict[str, QAction], brush_radius: int = 8, opacity: float = 0.4,
                 parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        layout.setSpacing(2)

        tools, grid = _group("Tools")
        for i, name in enumerate(("tool_brush", "tool_eraser", "tool_pan", "tool_lasso", "tool_lasso_subtract",
                                  "tool_prompt", "tool_calibrate")):
            grid.addWidget(_button(actions[name]), i // 3, i % 3)
        self.brush_slider = _slider(MIN_BRUSH_RADIUS, 60, brush_radius)
        self.brush_label = QLabel()
        self.brush_label.setToolTip("Brush radius in image pixels ([ and ] change it)")
        self.brush_slider.setToolTip("Brush radius in image pixels ([ and ] change it)")
        grid.addLayout(_slider_row(self.brush_label, self.brush_slider), 2, 1, 1, 2)  # beside Calibrate
        self.brush_slider.valueChanged.connect(self._on_brush)
        layout.addWidget(tools)

        mask, grid = _group("Mask")
        names = ("fill_holes", "keep_largest", "smooth", "copy_previous", "copy_next", "propagate", "clear")
        for i, name in enumerate(names):  # three columns, as the tools: the panel fits a 768-pixel-high screen
            grid.addWidget(_button(actions[name]), i // 3, i % 3)
        layout.addWidget(mask)

        display, box = _group("Display", QVBoxLayout)
        self.opacity_label = QLabel()
        self.opacity_slider = _slider(0, 100, int(round(opacity * 100)))
        self.opacity_slider.valueChanged.connect(self._on_opacity)
        self.mask_check = QCheckBox("Mask (O)")
        self.heatmap_check = QCheckBox("Heat map (V)")
        self.calipers_check = QCheckBox("Calipers (D)")
        self.calipers_check.setToolTip("Draw each lesion's long and short axis on the image")
        self.mask_check.setToolTip("Show the mask and its outline")
        self.heatmap_check.setToolTip("Show the model's probability heat map")
        for check, action in ((self.mask_check, actions["toggle_mask"]),
                              (self.heatmap_check, actions["toggle_heatmap"]),
                              (self.calipers_check, actions["toggle_calipers"])):
            check.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            check.setChecked(action.isChecked())
            check.toggled.connect(action.setChecked)
            action.toggled.connect(check.setChecked)
        box.addLayout(_slider_row(self.opacity_label, self.opacity_slider))
        checks = QHBoxLayout()
        checks.addWidget(self.mask_check)
        checks.addWidget(self.heatmap_check)
        checks.addWidget(self.calipers_check)
        checks.addStretch(1)
        box.addLayout(checks)
        layout.addWidget(display)

        model, box = _group("Model", QVBoxLayout)
        self.threshold_label = QLabel()
        self.threshold_slider = _slider(5, 95, 50)
        self.threshold_slider.setToolTip("Probability above which a pixel is lesion; applies to every frame still "
                                         "'proposed' when you let go (edited and accepted frames keep their mask)")
        self.threshold_label.setToolTip(self.threshold_slider.toolTip())
        self.threshold_slider.valueChanged.connect(self._show_threshold)
        self.threshold_slider.sliderReleased.connect(
            lambda: self.threshold_released.emit(self.threshold_slider.value() / THRESHOLD_STEPS))
        box.addWidget(_button(actions["propose"]))
        box.addLayout(_slider_row(self.threshold_label, self.threshold_slider))
        box.addWidget(_button(actions["finetune"]))
        layout.addWidget(model)

        review, row = _group("Review", QHBoxLayout)
        self.accept_button = _button(actions["accept"])
        self.accept_button.setObjectName("acceptButton")
        self.accept_button.setStyleSheet("QToolButton { background: #2f7d4f; color: white; font-weight: bold; }"
                                         "QToolButton:disabled { background: #2b3a31; color: #7d8a80; }")
        row.addWidget(self.accept_button)
        row.addWidget(_button(actions["accept_range"]))
        layout.addWidget(review)
        self.frame_info = FrameInfo(actions)
        self.lesion_panel = self.frame_info.lesion_panel
        layout.addWidget(self.frame_info)
        layout.addStretch(1)
        self._on_brush(brush_radius)
        self._on_opacity(self.opacity_slider.value())
        self._show_threshold(self.threshold_slider.value())

    def set_brush_radius(self, radius: int) -> None:
        self.brush_slider.setValue(int(min(max(radius, MIN_BRUSH_RADIUS), MAX_BRUSH_RADIUS)))

    def set_threshold(self, threshold: float) -> None:
        """Show the document's threshold (without applying it again)."""
        self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(int(round(threshold * THRESHOLD_STEPS)))
        self.threshold_slider.blockSignals(False)
        self._show_threshold(self.threshold_slider.value())

    def _on_brush(self, value: int) -> None:
        self.brush_label.setText(f"Brush {value} px")
        self.brush_radius_changed.emit(int(value))

    def _on_opacity(self, value: int) -> None:
        self.opacity_label.setText(f"Opacity {value} %")
        self.opacity_changed.emit(value / 100)

    def _show_threshold(self, value: int) -> None:
        self.threshold_label.setText(f"Threshold {value / THRESHOLD_STEPS:.2f}")
