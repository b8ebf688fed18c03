"""Several lesions in the GUI, driven like a user: keys 1-9 choose the lesion the brush paints, the canvas
draws each lesion in its colour, the frame panel's Merge / Split / Relabel are one undo step each, the timeline
has a row per lesion, and File > Import masks brings a folder of label PNGs in."""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import Qt

from vivim_studio.document import FrameStatus
from vivim_studio.qt.theme import lesion_color

from .conftest import drag, open_video, wait_idle


def disk(x, y, r, shape=(64, 64)):
    mask = np.zeros(shape, np.uint8)
    cv2.circle(mask, (x, y), r, 1, -1)
    return mask > 0


def undo_key(qtbot, window):
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)


def test_number_keys_choose_the_lesion_the_brush_paints(make_window, small_video, qtbot):
    window = make_window()
    document = open_video(qtbot, window, small_video)
    drag(qtbot, window.canvas, [(12, 12), (14, 12)])  # lesion 1, the default
    qtbot.keyClick(window, Qt.Key.Key_2)
    assert document.active_lesion == 2 and window.actions_by_id["lesion_2"].isChecked()
    assert "Lesion 2" in window.status.lesion_label.text()
    assert window.panel.lesion_panel.tree.topLevelItem(1).text(0) == "L2 \u270E"  # marked in the frame panel
    drag(qtbot, window.canvas, [(44, 44), (46, 46)])
    labels = document.labels(0)
    assert labels[12, 12] == 1 and labels[45, 45] == 2 and document.lesions(0) == [1, 2]
    # each lesion in its own colour, the outline of the active one wider
    assert window.canvas.contour_item.lesions() == [1, 2]
    assert window.canvas.contour_item.pen_of(2).widthF() > window.canvas.contour_item.pen_of(1).widthF()
    words = window.canvas.fill_item._argb
    b, g, r = (int(v) for v in words[45, 45, :3])
    assert (r, g, b) == lesion_color(2)  # the active lesion opaque in its colour
    assert tuple(words[12, 12, 2::-1]) != tuple(words[45, 45, 2::-1])
    rows = window.panel.lesion_panel.shown_rows()
    assert [row[0] for row in rows] == [1, 2] and all(row[1] == "Edited" and "px" in row[2] for row in rows)
    window.actions_by_id["new_lesion"].trigger()  # Ctrl+N: the next free id
    assert document.active_lesion == 3
    assert "not on this frame" in window.panel.lesion_panel.shown_rows()[-1][2]


def _two_lesions(document, frames=(0, 1, 2)):
    for t in frames:
        document.set_lesion_mask(t, disk(14, 14, 6), lesion=1)
        document.set_lesion_mask(t, disk(46, 44, 7), lesion=2)


def test_merge_split_relabel_from_the_panel_are_one_undo_step_each(make_window, small_video, qtbot):
    window = make_window()
    document = open_video(qtbot, window, small_video)
    _two_lesions(document)
    before = document.labels(0).copy()
    panel = window.panel.lesion_panel
    panel.lesion_chosen.emit(2)  # click on the row of lesion 2
    assert document.active_lesion == 2

    # Merge into > L1 (all frames): a job over the video, one grouped step
    panel.merge_menu.aboutToShow.emit()
    panel.merge_menu.findChild(type(panel.merge_menu.actions()[1]), "video_1").trigger()
    wait_idle(qtbot, window)
    assert all(document.lesions(t) == [1] for t in range(3)) and document.active_lesion == 1
    undo_key(qtbot, window)
    assert all(document.lesions(t) == [1, 2] for t in range(3)) and np.array_equal(document.labels(0), before)

    # Relabel as > L1 on this frame only: the two exchange their ids; one step
    panel.lesion_chosen.emit(2)
    panel.relabel_menu.aboutToShow.emit()
    panel.relabel_menu.findChild(type(panel.relabel_menu.actions()[1]), "frame_1").trigger()
    assert document.labels(0)[44, 46] == 1 and document.labels(0)[14, 14] == 2 and document.labels(1)[44, 46] == 2
    undo_key(qtbot, window)
    assert np.array_equal(document.labels(0), before)

    # Split: lesion 1 made of two pieces; the smaller becomes a new lesion; one step
    document.set_lesion_mask(0, disk(14, 14, 6) | disk(30, 50, 3), lesion=1)
    window.select_lesion(1)
    steps = len(document.history._frames[0].undo)
    window.panel.lesion_panel.split_button.defaultAction().trigger()
    assert document.lesions(0) == [1, 2, 3] and document.labels(0)[50, 30] == 3
    assert len(document.history._frames[0].undo) == steps + 1
    assert document.lesion_record(0, 3).status == FrameStatus.EDITED
    undo_key(qtbot, window)
    assert document.lesions(0) == [1, 2] and document.labels(0)[50, 30] == 1


