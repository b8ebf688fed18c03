"""Lesion measurements against analytic shapes of known size: within 2 % and 1 pixel."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vivim_studio.document.measurements import measure_lesion


def _ellipse(shape, centre, axes, angle):
    mask = np.zeros(shape, dtype=np.uint8)
    cv2.ellipse(mask, centre, axes, angle, 0, 360, 1, thickness=-1)
    return mask.astype(bool)


def _rotated_rectangle(shape, centre, size, angle):
    mask = np.zeros(shape, dtype=np.uint8)
    box = cv2.boxPoints((centre, size, angle))
    cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 1)
    return mask.astype(bool)


def _close(measured, true, pixel=1.0):
    assert abs(measured - true) <= max(0.02 * true, pixel), (measured, true)


@pytest.mark.parametrize("angle", [0, 17, 45, 90, 133])
def test_ellipse_axes_are_its_diameters(angle):
    mask = _ellipse((300, 300), (150, 150), (90, 40), angle)  # semi-axes 90 and 40 px
    m = measure_lesion(mask)
    _close(m.long_axis.length, 181)  # cv2 draws semi-axis a as a+1 pixels wide each side: 2a + 1
    _close(m.short_axis.length, 81)
    assert m.area_mm2 is None and m.long_axis_mm is None  # no calibration: no millimetres


@pytest.mark.parametrize("angle", [0, 20, 45, 70])
def test_rotated_rectangle_long_axis_is_its_diagonal_and_short_axis_is_perpendicular(angle):
    mask = _rotated_rectangle((300, 300), (150.0, 150.0), (160.0, 60.0), angle)
    m = measure_lesion(mask)
    width, height = 161.0, 61.0  # cv2.fillPoly fills both edges: one pixel more than the box
    diagonal = float(np.hypot(width, height))
    _close(m.long_axis.length, diagonal)
    # the longest chord perpendicular to the diagonal of a w x h rectangle (w > h) crosses its centre: h D / w
    _close(m.short_axis.length, height * diagonal / width)


def test_spacing_turns_pixels_into_millimetres_and_non_square_pixels_are_measured_right():
    mask = np.zeros((200, 200), dtype=bool)
    mask[50:150, 20:180] = True  # 100 rows x 160 columns
    m = measure_lesion(mask, spacing=(0.2, 0.1))  # rows 0.2 mm, columns 0.1 mm: 20 mm x 16 mm
    _close(m.long_axis_mm, float(np.hypot(20.0, 16.0)), pixel=0.2)
    assert m.area_mm2 == pytest.approx(100 * 160 * 0.02)
    ends = np.array(m.long_axis.ends)
    assert ends.min() >= 19 and ends.max() <= 180  # the calipers' ends are in pixel coordinates


def test_an_empty_mask_has_no_axes():
    m = measure_lesion(np.zeros((10, 10), dtype=bool), spacing=(0.1, 0.1))
    assert m.area_px == 0 and m.long_axis is None and m.short_axis is None and m.area_mm2 == 0.0


def test_a_single_pixel_measures_one_pixel():
    mask = np.zeros((5, 5), dtype=bool)
    mask[2, 2] = True
    m = measure_lesion(mask)
    assert m.long_axis.length == pytest.approx(1.0) and m.short_axis.length == pytest.approx(1.0, abs=0.3)
