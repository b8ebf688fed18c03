"""Lesions: label maps in the document, editing that acts on one lesion, per-lesion status, identities of the
model's lesions through the clip, and merge / split / relabel with undo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vivim_studio.document import EditError, FrameStatus, VideoDocument, codec, open_source

H, W = 48, 64


@pytest.fixture
def mem_doc(frame_folder):
    doc = VideoDocument(open_source(frame_folder))
    yield doc
    doc.close()


def disk(x, y, r):
    mask = np.zeros((H, W), np.uint8)
    cv2.circle(mask, (x, y), r, 1, -1)
    return mask > 0


def two_blobs(t, speed=2):
    """Probability map of two disks moving towards each other (they touch around t = 6)."""
    p = np.full((H, W), 0.05, np.float32)
    p[disk(8 + speed * t, 12 + t // 2, 5)] = 0.9
    p[disk(56 - speed * t, 36 - t // 2, 6)] = 0.9
    return p


def ids_at(doc, t):
    """{lesion id: centroid x} of frame t."""
    return {x.id: x.centroid[0] for x in doc.record(t).lesions}


def test_label_maps_encode_as_one_bit_for_lesion_1_and_eight_bits_otherwise():
    labels = np.zeros((H, W), np.uint8)
    labels[disk(10, 10, 4)] = 1
    one_bit = codec.encode_labels(labels)
    assert codec.png_size(one_bit) == (H, W) and one_bit[24] == 1  # IHDR bit depth
    labels[disk(40, 30, 5)] = 7
    eight_bit = codec.encode_labels(labels)
    assert eight_bit[24] == 8
    for data, expected in ((one_bit, np.where(labels == 1, 1, 0)), (eight_bit, labels)):
        assert np.array_equal(codec.decode_labels(data, (H, W)), expected)
    assert np.array_equal(cv2.imdecode(np.frombuffer(eight_bit, np.uint8), cv2.IMREAD_UNCHANGED), labels)
    assert np.array_equal(codec.decode_mask(eight_bit), labels > 0)


def test_two_lesions_keep_their_ids_through_save_and_reopen(frame_folder, tmp_path):
    with VideoDocument.open(frame_folder, tmp_path / "ws") as doc:
        assert doc.active_lesion == 1
        doc.paint_stroke(3, [(10, 10), (14, 10)], 4)
        doc.active_lesion = 2
        doc.paint_stroke(3, [(40, 30)], 6)
        labels = doc.labels(3).copy()
        assert doc.lesions(3) == [1, 2] and doc.lesion_ids() == [1, 2]
    assert set(np.unique(labels)) == {0, 1, 2}
    with VideoDocument.open(frame_folder, tmp_path / "ws") as doc:
        assert np.array_equal(doc.labels(3), labels) and np.array_equal(doc.mask(3), labels > 0)
        assert np.array_equal(doc.lesion_mask(3, 2), labels == 2) and doc.lesions(3) == [1, 2]
        lesion = doc.lesion_record(3, 2)
        assert lesion.status == FrameStatus.EDITED and lesion.area == int((labels == 2).sum())
        assert lesion.box == (34, 24, 47, 37) and lesion.centroid == pytest.approx((40, 30))


def test_brush_and_eraser_act_on_the_active_lesion_only(mem_doc):
    doc = mem_doc
    doc.paint_stroke(0, [(20, 20)], 8)
    doc.active_lesion = 2
    doc.paint_stroke(0, [(30, 20)], 8)  # overlaps lesion 1: paints only background
    labels = doc.labels(0)
    assert labels[20, 20] == 1 and labels[20, 30] == 2 and labels[20, 24] == 1  # lesion 1 kept its pixels
    doc.paint_stroke(0, [(20, 20)], 8, erase=True)  # erases lesion 2 only
    assert doc.labels(0)[20, 20] == 1 and doc.labels(0)[20, 30] == 2
    assert not ((doc.labels(0) == 2) & disk(20, 20, 8)).any()
    doc.paint_stroke(0, [(20, 20)], 3, other_lesions=True)  # asked to: takes lesion 1's pixels
    assert doc.labels(0)[20, 20] == 2
    with doc.stroke(0, 2, erase=True, other_lesions=True) as stroke:
        stroke.add_points([(20, 20), (30, 20)])
        assert not doc.mask(0)[20, 20] and doc.labels(0)[20, 20] == 0  # the live map while painting
    assert not doc.mask(0)[20, 25] and doc.status(0) == FrameStatus.EDITED
    with pytest.raises(EditError, match="1..255"):
        doc.active_lesion = 0


def test_whole_lesion_operations_and_clear_act_per_lesion(mem_doc):
    doc = mem_doc
    ring = disk(20, 20, 9) & ~disk(20, 20, 3)
    labels = np.zeros((H, W), np.uint8)
    labels[ring] = 1
    labels[disk(20, 20, 2)] = 2  # lesion 2 sits in lesion 1's hole
    labels[disk(50, 30, 5)] = 2
    labels[40, 5] = 2  # an island of lesion 2
    doc.set_labels(0, labels)
    assert doc.fill_holes(0, lesion=1)
    assert doc.labels(0)[20, 20] == 2 and doc.labels(0)[20, 23] == 1  # filled around lesion 2, not over it
    doc.active_lesion = 2
    assert doc.keep_largest_component(0)
    assert doc.labels(0)[40, 5] == 0 and doc.labels(0)[20, 20] == 0 and doc.labels(0)[30, 50] == 2
    assert doc.add_polygon(0, [(45, 25), (63, 25), (63, 40), (45, 40)], subtract=True)
    assert not (doc.labels(0) == 2).any() and doc.lesions(0) == [1]
    assert doc.add_polygon(0, [(0, 0), (30, 0), (30, 30)])  # lasso add: only over background
    assert doc.labels(0)[20, 23] == 1 and doc.labels(0)[2, 25] == 2
    assert doc.clear(0, lesion=2) and doc.lesions(0) == [1] and doc.labels(0)[20, 23] == 1
    assert doc.clear(0) and doc.lesions(0) == [] and not doc.mask(0).any() and doc.status(0) == FrameStatus.EDITED


def test_copy_and_propagate_carry_lesion_ids(mem_doc):
    doc = mem_doc
    labels = np.zeros((H, W), np.uint8)
    labels[disk(20, 24, 6)] = 3
    labels[disk(45, 24, 6)] = 5
    doc.set_labels(2, labels)
    assert doc.copy_from_previous(3) and np.array_equal(doc.labels(3), labels)
    other = np.zeros((H, W), np.uint8)
    other[disk(10, 10, 4)] = 1
    doc.set_labels(1, other)
    assert doc.copy_from_next(1, lesion=5)  # only lesion 5 comes over; lesion 1 stays
    assert doc.lesions(1) == [1, 5] and np.array_equal(doc.labels(1) == 5, labels == 5)
    written = doc.propagate(3, count=3)
    assert written == [4, 5, 6]
    for t in written:
        assert doc.lesions(t) == [3, 5] and doc.status(t) == FrameStatus.PROPOSED
        assert doc.record(t).mask_origin == "flow:3" and doc.lesion_record(t, 5).origin == "flow:3"


def test_prompts_write_the_active_lesion_with_its_own_clicks(mem_doc):
    doc = mem_doc
    doc.apply_prompt(4, disk(20, 20, 6), ((20, 20, True),), "a" * 64)
    doc.active_lesion = 2
    doc.apply_prompt(4, disk(24, 20, 6), ((26, 20, True), (5, 5, False)), "a" * 64)
    labels = doc.labels(4)
    assert labels[20, 20] == 1 and labels[20, 28] == 2  # lesion 2 did not take lesion 1's pixels
    assert doc.clicks(4, 1) == ((20, 20, True),) and doc.clicks(4) == ((26, 20, True), (5, 5, False))
    assert doc.lesion_record(4, 2).origin == "prompt:" + "a" * 16


def test_per_lesion_status_and_accepting_a_frame_accepts_its_lesions(mem_doc):
    doc = mem_doc
    doc.set_proposal(5, two_blobs(0), model="b" * 64)
    assert doc.lesions(5) == [1, 2] and all(x.status == FrameStatus.PROPOSED for x in doc.record(5).lesions)
    doc.active_lesion = 2
    doc.paint_stroke(5, [(56, 36)], 8)  # a human corrects lesion 2
    assert doc.status(5) == FrameStatus.EDITED
    assert doc.lesion_record(5, 1).status == FrameStatus.PROPOSED
    assert doc.lesion_record(5, 2).status == FrameStatus.EDITED
    assert doc.lesion_record(5, 1).origin == "model:" + "b" * 16 and doc.lesion_record(5, 2).origin == "human"
    assert not doc.set_proposal(5, two_blobs(1), model="c" * 64)  # a human frame: the proposal never writes
    assert doc.lesion_record(5, 2).status == FrameStatus.EDITED
    assert doc.accept(5, lesion=1) and doc.status(5) == FrameStatus.EDITED  # lesion 2 not accepted yet
    assert doc.accept(5) and doc.status(5) == FrameStatus.ACCEPTED
    assert all(x.status == FrameStatus.ACCEPTED for x in doc.record(5).lesions)
    assert doc.undo(5) == "accept" and doc.lesion_record(5, 2).status == FrameStatus.EDITED
    assert doc.set_status(5, FrameStatus.PROPOSED)  # given back to the model: its lesions too
    assert all(x.status == FrameStatus.PROPOSED for x in doc.record(5).lesions)


def test_proposals_of_two_moving_blobs_keep_their_ids(tmp_path):
    """Two disks pass each other (nearly touching at frame 12): each keeps its id before and after."""
    from .helpers import make_frames, write_frame_folder

    doc = VideoDocument(open_source(write_frame_folder(tmp_path / "v", make_frames(20, H, W)[0])))
    for t in range(20):
        assert doc.set_proposal(t, two_blobs(t), model="d" * 64)
    assert ids_at(doc, 0) == {1: 56.0, 2: 8.0}  # new lesions are numbered by size, the largest first
    for t in range(20):  # the one moving left stays 1, the one moving right stays 2
        found = ids_at(doc, t)
        if t == 12:  # they touch: one lesion
            assert len(found) == 1
            continue
        assert found[2] == pytest.approx(8 + 2 * t, abs=1) and found[1] == pytest.approx(56 - 2 * t, abs=1), t
        assert np.array_equal(doc.mask(t), two_blobs(t) >= 0.5)  # the union is the model's mask, unchanged
    assert doc.lesion_ids() == [1, 2]
    doc.close()


def test_lesions_sweeping_faster_than_their_size_keep_their_ids(tmp_path):
    """Two small disks move 9 px a frame, more than their 8 px diameter (consecutive masks never overlap): each
    is the other's unambiguous nearest, so each keeps its id."""
    from .helpers import make_frames, write_frame_folder

    doc = VideoDocument(open_source(write_frame_folder(tmp_path / "v", make_frames(6, H, W)[0])))
    for t in range(6):
        p = np.full((H, W), 0.05, np.float32)
        p[disk(4 + 9 * t, 10, 4)] = 0.9
        p[disk(4 + 9 * t, 38, 4)] = 0.9
        doc.set_proposal(t, p, model="d" * 64)
    for t in range(6):
        rows = {x.id: x.centroid[1] for x in doc.record(t).lesions}
        assert rows == {1: pytest.approx(10, abs=0.5), 2: pytest.approx(38, abs=0.5)}, t
    assert doc.lesion_ids() == [1, 2]
    doc.close()