def test_timeline_has_a_row_per_lesion_coloured_where_it_is(make_window, small_video, qtbot):
    window = make_window()
    document = open_video(qtbot, window, small_video)
    assert not window.timeline.lesion_rows.isVisible() or window.timeline.lesion_row_ids == []
    _two_lesions(document, frames=(0, 1))
    document.set_lesion_mask(5, disk(46, 44, 7), lesion=2)
    window.timeline.refresh()
    timeline = window.timeline
    assert timeline.lesion_row_ids == [1, 2] and timeline.lesion_rows.isVisible()
    assert timeline.lesion_row_colors(0) == {1: lesion_color(1), 2: lesion_color(2)}
    on_five = timeline.lesion_row_colors(5)
    assert on_five[2] == lesion_color(2) and on_five[1] != lesion_color(1)  # lesion 1 absent: the dark track
    assert timeline.status_image.image.shape[1] == document.num_frames  # the status strip is still there


def test_import_masks_brings_a_folder_of_label_pngs_in(make_window, small_video, qtbot, tmp_path):
    window = make_window()
    document = open_video(qtbot, window, small_video, tmp_path / "ws")
    masks = tmp_path / "site_masks"
    masks.mkdir()
    for t in (2, 3):
        labels = np.zeros((64, 64), np.uint8)
        labels[disk(14, 14, 6)] = 1
        labels[disk(46, 44, 7)] = 2
        cv2.imwrite(str(masks / f"{t + 1:04d}.png"), labels)
    listing = sorted((p.name, p.stat().st_mtime_ns) for p in masks.iterdir())
    assert "import_masks" in [a.objectName().removeprefix("action_") for a in window.menuBar().actions()[0].menu()
                              .actions()]
    assert window.import_masks_from(masks, "accepted")
    wait_idle(qtbot, window)
    assert document.lesions(2) == [1, 2] and document.lesions(3) == [1, 2]
    assert document.status(2) == FrameStatus.ACCEPTED
    assert document.record(3).mask_origin == "imported:0004.png"
    assert sorted((p.name, p.stat().st_mtime_ns) for p in masks.iterdir()) == listing  # only read
    assert "Imported 2 frame(s)" in window.messages[-1] and "lesions 1, 2" in window.messages[-1]

    bad = tmp_path / "bad_masks"
    bad.mkdir()
    cv2.imwrite(str(bad / "0001.png"), np.zeros((10, 10), np.uint8))  # not the video's size
    assert window.import_masks_from(bad)
    wait_idle(qtbot, window)
    assert "0001.png" in window.messages[-1] and document.lesions(0) == []


def test_import_dialog_checks_the_path_and_returns_the_choices(qtbot, tmp_path):
    from vivim_studio.qt.import_dialog import ImportMasksDialog

    dialog = ImportMasksDialog(tmp_path)
    qtbot.addWidget(dialog)
    (tmp_path / "notes.txt").write_text("x")
    dialog.path_edit.setText(str(tmp_path / "notes.txt"))
    dialog._accept()
    assert dialog.problem.text() == "notes.txt is neither a folder nor a .nii / .nii.gz file."
    dialog.path_edit.setText(str(tmp_path))
    dialog.status_box.setCurrentIndex(1)
    dialog._accept()
    assert dialog.result() == dialog.DialogCode.Accepted and dialog.choices() == (tmp_path, "accepted", False)
