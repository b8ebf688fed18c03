"""The real widgets, driven like a user: open a video, paint with the mouse, undo/redo, change frame, accept,
export; the document model is checked after each step."""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import Qt

from vivim_studio.document import FrameStatus
from vivim_studio.document.export import ExportOptions

from .conftest import drag, mask_pixels, open_video, wait_idle


def test_paint_undo_redo_change_frame_accept_export(make_window, small_video, qtbot, tmp_path):
    window = make_window()
    document = open_video(qtbot, window, small_video)
    assert window.canvas.frame_item.image.shape == (64, 64, 3)
    assert window.timeline.position_label.text().startswith("Frame <b>1</b> / 10")

    # a brush stroke with the mouse: one undo step, saved, drawn
    drag(qtbot, window.canvas, [(20, 20), (28, 22), (36, 26), (44, 30)])
    painted = mask_pixels(document, 0)
    assert painted > 150
    assert document.mask(0)[22, 28] and not document.mask(0)[60, 5]
    assert window.canvas.fill_item.pixel_is_set(28, 22) and not window.canvas.fill_item.pixel_is_set(5, 60)
    assert document.status(0) == FrameStatus.EDITED
    assert document.history.undo_label(0) == "brush stroke" and len(document.history._frames[0].undo) == 1
    assert window.actions_by_id["undo"].text() == "&Undo brush stroke"

    # eraser (key E) removes part of it
    qtbot.keyClick(window, Qt.Key.Key_E)
    assert window.canvas.tool.value == "eraser"
    drag(qtbot, window.canvas, [(28, 22), (29, 22)])
    erased = mask_pixels(document, 0)
    assert 0 < erased < painted

    # undo (Ctrl+Z) twice, redo once (Ctrl+Shift+Z)
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert mask_pixels(document, 0) == painted
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert mask_pixels(document, 0) == 0 and not window.canvas.fill_item.pixel_is_set(28, 22)
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert mask_pixels(document, 0) == painted and window.canvas.fill_item.pixel_is_set(28, 22)

    # next frame (Right), paint there, come back: frame 0's undo history survived the trip
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert document.current_frame == 1 and window.canvas.frame_index == 1
    assert not window.canvas.fill_item.pixel_is_set(28, 22)
    qtbot.keyClick(window, Qt.Key.Key_B)
    drag(qtbot, window.canvas, [(10, 40), (14, 44)])
    assert mask_pixels(document, 1) > 0
    qtbot.keyClick(window, Qt.Key.Key_A)  # accept frame 2
    assert document.status(1) == FrameStatus.ACCEPTED
    qtbot.keyClick(window, Qt.Key.Key_Left)
    assert document.current_frame == 0 and document.can_undo(0)
    qtbot.keyClick(window, Qt.Key.Key_A)
    assert document.status(0) == FrameStatus.ACCEPTED
    window._refresh_counts()
    assert "2 accepted" in window.status.counts_label.text()

    # export (VTUS, accepted frames) in the worker; read the files back
    out = tmp_path / "export"
    assert window.export_to(out, ExportOptions(format="vtus", selection="accepted"))
    wait_idle(qtbot, window)
    video_id = document.source.video_id
    masks = sorted((out / "Train_GT" / video_id).glob("*.png"))
    assert [p.name for p in masks] == ["0001.png", "0002.png"]
    assert sorted(p.name for p in (out / "Train" / video_id).glob("*.jpg")) == ["0001.jpg", "0002.jpg"]
    first = cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(first)) == {0, 255}
    assert np.array_equal(first > 0, document.mask(0))
    assert window.last_export.manifest["accepted_frames"] == [0, 1]


def test_lasso_mask_operations_and_navigation_keys(make_window, small_video, qtbot):
    window = make_window()
    document = open_video(qtbot, window, small_video)
    qtbot.keyClick(window, Qt.Key.Key_L)
    square = [(10, 10), (40, 10), (40, 40), (10, 40)]
    drag(qtbot, window.canvas, square)
    area = mask_pixels(document, 0)
    assert 800 < area < 1000 and document.history.undo_label(0) == "lasso add"
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ShiftModifier)  # subtract a hole in the middle
    drag(qtbot, window.canvas, [(20, 20), (30, 20), (30, 30), (20, 30)])
    assert mask_pixels(document, 0) < area and not document.mask(0)[25, 25]
    qtbot.keyClick(window, Qt.Key.Key_F)  # fill holes
    assert document.mask(0)[25, 25] and document.history.undo_label(0) == "fill holes"
    qtbot.keyClick(window, Qt.Key.Key_Right)
    qtbot.keyClick(window, Qt.Key.Key_C)  # copy from previous frame
    assert np.array_equal(document.mask(1), document.mask(0))
    qtbot.keyClick(window, Qt.Key.Key_Delete)  # clear: an explicit "no lesion"
    assert mask_pixels(document, 1) == 0 and document.status(1) == FrameStatus.EDITED
    qtbot.keyClick(window, Qt.Key.Key_N)  # next unreviewed
    assert document.current_frame == 2
    qtbot.keyClick(window, Qt.Key.Key_End)
    assert document.current_frame == 9
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)
    assert window.canvas.brush_radius == 10 and window.panel.brush_slider.value() == 10