def test_touching_lesions_part_again_with_their_ids(mem_doc):
    doc = mem_doc
    for t in range(12):
        p = np.full((H, W), 0.05, np.float32)
        gap = abs(t - 6)  # 0 at frame 6: one blob
        p[disk(24 - gap, 24, 6)] = 0.9
        p[disk(36 + gap, 24, 6)] = 0.9
        doc.set_proposal(t, p, model="d" * 64)
    assert ids_at(doc, 0) == {1: 18.0, 2: 42.0}
    for t in range(12):
        found = ids_at(doc, t)
        if t == 6:
            assert len(found) == 1
        else:
            assert found[1] < 30 < found[2], t
    assert doc.lesion_ids() == [1, 2]


def test_new_lesions_take_the_ids_of_the_next_human_frame(mem_doc):
    doc = mem_doc
    labels = np.zeros((H, W), np.uint8)
    labels[two_blobs(8) >= 0.5] = 0
    labels[disk(8 + 16, 12 + 4, 5)] = 4
    labels[disk(56 - 16, 36 - 4, 6)] = 7
    doc.set_labels(8, labels)  # a human named the two nodules 7 and 4
    for t in range(12):
        doc.set_proposal(t, two_blobs(t), model="d" * 64)
    for t in (0, 3, 7, 9, 11):
        found = ids_at(doc, t)
        assert found[4] == pytest.approx(8 + 2 * t, abs=1) and found[7] == pytest.approx(56 - 2 * t, abs=1), t


