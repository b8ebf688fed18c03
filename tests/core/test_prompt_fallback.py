"""The classical answer to clicks for checkpoints without prompt inputs (`vivim_core.prompt_fallback`)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vivim_core.prompt_fallback import grabcut_prompt, reach_radius
from vivim_core.prompts import FramePrompt


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


@pytest.fixture
def nodule():
    """A dark rotated ellipse on a bright speckled background: (image uint8 (H, W, 3), truth bool (H, W))."""
    rng = np.random.default_rng(0)
    truth = np.zeros((240, 320), np.uint8)
    cv2.ellipse(truth, (160, 120), (50, 30), 20, 0, 360, 1, thickness=-1)
    truth = truth.astype(bool)
    grey = rng.normal(170, 20, truth.shape)
    grey[truth] = rng.normal(70, 15, truth.sum())
    image = np.clip(grey, 0, 255).astype(np.uint8)
    return np.repeat(image[..., None], 3, axis=2), truth


def test_one_positive_click_on_a_contrasted_lesion_finds_its_outline(nodule):
    image, truth = nodule
    assert iou(grabcut_prompt(image, FramePrompt(positive=((160, 120),))), truth) > 0.9


def test_a_negative_click_takes_back_the_spill_near_it_and_keeps_the_rest(nodule):
    image, truth = nodule
    spill = truth.copy()
    spill[160:190, 240:290] = True
    mask = grabcut_prompt(image, FramePrompt(negative=((265, 175),), rough_mask=spill))
    near = np.zeros_like(truth, np.uint8)
    cv2.circle(near, (265, 175), reach_radius(truth.shape), 1, thickness=-1)
    assert not (mask & near.astype(bool) & ~truth).any()
    assert np.array_equal(mask & truth, truth)


def test_a_box_starts_the_mask_afresh_inside_the_box(nodule):
    image, truth = nodule
    mask = grabcut_prompt(image, FramePrompt(box=(100, 75, 220, 165)), prior=np.ones_like(truth))
    assert iou(mask, truth) > 0.9 and not mask[:70].any()


def test_without_edges_a_click_adds_a_disk_and_leaves_the_rest_of_the_mask_alone():
    """A flat image has no edge to cut along: the click acts as a lesion-sized stamp, nothing else changes."""
    image = np.full((200, 200, 3), 128, np.uint8)
    rough = np.zeros((200, 200), bool)
    rough[20:40, 20:40] = True
    mask = grabcut_prompt(image, FramePrompt(positive=((150, 150),), rough_mask=rough))
    disk = np.zeros((200, 200), np.uint8)
    cv2.circle(disk, (150, 150), reach_radius((200, 200)), 1, thickness=-1)
    assert np.array_equal(mask, rough | disk.astype(bool))


def test_clicks_are_always_honoured(nodule):
    image, truth = nodule
    mask = grabcut_prompt(image, FramePrompt(positive=((20, 20),), negative=((160, 120),), rough_mask=truth))
    assert mask[20, 20] and not mask[120, 160]


def test_grey_images_work_and_other_dtypes_are_refused(nodule):
    image, truth = nodule
    assert iou(grabcut_prompt(image[..., 0], FramePrompt(positive=((160, 120),))), truth) > 0.9
    with pytest.raises(ValueError, match="uint8"):
        grabcut_prompt(image.astype(np.float32), FramePrompt(positive=((160, 120),)))
