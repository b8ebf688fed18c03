"""The side panel's "This frame" box: the current frame's review status, who made its mask, its lesions (a row
each, `lesion_panel`: colour, id, status, area and long x short axis: millimetres only with a calibration; the
calibration that backs them below), the
task's published size thresholds as information, the model's confidence and the last change."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLabel, QWidget

from ..document import VideoDocument
from .lesion_panel import LesionPanel
from .measurement_text import calibration_summary, frame_measurements, size_lines, thresholds_text
from .theme import MUTED_TEXT, WARNING_TEXT, review_label_html

ROWS = ("Status", "Mask", "Area", "Axes", "Calibration", "Size info", "Changed")  # the model's confidence is
# on the status row: the box stays short enough for a 768-pixel-high screen
LISTED = ("Area", "Axes")  # rows kept as text (the lesions' sizes in words) but not shown: the lesion list shows
# each lesion's area and axes in its row, and the room they took holds the list on a 768-pixel-high screen


def describe_origin(origin: str | None, document: VideoDocument) -> str:
    """Who made the mask, in words (provenance: `FrameRecord.mask_origin`)."""
    if not origin:
        return "none yet"
    kind, _, detail = origin.partition(":")
    if kind == "human":
        return "drawn or corrected by hand"
    if kind == "model":
        checkpoint = document.checkpoint or {}
        same = (checkpoint.get("sha256") or "").startswith(detail)
        return f"model {checkpoint.get('name') if same and checkpoint.get('name') else detail[:12]}"
    if kind == "flow":
        return f"propagated from frame {int(detail) + 1}" if detail.isdigit() else "propagated"
    if kind == "prompt":
        return "made by the model from your box or clicks"
    if kind in ("import", "imported"):
        return f"imported ({detail})"
    return origin


class FrameInfo(QGroupBox):
    """The current frame's record and its lesions' measurements (`show_frame`)."""

    def __init__(self, actions: dict[str, QAction], parent: QWidget | None = None):
        super().__init__("This frame", parent)
        self.lesion_panel = LesionPanel(actions)
        form = self._form = QFormLayout(self)
        form.setContentsMargins(6, 2, 6, 4)
        form.setVerticalSpacing(1)
        self.labels: dict[str, QLabel] = {}
        self.titles: dict[str, QLabel] = {}
        for key in (*ROWS, "Confidence"):
            label = QLabel("—")
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.labels[key] = label
            title = self.titles[key] = QLabel(key if key != "Confidence" else "confidence")
            title.setStyleSheet(f"color: {MUTED_TEXT}")
            if key == "Status":
                label.setWordWrap(False)
                status_row = QHBoxLayout()
                status_row.setSpacing(6)
                form.addRow(title, status_row)
                status_row.addWidget(label)
            elif key == "Confidence":
                label.setWordWrap(False)
                status_row.addWidget(title)
                status_row.addWidget(label)
                status_row.addStretch(1)
            else:
                form.addRow(title, label)
            if key == "Mask":
                form.addRow(self.lesion_panel)
        self.labels["Size info"].setToolTip("Published size thresholds for the lesion's long axis: information, "
                                            "not a diagnosis")
        self._show_size_info(None)
        for key in LISTED:
            form.setRowVisible(self.labels[key], False)

    def _show_size_info(self, text: tuple[str, str] | None) -> None:
        """Shown only when there is something to say (a calibrated lesion and a task): the panel stays short."""
        self._form.setRowVisible(self.labels["Size info"], text is not None)
        if text is not None:
            self.labels["Size info"].setText(text[0])
            self.labels["Size info"].setToolTip(text[1])

    def show_frame(self, document: VideoDocument | None, index: int, task: str | None = None) -> None:
        if document is None:
            for label in self.labels.values():
                label.setText("—")
            self._show_size_info(None)
            return
        record = document.record(index)
        self.labels["Status"].setText(review_label_html(record))
        origin = describe_origin(record.mask_origin, document)
        if record.clicks:
            positive = sum(1 for _, _, p in record.clicks if p)
            origin += f" ({positive} lesion, {len(record.clicks) - positive} background click(s))"
        self.labels["Mask"].setText(origin)
        self._show_measurements(document, index, task)
        # optical flow has no confidence; a model's score for another mask would mislead
        no_score = record.confidence is None or record.propagated
        self.labels["Confidence"].setText("—" if no_score else f"{record.confidence:.2f}")
        self.labels["Changed"].setText((record.updated or "—").replace("T", " ")[:19] + (" UTC" if record.updated
                                                                                           else ""))

    def _show_measurements(self, document: VideoDocument, index: int, task: str | None) -> None:
        rows = frame_measurements(document, index)
        if not rows:
            self.labels["Area"].setText("no lesion")
            self.labels["Axes"].setText("—")
            short, _full = calibration_summary(document)
            self.labels["Calibration"].setText(short if document.calibrations else
                                               f"<span style='color:{WARNING_TEXT}'>{short}</span>")
            self._show_size_info(None)
            return
        several = len(rows) > 1
        lines = [size_lines(row) for row in rows]
        for key in ("Area", "Axes", "Calibration"):
            texts = [line["Size" if key == "Area" else key] for line in lines]
            if key == "Calibration" and len(set(texts)) == 1:
                texts = texts[:1]  # one calibration backs every lesion: said once
            elif several:
                texts = [f"L{row.lesion}: {text}" for row, text in zip(rows, texts)]
            text = "<br>".join(texts)
            if key == "Calibration" and rows[0].physical is None and not several:
                text = f"<span style='color:{WARNING_TEXT}'>{text}</span>"
            self.labels[key].setText(text)
        infos = [(row, thresholds_text(row, task)) for row in rows]
        infos = [(row, info) for row, info in infos if info is not None]
        if not infos:
            self._show_size_info(None)
        else:
            line = "<br>".join((f"L{row.lesion}: " if several else "") + info[0] for row, info in infos)
            self._show_size_info((line, "".join(info[1] for _row, info in infos)))
