"""VTUS and polyp layouts, prediction inputs, and the layout errors (missing/extra GT, sizes, empty folders)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from vivim_core.data.layouts import (find_polyp_videos, find_prediction_inputs, find_vtus_videos,
                                     validate_video)
from vivim_core.data.readers import DataError, read_frame, read_mask, write_frame, write_mask
from vivim_core.data.synthetic import make_ultrasound_video, write_polyp_dataset, write_video_file, write_vtus_dataset


@pytest.fixture
def vtus(tmp_path):
    return write_vtus_dataset(tmp_path / "vtus", num_videos=2, frames_per_video=4, size=(32, 40))


def test_vtus_layout_is_found_in_order(vtus):
    videos = find_vtus_videos(vtus, "Train")
    assert [v.video_id for v in videos] == ["0001", "0002"]
    video = videos[0]
    assert [p.name for p in video.frame_paths] == ["0001.jpg", "0002.jpg", "0003.jpg", "0004.jpg"]
    assert [p.name for p in video.mask_paths] == ["0001.png", "0002.png", "0003.png", "0004.png"]
    assert video.mask_paths[0].parent == vtus / "Train_GT" / "0001"
    assert validate_video(video) == (32, 40)


def test_missing_gt_for_a_frame_is_named(vtus):
    (vtus / "Train_GT" / "0002" / "0003.png").unlink()
    with pytest.raises(DataError, match=r"Train_GT/0002.*no mask for 1 frame.*0003\.jpg"):
        find_vtus_videos(vtus)


def test_extra_gt_is_named(vtus):
    shutil.copy(vtus / "Train_GT" / "0001" / "0001.png", vtus / "Train_GT" / "0001" / "0099.png")
    with pytest.raises(DataError, match=r"without a frame.*0099\.png"):
        find_vtus_videos(vtus)
    shutil.copytree(vtus / "Train_GT" / "0002", vtus / "Train_GT" / "0007")
    (vtus / "Train_GT" / "0001" / "0099.png").unlink()
    with pytest.raises(DataError, match=r"no frames in .*Train: 0007"):
        find_vtus_videos(vtus)


def test_missing_folders_and_empty_video(vtus, tmp_path):
    with pytest.raises(DataError, match=r"Test: split folder not found.*holds: Train, Train_GT"):
        find_vtus_videos(vtus, "Test")
    shutil.rmtree(vtus / "Train_GT")
    with pytest.raises(DataError, match=r"Train_GT: ground-truth folder not found"):
        find_vtus_videos(vtus)
    assert find_vtus_videos(vtus, require_masks=False)[0].mask_paths is None
    (vtus / "Train" / "0003").mkdir()
    with pytest.raises(DataError, match=r"0003: no frames"):
        find_vtus_videos(vtus, require_masks=False)
    (tmp_path / "empty" / "Train").mkdir(parents=True)
    (tmp_path / "empty" / "Train_GT").mkdir()
    with pytest.raises(DataError, match=r"no video folders"):
        find_vtus_videos(tmp_path / "empty")


def test_size_mismatch_and_mixed_sizes_are_named(vtus):
    video = find_vtus_videos(vtus)[0]
    write_mask(video.mask_paths[2], np.zeros((16, 16), bool))
    with pytest.raises(DataError, match=r"0003\.png: mask is 16x16 but its frame .*0003\.jpg is 40x32"):
        validate_video(video)
    write_frame(video.frame_paths[1], np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(DataError, match=r"0002\.jpg: frame is 20x20.*one size"):
        validate_video(video)


def test_polyp_layout_sorts_by_integer_name(tmp_path):
    root = write_polyp_dataset(tmp_path / "polyp", num_videos=2, frames_per_video=11, size=(32, 32))
    videos = find_polyp_videos(root)
    assert [v.video_id for v in videos] == ["SynthPolyp/case1", "SynthPolyp/case2"]
    assert [p.stem for p in videos[0].frame_paths] == [str(i) for i in range(1, 12)]
    assert [p.stem for p in videos[0].mask_paths] == [str(i) for i in range(1, 12)]
    assert [v.video_id for v in find_polyp_videos(root, "SynthPolyp")] == ["case1", "case2"]
    assert [v.video_id for v in find_polyp_videos(root / "SynthPolyp")] == ["case1", "case2"]
    with pytest.raises(DataError, match="no polyp dataset"):
        find_polyp_videos(tmp_path)


def test_prediction_inputs_video_file_frame_folder_and_split(vtus, tmp_path):
    frames, _ = make_ultrasound_video(num_frames=5, height=32, width=32, seed=3)
    video = write_video_file(tmp_path / "scan.mp4", frames, fps=12)
    [from_file] = find_prediction_inputs(video)
    assert (from_file.video_id, from_file.num_frames, from_file.frame_size, from_file.fps) == ("scan", 5, (32, 32), 12)
    assert from_file.frame_paths is None and len(list(from_file.frames())) == 5

    [from_folder] = find_prediction_inputs(vtus / "Train" / "0002")
    assert (from_folder.video_id, from_folder.num_frames, from_folder.fps) == ("0002", 4, None)
    decoded = list(from_folder.frames())
    assert len(decoded) == 4 and decoded[0].shape == (32, 40, 3) and decoded[0].dtype == np.uint8
    np.testing.assert_array_equal(decoded[1], read_frame(vtus / "Train" / "0002" / "0002.jpg"))

    split = find_prediction_inputs(vtus / "Train")
    assert [i.video_id for i in split] == ["0001", "0002"]

    (tmp_path / "videos").mkdir()
    shutil.copy(video, tmp_path / "videos" / "a.mp4")
    shutil.copy(video, tmp_path / "videos" / "b.mp4")
    assert [i.video_id for i in find_prediction_inputs(tmp_path / "videos")] == ["a", "b"]


def test_prediction_input_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        find_prediction_inputs(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no frames, video files"):
        find_prediction_inputs(tmp_path / "empty")
    write_frame(tmp_path / "mixed" / "1.png", np.zeros((8, 8, 3), np.uint8))
    write_frame(tmp_path / "mixed" / "2.png", np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(DataError, match=r"2\.png: frame is 9x8 but 1\.png is 8x8"):
        find_prediction_inputs(tmp_path / "mixed")


@pytest.mark.shared_data
def test_real_vtus_sample_is_read(vtus_sample):
    [video] = find_vtus_videos(vtus_sample, "Train")
    assert video.video_id == "0002" and len(video) == 91
    assert video.frame_paths[-1].name == "0091.jpg" and video.mask_paths[-1].name == "0091.png"
    frame, mask = read_frame(video.frame_paths[40]), read_mask(video.mask_paths[40])
    assert frame.shape == (256, 256, 3) and mask.shape == (256, 256) and mask.dtype == bool
    assert 0.005 < mask.mean() < 0.5  # a nodule, not the whole frame
    assert validate_video(video) == (256, 256)
    [prediction_input] = find_prediction_inputs(vtus_sample / "Train")
    assert prediction_input.num_frames == 91 and prediction_input.frame_size == (256, 256)
