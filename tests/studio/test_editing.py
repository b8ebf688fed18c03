"""Editing operations on the document: each one undoable step, redo, per-frame history, events, status."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vivim_studio.document import EditError, FrameStatus, VideoDocument, open_source


@pytest.fixture
def mem_doc(frame_folder):
    """A document without a workspace (nothing saved): for the operations themselves."""
    doc = VideoDocument(open_source(frame_folder))
    yield doc
    doc.close()


def events_of(doc):
    seen = []
    doc.events.mask_changed.connect(lambda f: seen.append(("mask", f)))
    doc.events.status_changed.connect(lambda f, s: seen.append(("status", f, s.value)))
    doc.events.current_frame_changed.connect(lambda f: seen.append(("current", f)))
    doc.events.history_changed.connect(lambda f: seen.append(("history", f)))
    return seen


def test_stroke_is_painted_live_and_is_one_undo_step(mem_doc):
    seen = events_of(mem_doc)
    stroke = mem_doc.stroke(2, radius=3)
    for x in range(10, 40, 3):  # mouse moves
        box = stroke.add_points([(x, 20)])
        assert box is not None and mem_doc.mask(2)[20, x]  # the live mask shows the paint
    assert not mem_doc.can_undo(2)
    assert stroke.finish()
    painted = mem_doc.mask(2).copy()
    assert painted[20, 10:38].all() and mem_doc.status(2) == FrameStatus.EDITED
    assert mem_doc.record(2).mask_origin == "human" and mem_doc.record(2).area == painted.sum()
    assert ("status", 2, "edited") in seen and ("history", 2) in seen
    assert mem_doc.undo(2) == "brush stroke"  # the whole stroke goes in one step
    assert not mem_doc.mask(2).any() and mem_doc.status(2) == FrameStatus.UNREVIEWED
    assert mem_doc.redo(2) == "brush stroke" and np.array_equal(mem_doc.mask(2), painted)
    with mem_doc.stroke(2, radius=2, erase=True) as eraser:
        eraser.add_points([(20, 20), (25, 20)])
    assert not mem_doc.mask(2)[20, 20:26].any() and mem_doc.history.undo_label(2) == "eraser stroke"


def test_cancelled_stroke_and_undo_during_a_stroke_leave_nothing(mem_doc):
    stroke = mem_doc.stroke(0, radius=4)
    stroke.add_points([(10, 10)])
    stroke.cancel()
    assert not mem_doc.mask(0).any() and not mem_doc.can_undo(0)
    stroke = mem_doc.stroke(0, radius=4)
    stroke.add_points([(10, 10)])
    assert mem_doc.undo(0) == "brush stroke" and not mem_doc.mask(0).any()
    with pytest.raises(EditError):
        stroke.add_points([(12, 12)])


def test_every_operation_is_undoable_and_redoable(mem_doc, frames_and_masks):
    _, truth = frames_and_masks
    doc = mem_doc
    ring = truth[5].copy()
    ring[22:26, 24:28] = False  # a hole
    ring[2, 2] = True  # an island
    doc.set_mask(5, ring)
    probability = np.where(truth[5], 0.8, 0.1).astype(np.float32)
    doc.set_proposal(6, probability, model="a" * 64)
    operations = [
        (5, lambda: doc.fill_holes(5), "fill holes"),
        (5, lambda: doc.remove_small_islands(5, 4), "remove islands < 4 px"),
        (5, lambda: doc.add_polygon(5, [(0, 0), (8, 0), (8, 8)]), "lasso add"),
        (5, lambda: doc.keep_largest_component(5), "keep largest component"),
        (5, lambda: doc.add_polygon(5, [(20, 0), (63, 0), (63, 47), (20, 47)], subtract=True), "lasso subtract"),
        (5, lambda: doc.paint_stroke(5, [(5, 40), (15, 40)], 2), "brush stroke"),
        (5, lambda: doc.smooth(5, 1), "smooth (radius 1)"),
        (7, lambda: doc.copy_from_previous(7), "copy mask of frame 6"),
        (4, lambda: doc.copy_from_next(4), "copy mask of frame 5"),
        (6, lambda: doc.rethreshold(6, 0.05), "threshold 0.05"),
        (5, lambda: doc.clear(5), "clear frame"),
        (5, lambda: doc.accept(5), "accept"),
    ]
    for frame, operation, label in operations:
        before = (doc.mask(frame).copy(), doc.record(frame))
        assert operation(), label
        after = (doc.mask(frame).copy(), doc.record(frame))
        assert doc.undo(frame) == label
        assert np.array_equal(doc.mask(frame), before[0]) and doc.record(frame) == before[1]
        assert doc.redo(frame) == label
        assert np.array_equal(doc.mask(frame), after[0]) and doc.record(frame) == after[1]
    assert doc.status(5) == FrameStatus.ACCEPTED and not doc.mask(5).any()  # accepted as "no lesion"
    assert doc.status(6) == FrameStatus.PROPOSED and doc.mask(6).all()  # re-threshold keeps "proposed"


def test_history_is_per_frame_and_survives_moving_between_frames(mem_doc):
    doc = mem_doc
    doc.paint_stroke(1, [(10, 10)], 3)
    doc.paint_stroke(1, [(30, 10)], 3)
    doc.paint_stroke(3, [(20, 20)], 5)
    for frame in (2, 3, 1, 0, 3):
        doc.current_frame = frame
    assert doc.undo(1) == "brush stroke" and doc.mask(1)[10, 10] and not doc.mask(1)[10, 30]
    assert doc.mask(3)[20, 20]  # frame 3 untouched by frame 1's undo
    assert doc.undo() == "brush stroke" and not doc.mask(3).any()  # default: the current frame (3)
    assert doc.undo(3) is None and not doc.can_undo(3) and doc.can_redo(3)
    doc.paint_stroke(1, [(40, 40)], 2)  # a new edit drops frame 1's redo, not frame 3's
    assert not doc.can_redo(1) and doc.can_redo(3)


def test_no_op_edits_make_no_step(mem_doc):
    assert not mem_doc.fill_holes(0) and not mem_doc.keep_largest_component(0) and not mem_doc.can_undo(0)
    assert mem_doc.status(0) == FrameStatus.UNREVIEWED


def test_events_report_mask_status_and_current_frame(mem_doc):
    seen = events_of(mem_doc)
    mem_doc.current_frame = 4
    mem_doc.paint_stroke(4, [(10, 10)], 2)
    mem_doc.accept(4)
    assert ("current", 4) in seen and ("mask", 4) in seen and ("status", 4, "accepted") in seen
    broken = mem_doc.events.mask_changed.connect(lambda f: 1 / 0)  # a broken view does not break editing
    assert mem_doc.paint_stroke(4, [(20, 20)], 2)
    mem_doc.events.mask_changed.disconnect(broken)


def test_proposals_never_overwrite_human_work(mem_doc):
    doc = mem_doc
    doc.paint_stroke(1, [(10, 10)], 3)
    doc.accept(2)
    stroke = doc.stroke(3, radius=2)  # being painted right now
    stroke.add_points([(5, 5)])
    probability = np.full(doc.frame_size, 0.9, np.float32)
    written = [doc.set_proposal(i, probability, model="b" * 64) for i in range(5)]
    assert written == [True, False, False, False, True]
    assert doc.mask(0).all() and not doc.mask(1).all() and not doc.mask(2).any()
    assert doc.status(1) == FrameStatus.EDITED and doc.record(1).model == "b" * 16  # probability stored anyway
    assert doc.record(0).mask_origin == "model:" + "b" * 16 and doc.record(0).threshold == 0.5
    stroke.finish()
    assert doc.status(3) == FrameStatus.EDITED and not doc.mask(3).all()


def test_proposal_encodes_its_probability_map_outside_the_document_lock(mem_doc, monkeypatch):
    """Encoding a 1080p probability map takes ~18 ms: the GUI thread, which reads masks under the document's
    lock, must not wait on it. Another thread can take the lock while the map is encoded; the stored map is
    the one encoded."""
    import threading

    from vivim_studio.document import codec

    lock_was_free = []
    real_encode = codec.encode_probability

    def encode_and_probe_the_lock(quantized):
        def probe():
            got = mem_doc._lock.acquire(timeout=2)
            lock_was_free.append(got)
            if got:
                mem_doc._lock.release()

        other = threading.Thread(target=probe)
        other.start()
        other.join()
        return real_encode(quantized)

    monkeypatch.setattr(codec, "encode_probability", encode_and_probe_the_lock)
    probability = np.linspace(0, 1, mem_doc.frame_size[0] * mem_doc.frame_size[1], dtype=np.float32)
    assert mem_doc.set_proposal(0, probability.reshape(mem_doc.frame_size), model="m")
    assert lock_was_free == [True]
    stored = mem_doc.masks.probability(0)
    assert np.array_equal(stored, codec.quantize_probability(probability.reshape(mem_doc.frame_size)))


def test_proposal_threshold_change_rethresholds_only_model_proposals(mem_doc):
    doc = mem_doc
    ramp = np.tile(np.linspace(0, 1, doc.frame_size[1], dtype=np.float32), (doc.frame_size[0], 1))
    for i in range(3):
        doc.set_proposal(i, ramp, model="c" * 64)
    doc.paint_stroke(1, [(0, 0)], 1)
    assert np.array_equal(doc.mask(0), ramp >= 0.5)
    changed = doc.set_proposal_threshold(0.25)
    assert changed == [0, 2] and np.array_equal(doc.mask(0), ramp >= 0.25)
    assert doc.status(1) == FrameStatus.EDITED and doc.record(0).threshold == 0.25
    with pytest.raises(EditError, match="no proposal"):
        doc.rethreshold(5, 0.5)


def test_propagate_by_optical_flow_stops_at_reviewed_frames(mem_doc, frames_and_masks):
    doc, (_, truth) = mem_doc, frames_and_masks
    doc.set_mask(2, truth[2])
    doc.accept(8)
    calls = []
    written = doc.propagate(2, progress=lambda done, total: calls.append((done, total)))
    assert written == [3, 4, 5, 6, 7] and calls[-1] == (5, 9)
    for i in written:
        iou = (doc.mask(i) & truth[i]).sum() / (doc.mask(i) | truth[i]).sum()
        assert iou > 0.75, (i, iou)
        assert doc.status(i) == FrameStatus.PROPOSED and doc.record(i).mask_origin == "flow:2"
        assert doc.record(i).confidence is None  # the flow has no model confidence
    assert doc.undo(5) == "propagate from frame 3 (5 frames)"  # one step for all of them, from any of them
    assert not any(doc.mask(i).any() for i in written)
    assert all(doc.status(i) == FrameStatus.UNREVIEWED for i in written)
    assert doc.history.redo_label(7) == "propagate from frame 3 (5 frames)"
    assert doc.redo(3) == "propagate from frame 3 (5 frames)"
    assert all(doc.record(i).mask_origin == "flow:2" for i in written)
    assert doc.propagate(2, count=2, cancel=lambda: True) == []


def test_undoing_a_propagation_keeps_a_frame_edited_after_it(mem_doc, frames_and_masks):
    doc, (_, truth) = mem_doc, frames_and_masks
    doc.set_mask(2, truth[2])
    written = doc.propagate(2, count=3)
    assert written == [3, 4, 5]
    doc.paint_stroke(4, [(1, 1)], 2)  # the expert corrects one propagated frame
    corrected = doc.mask(4).copy()
    assert doc.history.undo_label(3) == "propagate from frame 3 (2 frames)"
    assert doc.undo(3) == "propagate from frame 3 (2 frames)"
    assert not doc.mask(3).any() and not doc.mask(5).any()
    assert np.array_equal(doc.mask(4), corrected) and doc.status(4) == FrameStatus.EDITED
    assert doc.undo(4) == "brush stroke" and doc.record(4).mask_origin == "flow:2"
    assert doc.undo(4) == "propagate from frame 3 (1 frame)" and not doc.mask(4).any()
    assert doc.undo(4) is None


def test_accept_frames_and_counts(mem_doc):
    doc = mem_doc
    for i in range(4):
        doc.set_proposal(i, np.full(doc.frame_size, 0.7, np.float32), model="d" * 64)
    doc.paint_stroke(5, [(3, 3)], 1)
    assert doc.accept_frames() == [0, 1, 2, 3, 5]
    counts = doc.status_counts()
    assert counts[FrameStatus.ACCEPTED] == 5 and counts[FrameStatus.UNREVIEWED] == doc.num_frames - 5
    assert doc.areas()[0] == doc.frame_size[0] * doc.frame_size[1] and np.isnan(doc.confidences()[6])


def test_invalid_requests(mem_doc):
    with pytest.raises(IndexError):
        mem_doc.mask(99)
    with pytest.raises(EditError):
        mem_doc.copy_from_previous(0)
    with pytest.raises(EditError):
        mem_doc.set_mask(0, np.zeros((3, 3), bool))
    with pytest.raises(EditError, match="3 points"):
        mem_doc.add_polygon(0, [(1, 1)])


def test_review_navigation(mem_doc):
    doc = mem_doc
    hesitant = np.full(doc.frame_size, 0.55, np.float32)
    crisp = np.zeros(doc.frame_size, np.float32)
    for i in range(6):
        doc.set_proposal(i, hesitant if i in (1, 4) else crisp, model="d" * 64)
    doc.accept(4)
    assert doc.next_low_confidence(0) == 1 and doc.next_low_confidence(1) == 1  # 4 is accepted: skipped
    assert doc.next_frame_with_status(3, FrameStatus.UNREVIEWED) == 6
    assert doc.next_frame_with_status(0, FrameStatus.ACCEPTED, step=-1) == 4
    assert doc.next_frame_with_status(0, FrameStatus.EDITED) is None


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    from .helpers import make_frames, write_frame_folder

    return write_frame_folder(tmp_path_factory.mktemp("tiny") / "v", make_frames(2, 12, 12)[0])


OPS = st.lists(st.tuples(st.sampled_from(["paint", "erase", "accept", "undo", "redo"]), st.integers(0, 1),
                         st.integers(0, 11), st.integers(0, 11), st.integers(0, 3)), max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_undo_redo_sequences_match_a_reference_model(tiny_folder, ops):
    """Any sequence of edits, undos and redos on two frames behaves like per-frame undo/redo stacks."""
    from vivim_studio.document import mask_ops

    doc = VideoDocument(open_source(tiny_folder))
    state = {f: (np.zeros((12, 12), bool), FrameStatus.UNREVIEWED) for f in (0, 1)}
    undo, redo = {0: [], 1: []}, {0: [], 1: []}
    for op, frame, x, y, radius in ops:
        mask, status = state[frame]
        if op in ("paint", "erase"):
            new = mask_ops.stroke(mask, [(x, y)], radius, erase=op == "erase")
            changed = doc.paint_stroke(frame, [(x, y)], radius, erase=op == "erase")
            assert changed == (not np.array_equal(new, mask))
            if changed:
                undo[frame].append(state[frame])
                redo[frame].clear()
                state[frame] = (new, FrameStatus.EDITED)
        elif op == "accept":
            if doc.accept(frame):
                undo[frame].append(state[frame])
                redo[frame].clear()
                state[frame] = (mask, FrameStatus.ACCEPTED)
        else:
            source, target = (undo, redo) if op == "undo" else (redo, undo)
            label = doc.undo(frame) if op == "undo" else doc.redo(frame)
            assert (label is not None) == bool(source[frame])
            if source[frame]:
                target[frame].append(state[frame])
                state[frame] = source[frame].pop()
        for f in (0, 1):
            assert np.array_equal(doc.mask(f), state[f][0]) and doc.status(f) == state[f][1]
    doc.close()