def test_timeline_click_goes_to_frame_and_shows_status(make_window, small_video, qtbot):
    window = make_window()
    document = open_video(qtbot, window, small_video)
    document.accept(3)
    window.timeline.refresh()
    strip = window.timeline.strip
    scene_point = strip.vb.mapViewToScene(__import__("PySide6.QtCore", fromlist=["QPointF"]).QPointF(6, 0.5))
    position = window.timeline.graphics.mapFromScene(scene_point)
    qtbot.mouseClick(window.timeline.graphics.viewport(), Qt.MouseButton.LeftButton, pos=position)
    qtbot.waitUntil(lambda: document.current_frame == 5, timeout=2000)
    assert "Frame <b>6</b>" in window.timeline.position_label.text()
    colours = window.timeline.status_image.image[0]
    assert tuple(colours[3]) == (50, 185, 100) and tuple(colours[0]) == (88, 92, 102)  # accepted, unreviewed


def test_reopen_resumes_workspace_and_remembers_recent_files(make_window, small_video, qtbot):
    window = make_window()
    document = open_video(qtbot, window, small_video)
    drag(qtbot, window.canvas, [(30, 30), (34, 34)])
    expected = document.mask(0).copy()
    window.go_to(6)
    window.close()  # saves the current frame and releases the workspace

    again = make_window()
    assert again.recent.paths()[0] == small_video.resolve()
    assert again.recent_menu.actions()[0].text().endswith(small_video.name)
    resumed = open_video(qtbot, again, small_video)
    assert resumed.current_frame == 6 and again.canvas.frame_index == 6
    assert np.array_equal(resumed.mask(0), expected) and resumed.status(0) == FrameStatus.EDITED


def test_open_errors_become_messages_not_tracebacks(make_window, qtbot, tmp_path):
    window = make_window()
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a video")
    assert window.open_path(bogus)
    wait_idle(qtbot, window)
    assert window.document is None
    assert "unsupported file type" in window.messages[-1] and "Traceback" not in window.messages[-1]


def test_play_and_dialog_defaults(make_window, small_video, qtbot, tmp_path):
    from vivim_studio.qt.dialogs import AcceptRangeDialog, ExportDialog

    window = make_window()
    document = open_video(qtbot, window, small_video)
    qtbot.keyClick(window, Qt.Key.Key_Space)  # play at the video's 10 fps
    assert window.playing
    qtbot.waitUntil(lambda: document.current_frame >= 2, timeout=3000)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not window.playing and not window.actions_by_id["play"].isChecked()  # the frame timer is stopped

    document.accept(0)
    dialog = ExportDialog(document, tmp_path / "out", window)
    folder, options = dialog.result_options()
    assert folder == tmp_path / "out" and options.format == "vtus" and options.selection == "reviewed"
    assert options.split == "Train" and options.size is None
    ranges = AcceptRangeDialog(document.num_frames, 3, window)
    ranges.last.setValue(6)
    assert ranges.frames() == range(3, 6)


def test_frame_panel_follows_a_new_proposal_that_keeps_the_mask(make_window, small_video, qtbot):
    """Re-proposing an accepted frame keeps its mask and status but stores the new map: the panel's
    confidence and time of change follow (they had stayed at the previous proposal's)."""
    window = make_window()
    document = open_video(qtbot, window, small_video)
    qtbot.keyClick(window, Qt.Key.Key_A)  # accept frame 1 (empty mask)
    labels = window.panel.frame_info.labels
    for level in (0.9, 0.6):
        document.set_proposal(0, np.full(document.frame_size, level, np.float32), model="m")
        record = document.record(0)
        assert document.status(0) == FrameStatus.ACCEPTED and not document.mask(0).any()
        qtbot.waitUntil(lambda: labels["Confidence"].text() == f"{record.confidence:.2f}", timeout=3000)
        assert labels["Changed"].text().startswith(record.updated.replace("T", " ")[:19])