def test_re_proposals_keep_ids_a_human_fixed(mem_doc):
    doc = mem_doc
    for t in range(12):
        doc.set_proposal(t, two_blobs(t, speed=1), model="d" * 64)
    assert doc.relabel_lesion(1, 9) == list(range(12))  # the frames stay proposed
    assert doc.status(3) == FrameStatus.PROPOSED and set(ids_at(doc, 3)) == {2, 9}
    for t in range(12):
        doc.set_proposal(t, two_blobs(t, speed=1), model="e" * 64)
    assert all(set(ids_at(doc, t)) == {2, 9} for t in range(12))


def test_merge_split_relabel_are_undoable_as_one_operation(mem_doc):
    doc = mem_doc
    for t in range(4):
        doc.set_proposal(t, two_blobs(0), model="d" * 64)
    before = [doc.labels(t).copy() for t in range(4)]
    assert doc.merge_lesions(2, 1) == [0, 1, 2, 3]
    assert all(doc.lesions(t) == [1] and np.array_equal(doc.labels(t) > 0, before[t] > 0) for t in range(4))
    assert doc.undo(2) == "merge lesion 2 into 1 (4 frames)"  # on any of its frames: undone on all
    assert all(np.array_equal(doc.labels(t), before[t]) for t in range(4))
    assert doc.redo(0) == "merge lesion 2 into 1 (4 frames)" and all(doc.lesions(t) == [1] for t in range(4))
    doc.undo(0)

    assert doc.labels(1)[12, 8] == 2 and doc.labels(1)[36, 56] == 1  # left: 2, right: 1 (the larger)
    assert doc.relabel_lesion(1, 2, frames=range(1, 3)) == [1, 2]  # both present: they exchange ids
    assert doc.labels(1)[12, 8] == 1 and doc.labels(1)[36, 56] == 2 and doc.labels(0)[12, 8] == 2
    assert doc.undo(1) and np.array_equal(doc.labels(2), before[2])
    assert doc.merge_lesions(2, 1, frames=3) == [3] and doc.lesions(2) == [1, 2]

    new = doc.split_lesion(3, 1, x=8, y=12)  # the left-hand piece of the merged lesion
    assert new == 3 and doc.lesions(3) == [1, 3] and doc.labels(3)[12, 8] == 3 and doc.labels(3)[36, 56] == 1
    assert doc.lesion_record(3, 3).status == FrameStatus.PROPOSED and doc.status(3) == FrameStatus.PROPOSED
    assert doc.undo(3) == "split lesion 1" and doc.lesions(3) == [1]
    with pytest.raises(EditError, match="not on lesion 1"):
        doc.split_lesion(3, 1, x=30, y=2)
    with pytest.raises(EditError, match="already lesion"):
        doc.merge_lesions(1, 1)


