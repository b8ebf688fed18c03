"""Augmentation and resizing keep masks binary and frames/masks aligned."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vivim_core.data.transforms import Augmentation, resize_frames, resize_masks


def _clip(rng, t=3, h=24, w=32):
    frames = rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    masks = np.zeros((t, h, w), bool)
    masks[:, 6:14, 10:20] = True
    return frames, masks


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 40), st.integers(1, 40), st.integers(0, 2**16))
def test_resize_keeps_masks_binary(h, w, out_h, out_w, seed):
    rng = np.random.default_rng(seed)
    masks = rng.random((2, h, w)) < 0.5
    frames = rng.integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    resized = resize_masks(masks, (out_h, out_w))
    assert resized.shape == (2, out_h, out_w) and resized.dtype == bool
    as_bytes = resize_masks(np.where(masks, 255, 0).astype(np.uint8), (out_h, out_w))
    assert set(np.unique(as_bytes)) <= {0, 255}
    assert resize_frames(frames, (out_h, out_w)).shape == (2, out_h, out_w, 3)


def test_resize_of_a_constant_frame_is_exact():
    frames = np.full((1, 30, 40, 3), 123, np.uint8)
    for size in ((15, 20), (60, 80)):
        assert (resize_frames(frames, size) == 123).all()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_geometry_is_shared_by_frames_and_masks_and_masks_stay_binary(seed):
    """Frames painted exactly where the mask is must still coincide with the mask after augmentation."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((3, 24, 32), bool)
    masks[:, 4:12, 6:20] = True
    masks[1, 14:20, 22:30] = True
    frames = np.where(masks[..., None], 255, 0).astype(np.uint8).repeat(3, axis=-1)
    augment = Augmentation(hflip_p=0.5, vflip_p=0.5, rotation_p=1.0, max_rotation=20, brightness=0, contrast=0,
                           saturation=0)
    out_frames, out_masks = augment(frames, masks, rng)
    assert out_masks.dtype == bool and out_masks.shape == masks.shape
    bright = out_frames[..., 0] > 127
    # Bilinear vs nearest differ only along edges: at most the outline pixels disagree.
    assert (bright != out_masks).mean() < 0.06
    assert out_masks.sum() > 0.6 * masks.sum()


def test_colour_jitter_differs_per_frame_and_never_touches_masks():
    rng = np.random.default_rng(0)
    frames = np.full((4, 8, 8, 3), 100, np.uint8)
    frames[..., 0] = 160
    masks = np.zeros((4, 8, 8), np.uint8)
    masks[:, 2:5] = 255
    augment = Augmentation(hflip_p=0, rotation_p=0, brightness=0.3, contrast=0.3, saturation=0.3)
    out_frames, out_masks = augment(frames, masks, rng)
    np.testing.assert_array_equal(out_masks, masks)
    means = [f.mean() for f in out_frames]
    assert len(set(np.round(means, 3))) == 4  # every frame its own jitter


def test_seeded_augmentation_is_reproducible():
    frames, masks = _clip(np.random.default_rng(1))
    first = Augmentation(seed=3, rotation_p=1.0)(frames, masks)
    second = Augmentation(seed=3, rotation_p=1.0)(frames, masks)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_flip_is_exact():
    frames, masks = _clip(np.random.default_rng(2))
    out_frames, out_masks = Augmentation(hflip_p=1, rotation_p=0, brightness=0, contrast=0, saturation=0)(
        frames, masks, np.random.default_rng(0))
    np.testing.assert_array_equal(out_frames, frames[:, :, ::-1])
    np.testing.assert_array_equal(out_masks, masks[:, :, ::-1])
