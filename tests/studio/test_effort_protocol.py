"""The simulated expert's protocol, piece by piece, on hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest

from vivim_studio.effort.protocol import (MAX_INTERACTIONS_PER_FRAME, MIN_STAMP_RADIUS, CostTable, Ledger,
                                          frame_to_visit, iou, next_correction, qualifies, qualifying_runs)
from vivim_core.prompts import deepest_point, error_regions


def _box(shape=(40, 60), rows=(0, 0), cols=(0, 0)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


def test_iou_counts_two_empty_masks_as_a_perfect_match():
    empty = np.zeros((8, 8), dtype=bool)
    assert iou(empty, empty) == 1.0
    assert iou(_box((8, 8), (0, 4), (0, 4)), empty) == 0.0
    assert iou(_box((8, 8), (0, 4), (0, 4)), _box((8, 8), (0, 4), (0, 2))) == pytest.approx(0.5)


def test_error_regions_are_components_of_missed_lesion_and_spill_largest_first():
    truth = _box(rows=(5, 25), cols=(5, 25))  # 400 px
    prediction = _box(rows=(5, 25), cols=(5, 15)) | _box(rows=(30, 34), cols=(40, 44))  # misses 200, spills 16
    regions = error_regions(prediction, truth)
    assert [(int(r.sum()), positive) for r, positive in regions] == [(200, True), (16, False)]
    assert regions[0][0][5:25, 15:25].all()


def test_the_deepest_point_is_the_centre_and_the_image_border_counts_as_outside():
    x, y, depth = deepest_point(_box(rows=(10, 21), cols=(20, 31)))  # an 11x11 square
    assert (x, y) == (25, 15) and depth == pytest.approx(6.0)
    x, y, depth = deepest_point(_box(rows=(0, 11), cols=(0, 11)))  # in the corner: the border is its edge
    assert (x, y) == (5, 5) and depth == pytest.approx(6.0)


def test_next_correction_clicks_deep_inside_the_largest_error():
    truth = _box(rows=(5, 35), cols=(5, 35))
    missed = next_correction(np.zeros_like(truth), truth)
    assert missed.positive and (missed.x, missed.y) == (19, 19) and missed.radius == 15
    spill = next_correction(truth | _box(rows=(0, 40), cols=(45, 60)), truth)
    assert not spill.positive and spill.x >= 45 and spill.region_pixels == 40 * 15
    assert next_correction(truth, truth) is None


def test_a_thin_error_still_gets_a_stamp_of_the_minimum_radius():
    truth = _box(rows=(10, 12), cols=(10, 50))
    correction = next_correction(np.zeros_like(truth), truth)
    assert correction.radius == MIN_STAMP_RADIUS


def test_the_worst_open_frame_is_visited_first_and_ties_go_to_the_earliest():
    ious = np.array([0.9, 0.2, 0.5, 0.2, 0.1])
    accepted = np.array([False, False, False, False, True])
    assert frame_to_visit(ious, accepted) == 1
    assert frame_to_visit(ious, np.ones(5, dtype=bool)) is None


def test_qualifying_runs_span_accepted_frames_and_skip_fully_accepted_stretches():
    ious = np.array([0.9, 0.95, 0.1, 0.0, 0.88, 0.2, 0.99, 0.99])
    accepted = np.array([False, False, False, True, False, False, True, True])
    runs = qualifying_runs(ious, accepted, threshold=0.85)
    assert runs == [range(0, 2), range(3, 5)]  # frame 3 is accepted, 6-7 are accepted already: no run
    assert qualifies(np.ones((2, 2), bool), np.ones((2, 2), bool))


def test_the_ledger_charges_each_action_and_tops_up_a_failed_frame_to_the_cap():
    costs = CostTable()
    ledger = Ledger(num_frames=50, costs=costs)
    ledger.look()
    ledger.click(3)
    ledger.click(3)
    ledger.stamp(4)
    ledger.accept()
    ledger.range_accept(10)
    assert ledger.interactions == 5
    assert ledger.human_seconds == pytest.approx(0.5 + 2 * 1.0 + 1.5 + 0.5 + 0.5 + 10 * 0.5)
    ledger.fail(3)
    assert ledger.interactions == 5 + MAX_INTERACTIONS_PER_FRAME - 2
    assert ledger.corrections_on(3) == MAX_INTERACTIONS_PER_FRAME and ledger.failed_frames == [3]
    assert ledger.per_100_frames(ledger.interactions) == pytest.approx(ledger.interactions * 2)
    ledger.trace(has_lesion=True)
    ledger.trace(has_lesion=False)
    assert ledger.counts["trace"] == 2
