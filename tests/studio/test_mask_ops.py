"""Pure mask operations, optical-flow propagation and the mask/probability codecs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vivim_studio.document import codec, flow, mask_ops


def disk(shape=(40, 50), center=(20, 15), radius=6) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.circle(mask, center, radius, 1, -1)
    return mask > 0


def test_brush_stroke_paints_a_round_swept_disk():
    mask = mask_ops.stroke(np.zeros((30, 40), bool), [(5, 10), (30, 10)], radius=3)
    assert mask[10, 5:31].all() and mask[7, 18] and mask[13, 18] and not mask[6, 18] and not mask[14, 18]
    assert mask[10, 2] and not mask[10, 1]  # round cap of radius 3 around (5, 10)
    erased = mask_ops.stroke(mask, [(15, 10)], radius=2, erase=True)
    assert not erased[10, 15] and erased[10, 10] and mask[10, 15]  # the input is not modified


def test_paint_polyline_reports_the_dirty_rectangle():
    buffer = np.zeros((30, 40), np.uint8)
    box = mask_ops.paint_polyline(buffer, [(10, 12)], radius=2, value=1, previous=(5, 5))
    x0, y0, x1, y1 = box
    ys, xs = np.nonzero(buffer)
    assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1
    assert buffer[5, 5] == 1 and buffer[12, 10] == 1


def test_polygon_add_and_subtract():
    square = [(10, 10), (20, 10), (20, 20), (10, 20)]
    added = mask_ops.polygon(np.zeros((30, 30), bool), square)
    assert added[10:21, 10:21].all() and added.sum() == 121
    cut = mask_ops.polygon(added, [(15, 0), (29, 0), (29, 29), (15, 29)], subtract=True)
    assert cut[:, 15:].sum() == 0 and cut[10:21, 10:15].all()
    with pytest.raises(ValueError, match="3 points"):
        mask_ops.polygon(added, [(1, 1), (2, 2)])


def test_fill_holes_islands_largest_component():
    ring = disk(radius=8) & ~disk(radius=3)
    assert mask_ops.fill_holes(ring).sum() == disk(radius=8).sum()
    two = disk(center=(15, 15), radius=6) | disk(center=(40, 30), radius=2)
    small = disk(center=(40, 30), radius=2).sum()
    assert mask_ops.remove_small_islands(two, small + 1).sum() == two.sum() - small
    assert mask_ops.remove_small_islands(two, small).sum() == two.sum()
    assert np.array_equal(mask_ops.keep_largest_component(two), disk(center=(15, 15), radius=6))
    empty = np.zeros((5, 5), bool)
    assert not mask_ops.keep_largest_component(empty).any() and not mask_ops.remove_small_islands(empty, 3).any()


def test_smooth_removes_spurs_and_fills_gaps():
    blob = disk(shape=(60, 60), center=(30, 30), radius=12)
    noisy = blob.copy()
    noisy[30, 42:55] = True  # a 1-pixel spur
    noisy[28:31, 25:27] = False  # a notch
    smoothed = mask_ops.smooth(noisy, radius=2)
    assert not smoothed[30, 47:55].any() and smoothed[29, 26]
    assert abs(int(smoothed.sum()) - int(blob.sum())) < 0.05 * blob.sum()


def test_optical_flow_follows_a_moving_object():
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (80, 100), dtype=np.uint8), (0, 0), 2)
    frames, masks = [], []
    for t in range(4):
        image = texture.copy()
        mask = disk(shape=(80, 100), center=(30 + 4 * t, 40 + 2 * t), radius=12)
        image[mask] = np.clip(image[mask].astype(int) // 3 + 170, 0, 255).astype(np.uint8)
        frames.append(np.repeat(image[..., None], 3, 2))
        masks.append(mask)
    for method in flow.METHODS:
        propagated = masks[0]
        for t in range(1, 4):
            propagated = flow.propagate_mask(frames[t - 1], frames[t], propagated, method)
        iou = (propagated & masks[3]).sum() / (propagated | masks[3]).sum()
        assert iou > 0.8, (method, iou)


def test_mask_codec_round_trip_and_header_size():
    mask = disk(shape=(37, 53))
    data = codec.encode_mask(mask)
    assert data[:8] == codec.PNG_SIGNATURE and codec.png_size(data) == (37, 53)
    assert np.array_equal(codec.decode_mask(data, (37, 53)), mask)
    with pytest.raises(codec.CodecError, match="expected"):
        codec.decode_mask(data, (10, 10))
    with pytest.raises(codec.CodecError):
        codec.png_size(b"not a png at all, not at all")


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, (7, 9), elements=st.floats(0, 1, width=32)),
       st.integers(1, 255))
def test_quantised_thresholds_on_the_256_grid_are_exact(prob, k):
    q = codec.decode_probability(codec.encode_probability(codec.quantize_probability(prob)), (7, 9))
    threshold = k / 256
    assert np.array_equal(codec.threshold_quantized(q, threshold), prob >= threshold)
    assert np.all(np.abs(codec.dequantize_probability(q) - prob) <= 1 / 256 + 1e-6)


def test_confidence_is_high_for_crisp_maps_and_low_for_hesitant_ones():
    crisp = codec.quantize_probability(disk(shape=(20, 20)).astype(np.float32))
    hesitant = codec.quantize_probability(np.full((20, 20), 0.55, np.float32))
    assert codec.proposal_confidence(crisp) > 0.95 > 0.2 > codec.proposal_confidence(hesitant)
    assert codec.proposal_confidence(np.zeros((4, 4), np.uint8)) == 1.0


def test_quantize_and_confidence_equal_their_plain_definitions():
    rng = np.random.default_rng(5)
    prob = rng.uniform(-0.5, 1.5, (64, 80)).astype(np.float32)
    prob[0, :4] = [np.nan, np.inf, -np.inf, 1.0]
    plain = np.minimum(np.floor(np.clip(np.nan_to_num(prob, nan=0.0), 0.0, 1.0) * 256.0), 255).astype(np.uint8)
    q = codec.quantize_probability(prob)
    assert q.dtype == np.uint8 and np.array_equal(q, plain)
    region = q >= 64
    expected = np.mean(np.abs(2.0 * codec.dequantize_probability(q[region]).astype(np.float64) - 1.0))
    assert abs(codec.proposal_confidence(q) - expected) < 1e-9
