"""Calibrations of a document: what the DICOM file states (technical fields only), a line the user drew (kept
in the workspace, validated on open), and what a workspace recorded when the video is not at hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vivim_studio.document import EditError, VideoDocument, WorkspaceError
from vivim_studio.document.calibration import CalibrationError, UserCalibration
from vivim_studio.document.document_calibration import CALIBRATION_FILE

from .clinical_helpers import PATIENT, ultrasound_region, write_us_cine

H, W = 40, 60


def cine(tmp_path, **kwargs):
    return write_us_cine(tmp_path / "cine.dcm", np.zeros((3, H, W), np.uint8), **kwargs)


def test_the_dicom_source_states_its_regions_and_pixel_spacing_and_nothing_else(tmp_path):
    regions = [ultrasound_region(0, 0, 29, 39, 0.01), ultrasound_region(30, 0, 59, 39, 0.02),
               ultrasound_region(0, 0, 59, 9, 1.0, units=4)]  # units 4 (seconds, a Doppler strip): not a length
    with VideoDocument.open(cine(tmp_path, regions=regions, pixel_spacing=[0.3, 0.3]), tmp_path / "ws") as doc:
        found = doc.source.calibrations
        assert [(c.spacing, c.region) for c in found] == [((0.1, 0.1), (0, 0, 30, 40)), ((0.2, 0.2), (30, 0, 60, 40)),
                                                          ((0.3, 0.3), None)]
        assert doc.calibrations == found
        left = np.zeros((H, W), bool)
        left[10:20, 5:15] = True
        assert doc.calibration_for(left) is found[0] and doc.calibration_for(np.roll(left, 40, 1)) is found[1]
        metadata = json.dumps(doc.source.metadata)
        assert doc.source.metadata["pixel_spacing_mm"] == [0.3, 0.3]
        assert not any(value in metadata for value in PATIENT.values() if len(value) >= 5)
    recorded = json.loads((tmp_path / "ws" / "workspace.json").read_text())["source"]["metadata"]["calibrations"]
    assert len(recorded) == 3


def test_regions_that_agree_give_the_volume_spacing_and_unusable_ones_are_noted(tmp_path):
    regions = [ultrasound_region(0, 0, 29, 39, 0.01), ultrasound_region(30, 0, 59, 39, 0.01)]
    with VideoDocument.open(cine(tmp_path, regions=regions), tmp_path / "ws") as doc:
        assert doc.source.metadata["pixel_spacing_mm"] == [0.1, 0.1]
    (tmp_path / "cine.dcm").unlink()
    bad = [ultrasound_region(0, 0, 29, 39, 0.0), ultrasound_region(30, 0, 59, 39, 0.02)]
    with VideoDocument.open(cine(tmp_path, regions=bad), tmp_path / "ws2") as doc:
        assert [c.spacing for c in doc.calibrations] == [(0.2, 0.2)]
        assert any("ultrasound regions in cm give no plausible pixel size" in w for w in doc.warnings)


def test_a_drawn_line_is_kept_in_the_workspace_and_comes_first(tmp_path):
    path = cine(tmp_path, pixel_spacing=[0.3, 0.3])
    seen = []
    with VideoDocument.open(path, tmp_path / "ws") as doc:
        doc.events.calibration_changed.connect(lambda: seen.append(doc.user_calibration))
        calibration = doc.set_user_calibration((5, 2), (5, 38), 9.0, frame=1)  # 9 mm over 36 px
        assert calibration.spacing == pytest.approx((0.25, 0.25)) and "frame 2" in calibration.source
        assert doc.calibrations[0] is calibration and len(doc.calibrations) == 2
        assert doc.calibration_for(np.ones((H, W), bool)) is calibration
        with pytest.raises(CalibrationError, match="outside"):
            doc.set_user_calibration((5, 2), (500, 38), 9.0)
        with pytest.raises(CalibrationError, match="at least 10 pixels"):
            doc.set_user_calibration((5, 2), (5, 5), 9.0)
    assert len(seen) == 1
    stored = json.loads((tmp_path / "ws" / CALIBRATION_FILE).read_text())
    assert stored["line"] == {"start": [5.0, 2.0], "end": [5.0, 38.0], "length_mm": 9.0, "frame": 1}
    with VideoDocument.open(path, tmp_path / "ws") as doc:
        assert doc.user_calibration == UserCalibration.from_line((5, 2), (5, 38), 9.0, 1)
        assert doc.clear_user_calibration() and not doc.clear_user_calibration()
        assert [c.spacing for c in doc.calibrations] == [(0.3, 0.3)]
    assert not (tmp_path / "ws" / CALIBRATION_FILE).exists()


@pytest.mark.parametrize("content", [
    "not json", json.dumps([1, 2]), json.dumps({"format": "other"}),
    json.dumps({"format": "vivim-studio-calibration", "format_version": 1, "line": {"start": [0, 0], "end": [0, 3],
                                                                                    "length_mm": 5}}),
    json.dumps({"format": "vivim-studio-calibration", "format_version": 1, "line": {"start": [0, 0], "end": [0, 30],
                                                                                    "length_mm": -5}}),
    json.dumps({"format": "vivim-studio-calibration", "format_version": 1, "line": {"start": ["a", 0], "end": [0, 30],
                                                                                    "length_mm": 5}}),
], ids=["text", "list", "foreign", "too-short", "negative", "not-a-point"])
def test_a_calibration_file_that_is_not_one_is_refused_on_open_and_left_alone(tmp_path, content):
    path = cine(tmp_path)
    with VideoDocument.open(path, tmp_path / "ws"):
        pass
    (tmp_path / "ws" / CALIBRATION_FILE).write_text(content)
    with pytest.raises(WorkspaceError, match=CALIBRATION_FILE):
        VideoDocument.open(path, tmp_path / "ws")
    assert (tmp_path / "ws" / CALIBRATION_FILE).read_text() == content


def test_read_only_workspaces_and_in_memory_documents(tmp_path):
    path = cine(tmp_path)
    with VideoDocument.open(path, tmp_path / "ws") as doc:
        doc.set_user_calibration((0, 0), (30, 40), 10.0)  # 50 px: 0.2 mm
    with VideoDocument.open_workspace(tmp_path / "ws", read_only=True) as doc:
        assert doc.calibrations[0].spacing == pytest.approx((0.2, 0.2))
        with pytest.raises(EditError):
            doc.clear_user_calibration()
    from vivim_studio.document import open_source

    doc = VideoDocument(open_source(path))  # no workspace: kept in memory
    doc.set_user_calibration((0, 0), (0, 20), 4.0)
    assert doc.calibrations[0].spacing == pytest.approx((0.2, 0.2))
    doc.close()


def test_a_video_without_metadata_is_uncalibrated(document):
    assert document.calibrations == [] and document.calibration_for(np.ones(document.frame_size, bool)) is None
