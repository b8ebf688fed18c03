"""Clip sampling, resizing, augmentation and tensor conversion of ClipDataset."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vivim_core.config import IMAGENET_MEAN, IMAGENET_STD
from vivim_core.data.clips import ClipDataset, clip_indices, clip_starts, frames_to_tensor
from vivim_core.data.layouts import find_vtus_videos
from vivim_core.data.readers import DataError, write_mask
from vivim_core.data.synthetic import write_vtus_dataset
from vivim_core.data.transforms import Augmentation


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = write_vtus_dataset(tmp_path_factory.mktemp("clips") / "vtus", num_videos=2, frames_per_video=6,
                              size=(48, 64))
    return find_vtus_videos(root)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 20), st.integers(1, 7), st.integers(1, 3), st.none() | st.integers(1, 6))
def test_clip_sampling_properties(num_frames, clip_length, stride, per_video):
    starts = clip_starts(num_frames, clip_length, stride, per_video)
    assert len(starts) == (per_video or max(num_frames - (clip_length - 1) * stride, 1))
    for start in starts:
        indices = clip_indices(start, num_frames, clip_length, stride)
        assert len(indices) == clip_length and all(0 <= i < num_frames for i in indices)
        assert indices == sorted(indices)
        if num_frames >= (clip_length - 1) * stride + 1:  # a full window: exact stride, nothing repeated
            assert np.all(np.diff(indices) == stride)
    if per_video is None:  # every frame is in some clip
        covered = {i for s in starts for i in clip_indices(s, num_frames, clip_length, stride)}
        assert covered == set(range(num_frames)) or stride > 1


def test_short_video_repeats_edge_frames():
    assert clip_starts(3, 5) == [0]
    assert clip_indices(0, 3, 5) == [0, 1, 2, 2, 2]
    assert clip_indices(0, 1, 4, stride=2) == [0, 0, 0, 0]


def test_items_have_the_documented_shapes_and_values(videos):
    dataset = ClipDataset(videos, clip_length=3, stride=2, size=(32, 32))
    assert len(dataset) == 2 * (6 - 4)
    item = dataset[1]
    assert item["frames"].shape == (3, 3, 32, 32) and item["frames"].dtype == torch.float32
    assert item["masks"].shape == (3, 1, 32, 32) and item["masks"].dtype == torch.float32
    assert set(item["masks"].unique().tolist()) <= {0.0, 1.0}
    assert item["video_id"] == "0001" and item["frame_indices"].tolist() == [1, 3, 5]
    assert item["frame_indices"].dtype == torch.long
    assert dataset[-1]["video_id"] == "0002"
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_a_video_shorter_than_a_clip_never_errors(videos):
    dataset = ClipDataset(videos[:1], clip_length=9, size=(16, 16))
    assert len(dataset) == 1 and dataset[0]["frame_indices"].tolist() == [0, 1, 2, 3, 4, 5, 5, 5, 5]
    assert ClipDataset(videos, clip_length=2, clips_per_video=5).clips[:5] == [(0, s) for s in (0, 1, 2, 3, 4)]


def test_frames_are_normalised_like_the_model_expects(videos):
    dataset = ClipDataset(videos, clip_length=2, size=(48, 64))
    frames, _ = dataset.load_clip(0)
    expected = (frames.astype(np.float32) / 255 - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
    np.testing.assert_allclose(dataset[0]["frames"].permute(0, 2, 3, 1).numpy(), expected, atol=1e-5)
    with pytest.raises(DataError, match="uint8 RGB frames"):
        frames_to_tensor(frames.astype(np.float32))


def test_seeded_augmentation_is_reproducible_and_varies_by_epoch(videos):
    dataset = ClipDataset(videos, clip_length=3, size=(32, 32), augment=Augmentation(seed=5))
    first, again = dataset[0], dataset[0]
    assert torch.equal(first["frames"], again["frames"]) and torch.equal(first["masks"], again["masks"])
    dataset.set_epoch(1)
    assert not torch.equal(first["frames"], dataset[0]["frames"])


def test_bad_arguments_and_unannotated_videos(videos):
    with pytest.raises(DataError, match="clip_length"):
        ClipDataset(videos, clip_length=0)
    with pytest.raises(DataError, match="no masks"):
        ClipDataset([type(videos[0])("x", videos[0].frame_paths, None)])
    with pytest.raises(DataError, match="no annotated video"):
        ClipDataset([])


def test_mask_of_another_size_is_named(tmp_path):
    root = write_vtus_dataset(tmp_path / "v", num_videos=1, frames_per_video=3, size=(16, 16))
    write_mask(root / "Train_GT" / "0001" / "0002.png", np.zeros((8, 8), bool))
    dataset = ClipDataset(find_vtus_videos(root), clip_length=3, size=(16, 16))
    with pytest.raises(DataError, match=r"0002\.png: mask is 8x8 but its frame .*0002\.jpg is 16x16"):
        dataset[0]


@pytest.mark.shared_data
def test_real_sample_clips(vtus_sample):
    dataset = ClipDataset(find_vtus_videos(vtus_sample), clip_length=5, size=(128, 128), clips_per_video=3)
    item = dataset[1]
    assert item["frames"].shape == (5, 3, 128, 128) and 0 < item["masks"].mean() < 0.5
    assert item["frame_indices"].tolist() == [43, 44, 45, 46, 47]