def test_events_tell_lesion_changes_and_the_active_lesion(mem_doc):
    seen = []
    mem_doc.events.lesions_changed.connect(lambda f: seen.append(("lesions", f)))
    mem_doc.events.active_lesion_changed.connect(lambda k: seen.append(("active", k)))
    mem_doc.paint_stroke(2, [(10, 10)], 3)
    mem_doc.active_lesion = 4
    mem_doc.active_lesion = 4
    assert seen == [("lesions", 2), ("active", 4)]
    assert mem_doc.next_lesion_id() == 2


def test_split_lesion_pieces_makes_each_smaller_piece_a_new_lesion_in_one_step(mem_doc):
    doc = mem_doc
    doc.set_lesion_mask(2, disk(10, 10, 4) | disk(40, 30, 7) | disk(56, 8, 3), lesion=1)
    assert doc.split_lesion_pieces(2, 1) == [2, 3]  # the largest piece keeps id 1; then by size
    labels = doc.labels(2)
    assert labels[30, 40] == 1 and labels[10, 10] == 2 and labels[8, 56] == 3
    assert doc.lesion_record(2, 2).status == FrameStatus.EDITED
    ids, presence = doc.lesion_presence()
    assert ids == [1, 2, 3] and presence[:, 2].all() and not presence[:, 3].any()
    assert doc.undo(2) == "split lesion 1 into 3" and doc.lesions(2) == [1]
    doc.set_lesion_mask(4, disk(20, 20, 5), lesion=1)
    with pytest.raises(EditError, match="one connected piece"):
        doc.split_lesion_pieces(4, 1)
