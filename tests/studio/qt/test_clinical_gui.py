"""The clinical features of the window: a line drawn over a known length calibrates the video (saved, shown,
removable); calipers lie on a lesion's measured axes; lengths are in pixels and say "uncalibrated" until a
calibration backs millimetres; brightness / contrast changes the display only; the report action writes the
report's files; DICOM-SEG is offered for DICOM sources only, with its privacy note."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vivim_studio.document.display import apply_window
from vivim_studio.document.measurements import measure_lesion
from vivim_studio.qt.tools import Tool

from ..clinical_helpers import ellipse
from .conftest import drag, open_video, wait_idle

ELLIPSE = dict(centre=(31.0, 30.0), semi_axes=(22.0, 11.0), angle=30.0)  # in a 64x64 frame


def put_ellipse(document, frame: int = 0) -> np.ndarray:
    mask = ellipse(document.frame_size, **ELLIPSE)
    document.set_mask(frame, mask)
    return mask


def test_drawn_line_calibrates_the_video_and_can_be_removed(make_window, small_video, qtbot, tmp_path, monkeypatch):
    window = make_window()
    document = open_video(qtbot, window, small_video, tmp_path / "ws")
    put_ellipse(document)
    info = window.panel.frame_info.labels
    qtbot.waitUntil(lambda: "px" in info["Axes"].text())
    assert "uncalibrated" in window.status.calibration_label.text()
    assert "uncalibrated" in info["Calibration"].text() and "mm" not in info["Axes"].text() + info["Area"].text()

    asked = []
    monkeypatch.setattr(window, "ask_calibration_length", lambda pixels: asked.append(pixels) or 20.0)
    window.actions_by_id["tool_calibrate"].trigger()
    assert window.canvas.tool is Tool.CALIBRATE
    drag(qtbot, window.canvas, [(4, 8), (4, 30), (4, 48)])
    drawn = document.user_calibration
    assert drawn is not None and drawn.length_mm == 20.0 and drawn.frame == 0
    (x0, y0), (x1, y1) = drawn.start, drawn.end
    assert abs(x0 - 4) < 1 and abs(y0 - 8) < 1 and abs(x1 - 4) < 1 and abs(y1 - 48) < 1  # screen pixel rounding
    assert asked == [pytest.approx(math.dist(drawn.start, drawn.end))]
    mm = 20.0 / math.dist(drawn.start, drawn.end)
    assert document.calibration_for(document.mask(0)).row_mm == pytest.approx(mm)
    assert (tmp_path / "ws" / "calibration.json").is_file()
    qtbot.waitUntil(lambda: "drawn line" in window.status.calibration_label.text())
    assert f"{mm:.4g} mm/px" in window.status.calibration_label.text()
    assert "drawn line" in info["Calibration"].text() and " mm" in info["Axes"].text()
    assert window.canvas.calibration_overlay.saved.isVisible()  # the line shows while calibrating
    assert window.canvas.calibration_overlay.drawn_line is None  # the rubber band is gone

    assert window.actions_by_id["clear_calibration"].isEnabled()
    window.actions_by_id["clear_calibration"].trigger()
    assert document.user_calibration is None and not (tmp_path / "ws" / "calibration.json").exists()
    qtbot.waitUntil(lambda: "uncalibrated" in window.status.calibration_label.text())
    assert "mm" not in info["Axes"].text() and not window.actions_by_id["clear_calibration"].isEnabled()


def test_a_short_or_cancelled_line_leaves_the_video_uncalibrated(make_window, small_video, qtbot, monkeypatch):
    window = make_window()
    document = open_video(qtbot, window, small_video)
    monkeypatch.setattr(window, "ask_calibration_length", lambda pixels: None)  # the user cancels
    window.set_tool(Tool.CALIBRATE)
    drag(qtbot, window.canvas, [(10, 10), (10, 40)])
    assert document.user_calibration is None and window.canvas.calibration_overlay.drawn_line is None
    drag(qtbot, window.canvas, [(10, 10), (12, 12)])  # under 10 px: refused with a message
    assert document.user_calibration is None and "at least 10 pixels" in window.messages[-1]


def test_calipers_lie_on_the_measured_axes_of_an_ellipse(make_window, small_video, qtbot):
    window = make_window()
    document = open_video(qtbot, window, small_video)
    mask = put_ellipse(document)
    assert window.canvas.calipers.segments() == []  # off until asked for
    window.actions_by_id["toggle_calipers"].setChecked(True)
    measured = measure_lesion(mask)
    segments = {name: ends for _lesion, name, ends in window.canvas.calipers.segments()}
    assert segments == {"long": measured.long_axis.ends, "short": measured.short_axis.ends}
    (x0, y0), (x1, y1) = segments["long"]
    assert math.dist((x0, y0), (x1, y1)) + 1 == pytest.approx(2 * ELLIPSE["semi_axes"][0], abs=1.5)
    angle = math.degrees(math.atan2(y1 - y0, x1 - x0)) % 180
    assert angle == pytest.approx(ELLIPSE["angle"], abs=4)
    centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    assert math.dist(centre, ELLIPSE["centre"]) < 1.0
    (sx0, sy0), (sx1, sy1) = segments["short"]
    assert math.dist((sx0, sy0), (sx1, sy1)) + 1 == pytest.approx(2 * ELLIPSE["semi_axes"][1], abs=1.5)
    dot = (x1 - x0) * (sx1 - sx0) + (y1 - y0) * (sy1 - sy0)
    assert abs(dot) < 1e-6 * math.dist((x0, y0), (x1, y1)) * math.dist((sx0, sy0), (sx1, sy1))  # perpendicular
    labels = window.canvas.calipers.labels()
    assert len(labels) == 2 and all(label.endswith(" px") for label in labels)  # uncalibrated: pixels

    window.calibrate((2, 2), (2, 52), 25.0)  # 0.5 mm per pixel
    qtbot.waitUntil(lambda: all(label.endswith(" mm") for label in window.canvas.calipers.labels()))
    assert window.canvas.calipers.labels()[0] == f"{measured.long_axis.length * 0.5:.1f} mm"
    window.actions_by_id["toggle_calipers"].setChecked(False)
    assert window.canvas.calipers.segments() == []


def test_window_level_changes_the_display_only(make_window, small_video, qtbot):
    window = make_window()
    document = open_video(qtbot, window, small_video)
    frame = document.frame(0).copy()
    shown = window.canvas.frame_item.image
    assert np.array_equal(shown, frame)
    window.show_window_level()
    dialog = window.window_level_dialog
    dialog.level_slider.setValue(60)
    dialog.width_slider.setValue(40)
    assert (window.canvas.display_window.level, window.canvas.display_window.width) == (60, 40)
    assert np.array_equal(window.canvas.frame_item.image, apply_window(frame, 60, 40))
    assert not np.array_equal(window.canvas.frame_item.image, frame)
    assert np.array_equal(document.frame(0), frame)  # the data is untouched
    assert window.status.window_label.isVisible() and "display only" in window.status.window_label.text()
    window.actions_by_id["next_frame"].trigger()  # the window stays as the user scrubs
    assert np.array_equal(window.canvas.frame_item.image, apply_window(document.frame(1), 60, 40))
    window.actions_by_id["reset_window_level"].trigger()
    assert np.array_equal(window.canvas.frame_item.image, document.frame(1))
    assert not window.status.window_label.isVisible() and dialog.level_slider.value() == 128
    dialog.close()


def test_report_action_writes_the_report_files(make_window, small_video, qtbot, tmp_path):
    from vivim_studio.document.report import ReportOptions
    from vivim_studio.qt.report_dialog import ReportDialog

    window = make_window()
    document = open_video(qtbot, window, small_video, tmp_path / "ws")
    for frame in (0, 3):
        put_ellipse(document, frame)
    dialog = ReportDialog(document, tmp_path / "report", "thyroid", window)
    folder, options = dialog.result_options()
    assert folder == tmp_path / "report" and options.selection == "reviewed" and options.task == "thyroid"
    assert window.report_to(folder, ReportOptions(task="thyroid"))
    wait_idle(qtbot, window)
    assert sorted(p.name for p in folder.iterdir()) == ["measurements.csv", "report.png", "summary.json"]
    assert window.last_report.summary["frames_measured"] == [1, 4]
    assert "Report written: 1 lesion(s) measured on 2 frame(s)" in window.messages[-1]
    assert "not a diagnosis" in window.messages[-1]


def test_export_dialog_offers_dicom_seg_for_dicom_sources_only(make_window, small_video, qtbot, tmp_path):
    from vivim_studio.qt.dialogs import ExportDialog

    from ..clinical_helpers import write_us_cine
    from ..helpers import make_frames, write_frame_folder

    window = make_window()
    frames, _ = make_frames(num_frames=4)
    document = open_video(qtbot, window, write_frame_folder(tmp_path / "frames", frames), tmp_path / "ws1")
    dialog = ExportDialog(document, tmp_path / "out", window)
    seg = dialog.format_box.findData("dicom-seg")
    assert not dialog.format_box.model().item(seg).isEnabled()
    assert "DICOM-SEG is not available" in dialog.format_note.text()
    assert "vtus, png or nifti" in dialog.format_note.text() and "a folder of frames" in dialog.format_note.text()

    cine = write_us_cine(tmp_path / "cine.dcm", frames[..., 0].copy())
    document = open_video(qtbot, window, cine, tmp_path / "ws2")
    dialog = ExportDialog(document, tmp_path / "out", window)
    assert dialog.format_box.model().item(seg).isEnabled()
    dialog.format_box.setCurrentIndex(seg)
    assert "patient and study identifiers" in dialog.format_note.text()
    assert not dialog.resize_check.isEnabled()
    assert dialog.result_options()[1].format == "dicom-seg" and dialog.result_options()[1].size is None


def test_timeline_plots_the_long_axis_in_pixels_until_calibrated(make_window, small_video, qtbot):
    window = make_window()
    document = open_video(qtbot, window, small_video)
    mask = put_ellipse(document, 2)
    series = window.timeline.long_axis
    window.actions_by_id["toggle_long_axis_curve"].setChecked(True)
    qtbot.waitUntil(lambda: series.complete)
    x, y = window.timeline.long_axis_curve.getData()
    assert y[2] == pytest.approx(measure_lesion(mask).long_axis.length) and np.isnan(y[0])
    assert "uncalibrated" in window.timeline.curves.getAxis("left").labelText
    window.calibrate((2, 2), (2, 52), 25.0)
    qtbot.waitUntil(lambda: series.complete and series.unit == "mm")
    x, y = window.timeline.long_axis_curve.getData()
    assert y[2] == pytest.approx(measure_lesion(mask).long_axis.length * 0.5)
    assert window.timeline.curves.getAxis("left").labelText == "long axis (mm)"


def test_calibration_dialog_waits_for_a_typed_length(qtbot):
    from vivim_studio.qt.calibration_tool import CalibrationDialog

    dialog = CalibrationDialog(200.0)
    qtbot.addWidget(dialog)
    assert not dialog.ok_button.isEnabled() and dialog.result_label.text() == "—"  # no guessed length
    dialog.length_spin.setValue(40.0)
    assert dialog.ok_button.isEnabled() and dialog.result_label.text() == "0.2 mm per pixel"
    again = CalibrationDialog(100.0, previous_mm=40.0)  # a new line over the same ruler: the last length offered
    qtbot.addWidget(again)
    assert again.length_mm() == 40.0 and again.ok_button.isEnabled()


def test_size_thresholds_show_as_information_only_with_a_calibration(make_window, small_video, qtbot):
    window = make_window(task="thyroid")
    document = open_video(qtbot, window, small_video)
    put_ellipse(document)
    info = window.panel.frame_info
    qtbot.waitUntil(lambda: "px" in info.labels["Axes"].text())
    assert not info.labels["Size info"].isVisibleTo(info)  # pixels: no thresholds at all
    window.calibrate((2, 2), (2, 52), 25.0)  # 0.5 mm per pixel: a long axis of about 22 mm
    qtbot.waitUntil(lambda: info.labels["Size info"].isVisibleTo(info))
    text = info.labels["Size info"].text()
    assert text.startswith("TI-RADS 2.2") and "information, not a diagnosis" in text
    assert "FNA size for TR4, TR5; follow-up size for TR3" in text  # 2.2 cm: TR3 FNA from 2.5, follow-up 1.5
    assert "not a diagnosis" in info.labels["Size info"].toolTip()
