"""Where a pixel's size comes from: DICOM fields, a drawn line, the command line; never made up."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset

from vivim_studio.document.calibration import (Calibration, CalibrationError, calibration_from_line,
                                               calibration_from_spacing, calibrations_from_dicom,
                                               choose_calibration)


def _region(x0, y0, x1, y1, delta_cm, units=3):
    item = Dataset()
    item.RegionLocationMinX0, item.RegionLocationMinY0 = x0, y0
    item.RegionLocationMaxX1, item.RegionLocationMaxY1 = x1, y1
    item.PhysicalUnitsXDirection = item.PhysicalUnitsYDirection = units
    item.PhysicalDeltaX = item.PhysicalDeltaY = delta_cm
    return item


def test_ultrasound_regions_in_cm_become_mm_and_the_lesion_picks_its_region():
    ds = Dataset()
    ds.SequenceOfUltrasoundRegions = [_region(0, 0, 99, 199, 0.01), _region(100, 0, 199, 199, 0.02),
                                      _region(0, 0, 199, 199, 0.5, units=4)]  # units 4 (seconds): ignored
    found = calibrations_from_dicom(ds)
    assert [c.spacing for c in found] == [(0.1, 0.1), (0.2, 0.2)]
    assert "ultrasound region 2" in found[1].source
    mask = np.zeros((200, 200), dtype=bool)
    mask[50:60, 140:160] = True  # inside region 2
    assert choose_calibration(found, mask) is found[1]
    mask[:] = False
    mask[50:60, 10:20] = True
    assert choose_calibration(found, mask) is found[0]


def test_pixel_spacing_applies_to_the_whole_image_and_bad_values_are_never_used():
    ds = Dataset()
    ds.PixelSpacing = [0.25, 0.3]
    (found,) = calibrations_from_dicom(ds)
    assert found.spacing == (0.25, 0.3) and found.region is None and "Pixel Spacing" in found.source
    for bad in ([0, 0.3], [-0.1, 0.1], [float("nan"), 1.0], [1e6, 1.0]):
        ds.PixelSpacing = bad
        assert calibrations_from_dicom(ds) == []
    ds = Dataset()
    ds.SequenceOfUltrasoundRegions = [_region(0, 0, 9, 9, 0.0)]
    assert calibrations_from_dicom(ds) == []


def test_no_calibration_means_none_for_every_lesion():
    assert choose_calibration([], np.ones((4, 4), dtype=bool)) is None
    ds = Dataset()
    ds.SequenceOfUltrasoundRegions = [_region(0, 0, 9, 9, 0.01)]
    mask = np.zeros((40, 40), dtype=bool)
    mask[30:35, 30:35] = True  # outside the only region
    assert choose_calibration(calibrations_from_dicom(ds), mask) is None


def test_a_drawn_line_and_the_command_line_give_square_pixels_with_their_source():
    line = calibration_from_line((10, 40), (10, 440), 40.0, frame=4)
    assert line.spacing == pytest.approx((0.1, 0.1)) and "frame 5" in line.source and "40 mm" in line.source
    with pytest.raises(CalibrationError, match="at least 10 pixels"):
        calibration_from_line((0, 0), (3, 0), 10.0)
    with pytest.raises(CalibrationError, match="positive"):
        calibration_from_line((0, 0), (300, 0), 0.0)
    assert calibration_from_spacing(0.08).spacing == (0.08, 0.08)
    with pytest.raises(CalibrationError, match="not plausible"):
        calibration_from_spacing(-1)


def test_json_round_trip_and_refusal_of_what_is_not_a_calibration():
    calibration = Calibration(0.1, 0.2, "test", (0, 0, 10, 10))
    assert Calibration.from_json(calibration.to_json()) == calibration
    for bad in (None, [], {"row_mm": 0.1}, {"row_mm": 0.1, "column_mm": 0.1, "source": "x", "region": [0, 0, -1, 2]},
                {"row_mm": "0.1", "column_mm": 0.1, "source": "x"}, {"row_mm": 0.0, "column_mm": 0.1, "source": "x"}):
        with pytest.raises(CalibrationError):
            Calibration.from_json(bad)
