"""The synthetic video generators: shapes, determinism, realism checks (the task is not a threshold)."""

from __future__ import annotations

import numpy as np
import pytest

from vivim_core.data.readers import read_frame, read_mask
from vivim_core.data.synthetic import make_endoscopy_video, make_ultrasound_video, make_video


@pytest.mark.parametrize("make", [make_ultrasound_video, make_endoscopy_video])
def test_shapes_dtypes_and_determinism(make):
    frames, masks = make(num_frames=5, height=48, width=64, seed=7)
    assert frames.shape == (5, 48, 64, 3) and frames.dtype == np.uint8
    assert masks.shape == (5, 48, 64) and masks.dtype == np.uint8 and set(np.unique(masks)) <= {0, 255}
    again, again_masks = make(num_frames=5, height=48, width=64, seed=7)
    np.testing.assert_array_equal(frames, again)
    np.testing.assert_array_equal(masks, again_masks)
    other, _ = make(num_frames=5, height=48, width=64, seed=8)
    assert not np.array_equal(frames, other)


@pytest.mark.parametrize("kind", ["ultrasound", "endoscopy"])
def test_lesions_move_and_deform_smoothly(kind):
    _, masks = make_video(kind, 12, 64, 64, seed=2)
    lesion = masks > 0
    areas = lesion.reshape(12, -1).sum(1)
    assert (areas > 0).mean() > 0.8, "the lesion should be visible in most frames"
    assert areas.max() < 0.5 * 64 * 64
    changes = [np.mean(lesion[t] != lesion[t + 1]) for t in range(11)]
    assert 0 < np.mean(changes) < 0.1, "masks change from frame to frame, but smoothly"


def test_ultrasound_nodules_are_darker_but_not_separable_by_a_threshold():
    """Mean intensity inside < around, yet no single threshold separates lesion pixels well (a vessel and
    shadows are dark too, speckle overlaps the levels)."""
    best_dice = []
    for seed in range(4):
        frames, masks = make_ultrasound_video(num_frames=3, height=96, width=96, seed=seed)
        grey, lesion = frames[..., 0].astype(float), masks > 0
        assert grey[lesion].mean() < grey[~lesion & (grey > 0)].mean()
        dices = [2 * np.sum((grey < t) & lesion) / (np.sum(grey < t) + lesion.sum()) for t in range(5, 250, 5)]
        best_dice.append(max(dices))
    assert max(best_dice) < 0.6, best_dice


def test_ultrasound_has_speckle_and_depth_attenuation():
    frames, masks = make_ultrasound_video(num_frames=2, height=128, width=128, seed=1, probe="linear")
    grey = frames[0, ..., 0].astype(float)
    background = grey[masks[0] == 0]
    assert background.std() > 15  # speckled, not flat
    assert grey[:40].mean() > grey[-30:].mean()  # deep tissue attenuated
    convex, _ = make_ultrasound_video(num_frames=1, height=64, width=64, seed=1, probe="convex")
    assert (convex[0, 0, :5] == 0).all() and (convex[0, 0, -5:] == 0).all()  # outside the fan is black


def test_endoscopy_is_pinkish_with_highlights():
    frames, _ = make_endoscopy_video(num_frames=2, height=96, width=96, seed=0)
    inner = frames[0, 24:72, 24:72].reshape(-1, 3).astype(float)
    r, g, b = inner.mean(0)
    assert r > g and r > b
    assert (frames[0] >= 250).all(-1).any()  # a specular highlight


def test_vtus_writer_layout(tmp_path):
    from vivim_core.data.synthetic import write_vtus_dataset

    root = write_vtus_dataset(tmp_path / "v", num_videos=2, frames_per_video=3, size=(24, 32), split="Test")
    assert sorted(p.name for p in (root / "Test").iterdir()) == ["0001", "0002"]
    assert sorted(p.name for p in (root / "Test_GT" / "0002").iterdir()) == ["0001.png", "0002.png", "0003.png"]
    assert read_frame(root / "Test" / "0001" / "0003.jpg").shape == (24, 32, 3)
    assert read_mask(root / "Test_GT" / "0001" / "0003.png").shape == (24, 32)
