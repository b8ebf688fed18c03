"""The lesion report: every number against analytic shapes (ellipses, rotated rectangles of known size) within
2 % and one pixel, with and without calibration; the calibration chosen per lesion; the key frame; what the
files say; where they may be written."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from vivim_core.file_safety import UnsafePathError
from vivim_studio.cli import main as studio
from vivim_studio.document import VideoDocument
from vivim_studio.document.report import CSV_COLUMNS, ReportError, ReportOptions, write_report

from .clinical_helpers import PATIENT, ellipse, rotated_rectangle, ultrasound_region, with_labels, within, write_us_cine

H, W = 160, 320
SEMI_AXES = [(30.3, 14.2), (40.6, 18.1), (55.2, 25.7), (45.4, 20.3), (35.8, 15.5)]  # lesion 1: largest on frame 3
RECTANGLES = [(50.4, 20.2), (60.7, 24.1), (70.2, 30.6), (80.5, 34.3), (64.1, 26.8)]  # lesion 2: largest on frame 4
ANGLES = [0, 17, 45, 90, 133]


def lesion_maps() -> dict[int, np.ndarray]:
    """Frame -> uint8 label map: lesion 1 an ellipse in the left half, lesion 2 a rotated rectangle in the right."""
    maps = {}
    for t, (axes, size, angle) in enumerate(zip(SEMI_AXES, RECTANGLES, ANGLES)):
        labels = np.zeros((H, W), np.uint8)
        labels[ellipse((H, W), (80.3, 80.6), axes, angle)] = 1
        labels[rotated_rectangle((H, W), (240.4, 80.2), size, angle + 10)] = 2
        maps[t] = labels
    return maps


def true_sizes(lesion: int, t: int) -> tuple[float, float, float]:
    """(long, short, area) in pixels of the continuous shape drawn (see `clinical_helpers`)."""
    if lesion == 1:
        a, b = SEMI_AXES[t]
        return 2 * a, 2 * b, np.pi * a * b
    w, h = RECTANGLES[t]
    diagonal = float(np.hypot(w, h))
    return diagonal, h * diagonal / w, w * h


def cine(tmp_path, name="cine.dcm", **kwargs):
    frames = np.random.default_rng(0).integers(0, 120, (len(SEMI_AXES), H, W), dtype=np.uint8)
    return write_us_cine(tmp_path / name, frames, **kwargs)


def painted(path, workspace, maps):
    """Open the cine with the union of the lesions as each frame's mask (a human edit)."""
    doc = VideoDocument.open(path, workspace)
    for t, labels in maps.items():
        doc.set_mask(t, labels > 0)
    return doc


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


TWO_REGIONS = [ultrasound_region(0, 0, 159, 159, 0.01), ultrasound_region(160, 0, 319, 159, 0.02)]


def test_two_lesions_in_two_calibrated_regions_measure_in_millimetres(tmp_path):
    maps = lesion_maps()
    doc = painted(cine(tmp_path, regions=TWO_REGIONS), tmp_path / "ws", maps)
    with doc:
        result = write_report(with_labels(doc, maps), tmp_path / "report", ReportOptions(task="thyroid"))
    rows = read_csv(tmp_path / "report" / "measurements.csv")
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 2 * len(SEMI_AXES)
    for row in rows:
        t, lesion = int(row["frame"]) - 1, int(row["lesion"])
        mm = 0.1 if lesion == 1 else 0.2  # region 1 (left): 0.01 cm; region 2 (right): 0.02 cm
        long_px, short_px, area_px = true_sizes(lesion, t)
        assert f"region {lesion}" in row["spacing_source"] and row["status"] == "edited"
        assert within(float(row["long_axis_px"]), long_px) and within(float(row["short_axis_px"]), short_px)
        assert within(float(row["long_axis_mm"]), long_px * mm, pixel=mm)
        assert within(float(row["short_axis_mm"]), short_px * mm, pixel=mm)
        assert within(float(row["area_mm2"]), area_px * mm * mm, pixel=(long_px + short_px) * mm * mm)
        assert int(row["area_px"]) == int((maps[t] == lesion).sum())
        assert float(row["area_mm2"]) == pytest.approx(int(row["area_px"]) * mm * mm, rel=1e-3)
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    key_frames = {lesion["lesion"]: lesion["key_frame"] for lesion in summary["lesions"]}
    assert key_frames[1]["frame"] == 3 and key_frames[2]["frame"] == 4
    assert within(key_frames[1]["long_axis_mm"], 2 * 55.2 * 0.1, pixel=0.1)
    assert within(key_frames[2]["long_axis_mm"], float(np.hypot(80.5, 34.3)) * 0.2, pixel=0.2)
    assert [s.key.frame for s in result.lesions] == [2, 3]
    # the calipers are the measured axes, in pixel coordinates of the key frame
    (x0, y0), (x1, y1) = key_frames[1]["calipers_px"]["long_axis"]
    assert within(float(np.hypot(x1 - x0, y1 - y0)) + 1, 2 * 55.2)  # between pixel centres: one pixel less
    assert "not a diagnosis" in summary["note"]
    tirads = summary["lesions"][1]["size_information"]  # lesion 2: about 17.6 mm
    assert tirads["guideline"].startswith("ACR TI-RADS") and "not a diagnosis" in tirads["note"]
    by_level = {level["level"]: level["this_size"] for level in tirads["levels"]}
    assert by_level["TR5"].startswith("at or above the FNA") and by_level["TR4"].startswith("at or above the FNA")
    assert by_level["TR3"].startswith("at or above the follow-up")
    text = (tmp_path / "report" / "summary.json").read_text() + (tmp_path / "report" / "measurements.csv").read_text()
    assert not any(value in text for key, value in PATIENT.items() if len(value) >= 5)


