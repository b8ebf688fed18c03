"""The export dialog: reviewed frames by default (also when nothing is accepted yet); unreviewed proposals only
through an explicit, explained option; the suggested id and folder keep the export apart from the video."""

from __future__ import annotations

from .conftest import open_video


def test_export_dialog_defaults_to_reviewed_frames(make_window, small_video, qtbot, tmp_path):
    from vivim_studio.qt.dialogs import ExportDialog

    window = make_window()
    document = open_video(qtbot, window, small_video)
    dialog = ExportDialog(document, tmp_path / "out", window)
    folder, options = dialog.result_options()
    assert options.selection == "reviewed" and options.video_id is None  # the suggestion: made unique on export
    assert not dialog.unreviewed_check.isChecked() and not dialog.unreviewed_note.isVisibleTo(dialog)
    dialog.unreviewed_check.setChecked(True)
    assert dialog.result_options()[1].selection == "all"
    assert dialog.unreviewed_note.isVisibleTo(dialog) and "not ground truth" in dialog.unreviewed_note.text()
    assert not dialog.selection_box.isEnabled()
    dialog.unreviewed_check.setChecked(False)
    dialog.selection_box.setCurrentIndex(1)
    dialog.video_id_edit.setText("case-7")
    assert dialog.result_options()[1].selection == "accepted" and dialog.result_options()[1].video_id == "case-7"
