"""The model as an assistant in the GUI: the Prompt tool (clicks, boxes, their queue and undo), the learning
loop that adapts the model while the expert corrects, and the model a workspace brings back when reopened."""

from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import Qt

from vivim_studio.document import FrameStatus, VideoDocument
from vivim_studio.qt.tools import Tool

from .conftest import drag, open_video, wait_idle, write_small_video

TIMEOUT = 120_000


def click_pixel(qtbot, window, x, y, button=Qt.MouseButton.LeftButton, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.mouseClick(window.canvas.view.viewport(), button, modifier, pos=window.canvas.widget_point(x, y))


def prompt_window(make_window, qtbot, prompt_checkpoint, video, **options):
    window = make_window(checkpoint=prompt_checkpoint, **options)
    document = open_video(qtbot, window, video)
    qtbot.keyClick(window, Qt.Key.Key_Q)
    assert window.canvas.tool is Tool.PROMPT
    return window, document


def wait_clicks(qtbot, window):
    qtbot.waitUntil(lambda: window.prompt_queue.pending == 0, timeout=TIMEOUT)


def test_left_click_is_lesion_right_or_shift_click_background_each_one_undo_step(make_window, prompt_checkpoint,
                                                                               small_video, qtbot):
    window, document = prompt_window(make_window, qtbot, prompt_checkpoint, small_video)
    click_pixel(qtbot, window, 20, 30)
    wait_clicks(qtbot, window)
    assert document.record(0).clicks == ((20, 30, True),)
    record = document.record(0)
    assert record.status == FrameStatus.EDITED and record.mask_origin.startswith("prompt:")
    assert window.messages[-1].startswith(("Click applied (model vivim-tiny-prompts, ",
                                           "Click recorded, mask unchanged (model vivim-tiny-prompts, "))
    click_pixel(qtbot, window, 41, 12, Qt.MouseButton.RightButton)
    click_pixel(qtbot, window, 8, 50, modifier=Qt.KeyboardModifier.ShiftModifier)
    wait_clicks(qtbot, window)
    assert document.record(0).clicks == ((20, 30, True), (41, 12, False), (8, 50, False))
    assert sorted(window.canvas.marker_positions()) == sorted(document.record(0).clicks)  # drawn from the record
    assert window.actions_by_id["undo"].text() == "&Undo click (background)"
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # one click per undo step
    assert document.record(0).clicks == ((20, 30, True), (41, 12, False))
    assert sorted(window.canvas.marker_positions()) == [(20, 30, True), (41, 12, False)]
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert document.record(0).clicks == () and document.status(0) == FrameStatus.UNREVIEWED
    assert window.canvas.marker_positions() == []


def test_a_drag_draws_a_box_and_the_model_draws_the_lesion_inside(make_window, prompt_checkpoint, small_video,
                                                                  qtbot):
    window, document = prompt_window(make_window, qtbot, prompt_checkpoint, small_video)
    assist = window.assist_service()
    boxes, real_box = [], assist.box
    assist.box = lambda doc, frame, box: (boxes.append((frame, box)), real_box(doc, frame, box))[1]
    drag(qtbot, window.canvas, [(10, 12), (25, 20), (40, 35)])
    wait_clicks(qtbot, window)
    assert not window.canvas.box_item.isVisible()
    (frame, (x0, y0, x1, y1)), = boxes
    assert frame == 0 and np.allclose((x0, y0, x1, y1), (10, 12, 40, 35), atol=1)
    assert document.history.undo_label(0) == "box" and document.record(0).mask_origin.startswith("prompt:")
    assert document.record(0).clicks == ()


def test_clicks_made_while_the_model_computes_are_queued_in_order(make_window, prompt_checkpoint, small_video,
                                                                  qtbot):
    window, document = prompt_window(make_window, qtbot, prompt_checkpoint, small_video)
    assist = window.assist_service()
    gate, real_click, threads = threading.Event(), assist.click, set()

    def gated_click(*args, **kwargs):
        threads.add(threading.get_ident())
        assert gate.wait(60)
        return real_click(*args, **kwargs)

    assist.click = gated_click
    for x, y, button in ((10, 10, Qt.MouseButton.LeftButton), (30, 40, Qt.MouseButton.RightButton),
                         (50, 20, Qt.MouseButton.LeftButton)):
        click_pixel(qtbot, window, x, y, button)
    # the first click is held in the worker: the GUI thread went on, and the other two wait their turn
    assert window.prompt_queue.pending == 3 and document.record(0).clicks == ()
    assert sorted(window.canvas.marker_positions()) == [(10, 10, True), (30, 40, False), (50, 20, True)]
    gate.set()
    wait_clicks(qtbot, window)
    assert threading.get_ident() not in threads
    assert document.record(0).clicks == ((10, 10, True), (30, 40, False), (50, 20, True))
    labels = [document.undo(0) for _ in range(3)]
    assert labels == ["click (lesion)", "click (background)", "click (lesion)"] and document.record(0).clicks == ()


def test_a_checkpoint_without_prompt_inputs_says_why_the_prompt_tool_is_unavailable(make_window, tiny_checkpoint,
                                                                                    small_video, qtbot):
    window = make_window(checkpoint=tiny_checkpoint)
    open_video(qtbot, window, small_video)
    qtbot.keyClick(window, Qt.Key.Key_Q)
    assert window.canvas.tool is Tool.BRUSH and window.actions_by_id["tool_brush"].isChecked()
    assert "has no prompt inputs" in window.messages[-1] and "Choose a prompt-capable checkpoint" in window.messages[-1]
    assert "has no prompt inputs" in window.actions_by_id["tool_prompt"].toolTip()
    assert not window.actions_by_id["learn"].isEnabled()


def test_learning_starts_after_an_accept_coalesces_and_never_overwrites_human_frames(make_window, prompt_checkpoint,
                                                                                     small_video, qtbot):
    window = make_window(checkpoint=prompt_checkpoint)
    document = open_video(qtbot, window, small_video)
    assert window.actions_by_id["learn"].isEnabled() and window.actions_by_id["learn"].isChecked()
    assist = window.assist_service()
    gate, real_adapt, rounds = threading.Event(), assist.adapt, []

    def gated_adapt(*args, **kwargs):
        rounds.append(len(rounds) + 1)
        assert gate.wait(60)
        return real_adapt(*args, **kwargs)

    assist.adapt = gated_adapt
    drag(qtbot, window.canvas, [(20, 20), (34, 30)])  # a brush stroke on the first frame
    qtbot.waitUntil(lambda: window.learning_runner.busy, timeout=TIMEOUT)  # after the quiet period
    assert window.status.learning_text == "Learning from 1 frame…"
    window.go_to(4)
    qtbot.keyClick(window, Qt.Key.Key_A)  # accepted during the round: a second round follows it, not a parallel one
    window.go_to(6)
    qtbot.keyClick(window, Qt.Key.Key_A)
    human = {i: document.mask(i).copy() for i in (0, 4, 6)}
    gate.set()
    qtbot.waitUntil(lambda: any(m.startswith("Model updated (round 2)") for m in window.messages), timeout=TIMEOUT)
    qtbot.waitUntil(lambda: not window.learning_runner.busy, timeout=TIMEOUT)
    assert rounds == [1, 2] and not window.learning_wanted and not window._learn_timer.isActive()
    assert any(m.startswith("Model updated (round 1): ") for m in window.messages)
    for index, mask in human.items():  # the expert's frames are never overwritten
        assert np.array_equal(document.mask(index), mask)
    assert [document.status(i) for i in (0, 4, 6)] == [FrameStatus.EDITED, FrameStatus.ACCEPTED,
                                                        FrameStatus.ACCEPTED]
    adapted = document.workspace_model_path()
    assert adapted is not None and adapted.parent.name == "models"
    untouched = [i for i in range(document.num_frames) if i not in human]
    assert all(document.record(i).mask_origin == f"model:{document.model['sha256'][:16]}" for i in untouched)
    assert window.status.checkpoint_label.full_text() == "Model: adapted to this video (round 2)"
    # the timeline marks the frames the last round changed; a visit clears the mark
    changed = window.timeline.changed
    assert changed <= set(untouched)
    window.go_to(next(iter(changed)) if changed else 0)
    assert len(window.timeline.changed) == max(0, len(changed) - 1)
    assert not window.status.learning_text


def test_the_timeline_marks_the_frames_a_round_changed(make_window, prompt_checkpoint, small_video, qtbot):
    window = make_window(checkpoint=prompt_checkpoint)
    document = open_video(qtbot, window, small_video)
    document.set_proposal_threshold(0.3)  # a random tiny model's probabilities are ~0.5: masks appear
    before = {i: document.mask(i).copy() for i in range(document.num_frames)}
    document.paint_stroke(0, [(20, 20), (30, 30)], 5)
    qtbot.waitUntil(lambda: any(m.startswith("Model updated (round 1)") for m in window.messages), timeout=TIMEOUT)
    changed = {i for i in range(document.num_frames) if not np.array_equal(before[i], document.mask(i))} - {0}
    assert changed and window.timeline.changed == changed
    assert window.timeline.changed_legend.isVisibleTo(window.timeline)
    image = window.timeline.changed_image.image
    assert {int(i) for i in np.flatnonzero(image[0, :, 3])} == changed
    for index in changed:
        window.go_to(index)
    assert window.timeline.changed == set() and not window.timeline.changed_legend.isVisibleTo(window.timeline)


def test_learning_can_be_turned_off_and_the_choice_is_remembered(make_window, prompt_checkpoint, small_video, qtbot):
    window = make_window(checkpoint=prompt_checkpoint)
    document = open_video(qtbot, window, small_video)
    window.actions_by_id["learn"].setChecked(False)
    document.accept(0)
    assert not window.learning_wanted and not window._learn_timer.isActive()
    assert not make_window(checkpoint=prompt_checkpoint).actions_by_id["learn"].isChecked()


def test_a_reopened_workspace_uses_its_adapted_model_unless_a_checkpoint_was_chosen(
        make_window, prompt_checkpoint, tiny_checkpoint, small_video, qtbot, monkeypatch):
    import vivim_core

    with VideoDocument.open(small_video) as document:  # a workspace whose model learnt 4 rounds
        sha = document.save_workspace_model(vivim_core.load_model(prompt_checkpoint), {"kind": "adapted", "rounds": 4})
    monkeypatch.setenv("VIVIM_STUDIO_CHECKPOINT", str(tiny_checkpoint))  # the default (no prompt inputs)
    window = make_window()
    document = open_video(qtbot, window, small_video)
    assert window.status.checkpoint_label.full_text() == "Model: adapted to this video (round 4)"
    assert window.document_service().checkpoint_path == document.workspace_model_path()
    assert window.prompt_problem() is None  # the adapted model takes prompts, the default would not
    with qtbot.waitSignal(window.proposals_finished, timeout=TIMEOUT):
        qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert document.checkpoint["sha256"] == sha  # Propose used the workspace's model
    document.accept(0)  # learning goes on from the workspace's model
    qtbot.waitUntil(lambda: any(m.startswith("Model updated (round 5)") for m in window.messages), timeout=TIMEOUT)
    window.close()

    chosen = make_window(checkpoint=prompt_checkpoint)  # a checkpoint the user picked wins over the workspace's
    open_video(qtbot, chosen, small_video)
    assert chosen.status.checkpoint_label.full_text() == "Model: vivim-tiny-prompts"
    assert chosen.document_service().checkpoint_path == prompt_checkpoint


def test_propagate_is_one_undo_step_with_its_own_colour_and_no_confidence(make_window, small_video, qtbot):
    from vivim_studio.qt.theme import PROPAGATED_COLOR

    window = make_window()
    document = open_video(qtbot, window, small_video)
    drag(qtbot, window.canvas, [(20, 20), (34, 30)])
    document.set_proposal(3, np.full(document.frame_size, 0.3, np.float32), model="e" * 64)  # has a confidence
    qtbot.keyClick(window, Qt.Key.Key_P)
    wait_idle(qtbot, window)
    written = list(range(1, document.num_frames))
    assert all(document.record(i).propagated for i in written)
    assert "Propagated frame 1 to frames 2-10" in window.messages[-1]
    window.timeline.refresh()
    colours = window.timeline.status_image.image[0]
    assert all(tuple(colours[i]) == PROPAGATED_COLOR for i in written) and tuple(colours[0]) != PROPAGATED_COLOR
    window.go_to(3)
    qtbot.waitUntil(lambda: "Propagated" in window.panel.frame_info.labels["Status"].text())
    assert window.panel.frame_info.labels["Confidence"].text() == "—"
    assert np.isnan(document.confidences()[3])
    assert window.actions_by_id["undo"].text() == "&Undo propagate from frame 1 (9 frames)"
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert "Undo: propagate from frame 1 (9 frames)" in window.messages[-1]
    assert not any(document.record(i).propagated for i in written)
    assert document.record(3).mask_origin.startswith("model:") and document.status(3) == FrameStatus.PROPOSED
    assert window.actions_by_id["redo"].text() == "&Redo propagate from frame 1 (9 frames)"
    window.go_to(7)
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert all(document.record(i).propagated for i in written)


def test_finetune_holds_frames_out_and_becomes_the_workspace_model(make_window, prompt_checkpoint, tmp_path, qtbot):
    """Fine-tune from the GUI with the real service (tiny sizes): the quality it reports is measured on held-out
    frames, its model becomes the workspace's, and the untouched frames are re-proposed with it."""
    video = write_small_video(tmp_path, num_frames=8, size=64)
    window = make_window(checkpoint=prompt_checkpoint)
    window.actions_by_id["learn"].setChecked(False)
    document = open_video(qtbot, window, video)
    for index in range(5):
        document.paint_stroke(index, [(20 + index, 24), (36, 30)], 6)
    with qtbot.waitSignal(window.proposals_finished, timeout=TIMEOUT):
        assert window.start_finetune(max_steps=1, batch_size=1, clip_length=2, clips_per_video=1, size=(32, 32),
                                     affine_weight=0.0, eval_every=1)
    summary = next(m for m in window.messages if m.startswith("Fine-tuning finished"))
    assert "on 4 corrected frame(s); Dice " in summary and "on 1 corrected frame(s) it did not train on" in summary
    assert document.model is not None and document.checkpoint["sha256"] == document.model["sha256"]
    assert window.status.checkpoint_label.full_text() == "Model: fine-tuned on this video"
    assert [document.status(i) for i in range(5)] == [FrameStatus.EDITED] * 5
    assert all(document.status(i) == FrameStatus.PROPOSED for i in range(5, 8))