@pytest.mark.parametrize("with_source", [True, False], ids=["dicom-without-calibration", "frame-folder"])
def test_uncalibrated_videos_measure_in_pixels_and_say_so(tmp_path, with_source):
    maps = lesion_maps()
    if with_source:
        path = cine(tmp_path)
    else:
        from .helpers import write_frame_folder
        path = write_frame_folder(tmp_path / "frames", np.zeros((len(SEMI_AXES), H, W, 3), np.uint8))
    with painted(path, tmp_path / "ws", maps) as doc:
        assert doc.calibrations == []
        result = write_report(doc, tmp_path / "report", ReportOptions(task="thyroid"))  # one lesion: the union
    for row in read_csv(tmp_path / "report" / "measurements.csv"):
        assert row["spacing_source"] == "uncalibrated"
        assert row["area_mm2"] == row["long_axis_mm"] == row["short_axis_mm"] == ""
        assert int(row["area_px"]) == int((maps[int(row["frame"]) - 1] > 0).sum())
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    (lesion,) = summary["lesions"]
    assert lesion["key_frame"]["long_axis_mm"] is None and lesion["size_information"] is None
    assert lesion["key_frame_chosen_by"].startswith("largest long axis in pixels")
    assert "mm" not in json.dumps(lesion["key_frame"]["long_axis_px"])
    assert result.lesions[0].key.calibration is None


def test_pixel_spacing_and_a_drawn_line_take_precedence_over_the_file(tmp_path):
    maps = lesion_maps()
    doc = painted(cine(tmp_path, regions=TWO_REGIONS, pixel_spacing=[0.3, 0.3]), tmp_path / "ws", maps)
    with doc:
        labelled = with_labels(doc, maps)
        write_report(labelled, tmp_path / "override", ReportOptions(pixel_spacing_mm=0.05))
        doc.set_user_calibration((10, 10), (10, 150), 35.0, frame=0)  # 35 mm over 140 px: 0.25 mm per pixel
        write_report(labelled, tmp_path / "drawn", ReportOptions())
        doc.clear_user_calibration()
        write_report(labelled, tmp_path / "file", ReportOptions())
    for folder, expected in (("override", {1: 0.05, 2: 0.05}), ("drawn", {1: 0.25, 2: 0.25}),
                             ("file", {1: 0.1, 2: 0.2})):
        for row in read_csv(tmp_path / folder / "measurements.csv"):
            mm = expected[int(row["lesion"])]
            assert float(row["long_axis_mm"]) == pytest.approx(float(row["long_axis_px"]) * mm, abs=1e-3), folder
    sources = {folder: read_csv(tmp_path / folder / "measurements.csv")[0]["spacing_source"]
               for folder in ("override", "drawn", "file")}
    assert sources["override"] == "--pixel-spacing 0.05 mm" and "drawn by the user" in sources["drawn"]
    assert "ultrasound region 1" in sources["file"]


def test_a_lesion_outside_every_region_is_uncalibrated_while_the_other_is_not(tmp_path):
    maps = lesion_maps()
    doc = painted(cine(tmp_path, regions=[TWO_REGIONS[0]]), tmp_path / "ws", maps)  # only the left region
    with doc:
        write_report(with_labels(doc, maps), tmp_path / "report", ReportOptions())
    rows = read_csv(tmp_path / "report" / "measurements.csv")
    assert {row["spacing_source"] for row in rows if row["lesion"] == "2"} == {"uncalibrated"}
    assert all(row["long_axis_mm"] for row in rows if row["lesion"] == "1")


def test_non_square_pixels_are_measured_in_physical_space(tmp_path):
    labels = np.zeros((H, W), np.uint8)
    labels[40:120, 60:260] = 1  # 80 rows x 200 columns
    doc = painted(cine(tmp_path, pixel_spacing=[0.2, 0.1]), tmp_path / "ws", {0: labels})  # 16 mm x 20 mm
    with doc:
        result = write_report(doc, tmp_path / "report")
    m = result.lesions[0].key.physical
    assert not result.lesions[0].key.touches_edge
    assert within(m.long_axis_mm, float(np.hypot(16, 20)), pixel=0.2)
    assert within(m.short_axis_mm, 16 * np.hypot(16, 20) / 20, pixel=0.2)  # h D / w in physical units
    assert m.area_mm2 == pytest.approx(80 * 200 * 0.02)


