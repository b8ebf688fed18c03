"""Window/level for display: DICOM's linear mapping, the frame itself never changed."""

from __future__ import annotations

import numpy as np
import pytest

from vivim_studio.document.display import apply_window, window_from_percentiles, window_lut


def test_the_full_window_shows_the_frame_as_it_is_without_changing_it():
    frame = np.arange(256, dtype=np.uint8).reshape(16, 16)
    before = frame.copy()
    shown = apply_window(frame, 128, 256)
    assert np.array_equal(shown, frame) and shown is not frame
    assert np.array_equal(window_lut(128, 256), np.arange(256))  # the general formula agrees
    apply_window(frame, 40, 20)
    assert np.array_equal(frame, before)


def test_a_narrow_window_is_linear_between_black_and_white():
    lut = window_lut(100, 51)  # black at or below 99.5 - 25, white above 99.5 + 25
    assert lut[:75].max() == 0 and 0 < lut[75] < 10 and lut[124] < 255 and lut[125:].min() == 255
    assert lut[99] < 127.5 < lut[100]  # mid-grey at level - 0.5
    assert np.all(np.diff(lut.astype(int)) >= 0)
    assert np.array_equal(window_lut(100.0, 1.0), np.where(np.arange(256) < 99.5, 0, 255))  # a threshold


def test_colour_frames_get_the_same_mapping_on_every_channel():
    frame = np.random.default_rng(0).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    shown = apply_window(frame, 90, 60)
    assert shown.shape == frame.shape and shown.dtype == np.uint8
    assert np.array_equal(shown, window_lut(90, 60)[frame])


def test_a_window_from_percentiles_spans_them():
    frame = np.concatenate([np.full(1000, 40), np.arange(40, 201), np.full(1000, 200)]).astype(np.uint8)
    level, width = window_from_percentiles(frame, 1, 99)
    shown = apply_window(frame, level, width)
    assert shown[frame <= 40].max() == 0 and shown[frame >= 200].min() == 255


@pytest.mark.parametrize("level, width", [(100, 0.5), (float("nan"), 10), (100, float("inf"))])
def test_impossible_windows_are_refused(level, width):
    with pytest.raises(ValueError, match="width"):
        apply_window(np.zeros((2, 2), np.uint8), level, width)


def test_only_uint8_frames():
    with pytest.raises(ValueError, match="uint8"):
        apply_window(np.zeros((2, 2), np.uint16), 100, 10)
