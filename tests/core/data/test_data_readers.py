"""Frame, mask and video readers: round trips, accepted encodings, and errors that name the file."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vivim_core.data.readers import (DataError, VideoFileReader, natural_key, read_frame, read_mask, write_frame,
                                     write_mask)
from vivim_core.data.synthetic import make_ultrasound_video, write_video_file
from vivim_core.errors import VivimError


def test_data_error_is_a_vivim_error():
    assert issubclass(DataError, VivimError)


def test_natural_order_sorts_integers_as_numbers():
    names = ["10.jpg", "2.jpg", "1.jpg", "case_10_3.jpg", "case_2_11.jpg", "case_2_3.jpg"]
    assert sorted(names, key=natural_key) == ["1.jpg", "2.jpg", "10.jpg", "case_2_3.jpg", "case_2_11.jpg",
                                              "case_10_3.jpg"]


def test_frame_round_trip_is_rgb(tmp_path):
    frame = np.zeros((8, 10, 3), np.uint8)
    frame[..., 0] = 200  # red
    read = read_frame(write_frame(tmp_path / "f.png", frame))
    assert read.shape == (8, 10, 3) and read.dtype == np.uint8
    np.testing.assert_array_equal(read, frame)


def test_grey_frame_is_replicated_to_three_channels(tmp_path):
    cv2.imwrite(str(tmp_path / "g.png"), np.full((5, 6), 77, np.uint8))
    frame = read_frame(tmp_path / "g.png")
    assert frame.shape == (5, 6, 3) and (frame == 77).all()


@settings(max_examples=15, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12))))
def test_mask_round_trip(tmp_path_factory, mask):
    path = write_mask(tmp_path_factory.mktemp("m") / "m.png", mask)
    stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.uint8 and stored.ndim == 2 and set(np.unique(stored)) <= {0, 255}
    np.testing.assert_array_equal(read_mask(path), mask)


@pytest.mark.parametrize("dtype, high", [(np.uint8, 1), (np.uint16, 1), (np.uint16, 255), (np.uint16, 65535)])
def test_other_binary_encodings_are_accepted(tmp_path, dtype, high):
    mask = np.zeros((6, 7), dtype)
    mask[2:4, 1:5] = high
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), mask == high)


def test_grey_mask_saved_as_rgb_is_accepted(tmp_path):
    mask = np.zeros((6, 7, 3), np.uint8)
    mask[1:3] = 255
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    assert read_mask(tmp_path / "m.png").sum() == 14


def test_coloured_mask_is_an_error(tmp_path):
    mask = np.zeros((6, 7, 3), np.uint8)
    mask[1:3, :, 2] = 255  # red only
    cv2.imwrite(str(tmp_path / "red.png"), mask)
    with pytest.raises(DataError, match=r"red\.png.*colour"):
        read_mask(tmp_path / "red.png")


def test_non_binary_mask_names_file_and_values(tmp_path):
    mask = np.zeros((6, 7), np.uint8)
    mask[0, 0], mask[1, 1] = 128, 255
    cv2.imwrite(str(tmp_path / "grey.png"), mask)
    with pytest.raises(DataError, match=r"grey\.png.*not binary.*128"):
        read_mask(tmp_path / "grey.png")


@pytest.mark.parametrize("content, problem", [(b"", "empty"), (b"not an image at all", "cannot decode"),
                                              (None, "not found")])
def test_bad_image_files_are_named(tmp_path, content, problem):
    path = tmp_path / "0001.png"
    if content is not None:
        path.write_bytes(content)
    for reader in (read_frame, read_mask):
        with pytest.raises(DataError, match=rf"0001\.png.*{problem}"):
            reader(path)


def test_truncated_jpeg_is_an_error_or_decodes(tmp_path):
    """A half-written JPEG either decodes (libjpeg pads it) or fails with the file named, never crashes."""
    path = write_frame(tmp_path / "f.jpg", np.full((32, 32, 3), 90, np.uint8))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match=r"f\.jpg"):
        read_frame(path)


def test_video_file_round_trip(tmp_path):
    frames, _ = make_ultrasound_video(num_frames=6, height=48, width=64, seed=1)
    path = write_video_file(tmp_path / "clip.mp4", frames, fps=10)
    reader = VideoFileReader(path)
    assert (reader.num_frames, reader.frame_size, reader.fps) == (6, (48, 64), 10.0)
    decoded = reader.read_all()
    assert decoded.shape == (6, 48, 64, 3) and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - frames.astype(int)).mean() < 12  # lossy codec, same content
    assert len(list(reader)) == 6  # iterable again (re-opens lazily)


def test_zero_byte_and_garbage_video_files(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.mp4.*empty \(0 bytes\)"):
        VideoFileReader(tmp_path / "empty.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(DataError, match=r"junk\.mp4.*(cannot open|no frame)"):
        VideoFileReader(tmp_path / "junk.mp4")
    with pytest.raises(DataError, match="not found"):
        VideoFileReader(tmp_path / "missing.mp4")


def test_avi_is_written_with_motion_jpeg(tmp_path):
    frames, _ = make_ultrasound_video(num_frames=3, height=32, width=32, seed=2)
    path = write_video_file(tmp_path / "clip.avi", frames, fps=5)
    assert path == tmp_path / "clip.avi" and VideoFileReader(path).num_frames == 3
    with pytest.raises(DataError, match=r"uint8 frames \(T, H, W, 3\)"):
        write_video_file(tmp_path / "bad.mp4", frames[..., 0])