def test_the_figure_shows_every_lesion_and_is_drawn_without_the_video(tmp_path):
    maps = lesion_maps()
    path = cine(tmp_path, regions=TWO_REGIONS)
    with painted(path, tmp_path / "ws", maps) as doc:
        write_report(with_labels(doc, maps), tmp_path / "report")
    figure = cv2.imread(str(tmp_path / "report" / "report.png"))
    assert figure is not None and figure.shape[1] == 1000 and figure.shape[0] > 2 * 210 + 240
    path.unlink()  # the video moved away: the masks still measure, the key frame shows the outline only
    with VideoDocument.open_workspace(tmp_path / "ws", read_only=True) as doc:
        assert [c.spacing for c in doc.calibrations] == [(0.1, 0.1), (0.2, 0.2)]  # as the workspace recorded them
        result = write_report(doc, tmp_path / "report")
    assert cv2.imread(str(tmp_path / "report" / "report.png")) is not None and result.lesions[0].key.calibration


def test_the_report_folder_is_checked_and_another_videos_report_never_replaced(tmp_path):
    maps = lesion_maps()
    with painted(cine(tmp_path), tmp_path / "ws", maps) as doc:
        with pytest.raises(UnsafePathError, match="overlaps the input"):
            write_report(doc, tmp_path / "ws" / "report")
        write_report(doc, tmp_path / "report")
        write_report(doc, tmp_path / "report")  # the same video's report is replaced
        (tmp_path / "foreign").mkdir()
        (tmp_path / "foreign" / "measurements.csv").write_text("mine\n")
        with pytest.raises(ReportError, match="not written by a Vivim Studio report"):
            write_report(doc, tmp_path / "foreign")
        assert (tmp_path / "foreign" / "measurements.csv").read_text() == "mine\n"
    other = cine(tmp_path, "other.dcm")
    with painted(other, tmp_path / "ws2", {0: maps[0]}) as doc:
        with pytest.raises(ReportError, match="report of another video"):
            write_report(doc, tmp_path / "report")


def test_nothing_reviewed_is_a_clear_error_and_proposals_are_measured_only_when_asked(tmp_path):
    path = cine(tmp_path)
    with VideoDocument.open(path, tmp_path / "ws") as doc:
        doc.set_proposal(1, (lesion_maps()[1] > 0).astype(np.float32), model="9" * 64)
        with pytest.raises(ReportError, match="review frames first"):
            write_report(doc, tmp_path / "report")
        result = write_report(doc, tmp_path / "report", ReportOptions(selection="all"))
    assert result.summary["includes_unreviewed_proposals"] and result.rows[0].status.value == "proposed"


def test_the_report_verb(tmp_path, capsys):
    maps = lesion_maps()
    path = cine(tmp_path, regions=TWO_REGIONS)
    with painted(path, None, maps):
        pass
    workspace = path.with_name(path.name + ".vivim")
    capsys.readouterr()
    assert studio(["report", str(workspace), "--out", str(tmp_path / "r"), "--task", "thyroid"]) == 0
    out = capsys.readouterr().out
    assert "lesion 1: frame 3" in out and "mm" in out and "not a diagnosis" in out
    assert studio(["report", str(path), "--out", str(tmp_path / "r2"), "--pixel-spacing", "0.05"]) == 0
    assert "--pixel-spacing 0.05 mm" in capsys.readouterr().out
    assert studio(["report", str(workspace), "--out", str(workspace / "inside")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "overlaps" in err and "Traceback" not in err
    uncalibrated = cine(tmp_path, "plain.dcm")
    with painted(uncalibrated, None, maps):
        pass
    assert studio(["report", str(uncalibrated), "--out", str(tmp_path / "r3")]) == 0
    assert "px" in (out := capsys.readouterr().out) and "uncalibrated" in out and " mm" not in out


def test_a_lesion_cut_off_by_the_image_edge_says_so(tmp_path):
    labels = np.zeros((H, W), np.uint8)
    labels[50:90, 0:40] = 1  # reaches the left border
    with painted(cine(tmp_path, pixel_spacing=[0.1, 0.1]), tmp_path / "ws", {0: labels}) as doc:
        result = write_report(doc, tmp_path / "report")
    (row,) = read_csv(tmp_path / "report" / "measurements.csv")
    assert row["touches_image_edge"] == "yes" and result.lesions[0].key.touches_edge
    key = json.loads((tmp_path / "report" / "summary.json").read_text())["lesions"][0]["key_frame"]
    assert key["touches_image_edge"] and "may extend beyond the image" in key["note"]
