"""Colours and the dark theme of the Studio (one place, so the canvas, timeline, legend and status bar agree).

Dark grey around the image, as in radiology viewers: the eye adapts to the frame, not to the chrome. Status
colours are distinguishable with the common colour-vision deficiencies (grey / amber / blue / green differ in
lightness as well as hue).
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from ..document import FrameStatus

STATUS_COLORS: dict[FrameStatus, tuple[int, int, int]] = {
    FrameStatus.UNREVIEWED: (88, 92, 102),
    FrameStatus.PROPOSED: (235, 170, 40),
    FrameStatus.EDITED: (70, 140, 240),
    FrameStatus.ACCEPTED: (50, 185, 100),
}
STATUS_LABELS = {FrameStatus.UNREVIEWED: "Unreviewed", FrameStatus.PROPOSED: "Proposed",
                 FrameStatus.EDITED: "Edited", FrameStatus.ACCEPTED: "Accepted"}
# A proposed frame whose mask optical flow carried from a neighbour (origin "flow:<i>"), not the model: its own
# colour, so that the expert sees which masks no model vouched for (violet: apart from amber in hue and lightness)
PROPAGATED_COLOR = (170, 120, 230)
PROPAGATED_LABEL = "Propagated"
CHANGED_MARK = (120, 230, 255)  # timeline ticks: frames the last learning round re-proposed differently
CLICK_POSITIVE = (60, 220, 90)  # Prompt tool markers: green + "lesion here"
CLICK_NEGATIVE = (245, 75, 75)  # red - "not lesion here"
MARKER_OUTLINE = (10, 12, 14)  # dark rim: markers stay visible on bright and dark tissue alike
BOX_OUTLINE = (120, 230, 255)  # the box being dragged in the Prompt tool

# Lesion k's colour is LESION_COLORS[(k - 1) % 8]: the Okabe-Ito palette (told apart with the common colour-vision
# deficiencies), lesion 1 the Studio's teal, black left out (invisible on ultrasound) and the blue lightened
LESION_COLORS = ((0, 214, 170), (230, 159, 0), (86, 180, 233), (204, 121, 167), (240, 228, 66), (213, 94, 0),
                 (60, 140, 220), (200, 200, 200))
LESION_RIM = (10, 12, 14)  # a dark line under each lesion's outline: it stays visible on bright tissue
MASK_FILL = (0, 214, 170)  # teal: visible on grey ultrasound and on pink/red endoscopy alike
MASK_CONTOUR = (255, 236, 90)  # light yellow boundary, opaque, drawn above the fill
HEATMAP_CONTOUR = (0, 230, 255)  # cyan: the boundary over the heat map's reds and yellows
BRUSH_CURSOR = (255, 255, 255)
ERASER_CURSOR = (255, 110, 110)
AREA_CURVE = (0, 214, 170)
LONG_AXIS_CURVE = (255, 170, 60)  # the long axis over the video (timeline, when shown)
CALIPER_LONG = (255, 170, 60)  # calipers on the image: long axis orange, short axis cyan, both with a dark rim
CALIPER_SHORT = (90, 210, 255)
CALIPER_RIM = (10, 12, 14)
CALIBRATION_LINE = (255, 90, 200)  # the line drawn over a known length: magenta, unlike any mask colour
CONFIDENCE_CURVE = (200, 160, 255)
PLAYHEAD = (255, 255, 255)

BACKGROUND = "#1e2024"
PANEL = "#26292e"
TEXT = "#e6e8eb"
MUTED_TEXT = "#a0a6b0"
WARNING_TEXT = "#e0a040"  # amber: something the user should know (no model, not saved, read-only)
ACCENT = "#3fa7d6"

STYLE_SHEET = f"""
QMainWindow, QDialog {{ background: {BACKGROUND}; }}
QDockWidget::title {{ background: {PANEL}; padding: 4px 8px; color: {MUTED_TEXT}; }}
QGroupBox {{ border: 1px solid #3a3f47; border-radius: 4px; margin-top: 13px; padding-top: 3px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 8px; padding: 0 4px; color: {MUTED_TEXT}; }}
QToolButton {{ padding: 5px 8px; border-radius: 4px; background: #30343b; border: 1px solid #3d424a; }}
QToolButton:hover {{ background: #383d45; border-color: #4a505a; }}
QToolButton:pressed {{ background: #2a2e34; }}
QToolButton:checked {{ background: {ACCENT}; color: #0b1014; border-color: {ACCENT}; font-weight: bold; }}
QToolButton:disabled {{ color: #6b7078; background: #2a2d32; }}
QPushButton {{ padding: 4px 10px; }}
QStatusBar {{ background: {PANEL}; color: {TEXT}; }}
QStatusBar QLabel {{ padding: 0 6px; }}
QLabel#banner {{ background: #3b3220; color: #ffd98a; padding: 6px 10px; border-radius: 3px; }}
"""


def qcolor(rgb: tuple[int, int, int], alpha: int = 255) -> QColor:
    return QColor(rgb[0], rgb[1], rgb[2], alpha)


def lesion_color(lesion: int) -> tuple[int, int, int]:
    return LESION_COLORS[(int(lesion) - 1) % len(LESION_COLORS)]


def lesion_swatch_html(lesion: int, text: str | None = None) -> str:
    """A square in lesion `lesion`'s colour and its name ("L2", or `text`)."""
    return f"<span style='color:{css(lesion_color(lesion))}'>&#9632;</span> {text or f'L{lesion}'}"


def status_css(status: FrameStatus) -> str:
    r, g, b = STATUS_COLORS[status]
    return f"rgb({r},{g},{b})"


def css(rgb: tuple[int, int, int]) -> str:
    return f"rgb({rgb[0]},{rgb[1]},{rgb[2]})"


def review_label_html(record) -> str:
    """The frame's review state in its colour: the status, or "Propagated" for a frame filled by flow."""
    if record.propagated:
        return f"<span style='color:{css(PROPAGATED_COLOR)}'>{PROPAGATED_LABEL}</span>"
    return f"<span style='color:{status_css(record.status)}'>{STATUS_LABELS[record.status]}</span>"


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style with a dark palette (consistent on Linux, Windows and macOS)."""
    app.setStyle("Fusion")
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: BACKGROUND, QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: "#17191c", QPalette.ColorRole.AlternateBase: PANEL,
        QPalette.ColorRole.Text: TEXT, QPalette.ColorRole.Button: PANEL, QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.Highlight: ACCENT, QPalette.ColorRole.HighlightedText: "#0b1014",
        QPalette.ColorRole.ToolTipBase: PANEL, QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.PlaceholderText: MUTED_TEXT, QPalette.ColorRole.Link: ACCENT,
    }
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#6b7078"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#6b7078"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor("#6b7078"))
    app.setPalette(palette)
    app.setStyleSheet(STYLE_SHEET)
