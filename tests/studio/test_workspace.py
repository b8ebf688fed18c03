"""The workspace: exact resume, identity check, lock, atomic saves, clear errors for hand-edited nonsense."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vivim_studio.document import FrameStatus, VideoDocument, WorkspaceError

from .helpers import make_frames, write_frame_folder


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` with its content hash (to prove nothing was touched)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


def edit_some(doc: VideoDocument) -> None:
    ramp = np.tile(np.linspace(0, 1, doc.frame_size[1], dtype=np.float32), (doc.frame_size[0], 1))
    for i in range(4):
        doc.set_proposal(i, ramp, model="e" * 64)
    doc.set_checkpoint("e" * 64, "demo.safetensors")
    doc.paint_stroke(1, [(5, 5), (20, 30)], 4)
    doc.accept(2)
    doc.clear(6)
    doc.current_frame = 7
    doc.set_proposal_threshold(0.3)


def state_of(doc: VideoDocument):
    return ([doc.mask(i).copy() for i in range(doc.num_frames)], [doc.record(i) for i in range(doc.num_frames)],
            [None if doc.probability(i) is None else doc.probability(i).copy() for i in range(doc.num_frames)],
            doc.current_frame, doc.proposal_threshold, doc.checkpoint)


def assert_same_state(a, b):
    masks_a, records_a, probs_a, *rest_a = a
    masks_b, records_b, probs_b, *rest_b = b
    assert all(np.array_equal(x, y) for x, y in zip(masks_a, masks_b))
    assert records_a == records_b and rest_a == rest_b
    assert all((x is None and y is None) or np.array_equal(x, y) for x, y in zip(probs_a, probs_b))


def test_reopening_resumes_exactly(frame_folder, tmp_path):
    with VideoDocument.open(frame_folder, tmp_path / "ws") as doc:
        edit_some(doc)
        before = state_of(doc)
    with VideoDocument.open(frame_folder, tmp_path / "ws") as doc:
        assert_same_state(before, state_of(doc))
        assert doc.status(1) == FrameStatus.EDITED and doc.status(6) == FrameStatus.EDITED
        assert doc.probability(3) is not None and doc.masks.memory_bytes() < 20_000
    # same state through open_workspace (the export path), read-only
    with VideoDocument.open_workspace(tmp_path / "ws", read_only=True) as doc:
        assert_same_state(before, state_of(doc))


def test_default_workspace_is_beside_the_video(video_file):
    with VideoDocument.open(video_file) as doc:
        doc.paint_stroke(0, [(3, 3)], 2)
    assert (video_file.parent / "clip.avi.vivim" / "workspace.json").is_file()


def test_every_change_is_on_disk_before_the_call_returns(frame_folder, tmp_path):
    with VideoDocument.open(frame_folder, tmp_path / "ws") as doc:
        doc.paint_stroke(3, [(10, 10)], 3)
        record = json.loads((tmp_path / "ws" / "frames" / "000003.json").read_text())
        assert record["status"] == "edited" and (tmp_path / "ws" / "masks" / record["mask"]).is_file()
        doc.undo(3)
        record = json.loads((tmp_path / "ws" / "frames" / "000003.json").read_text())
        assert record["mask"] is None and record["status"] == "unreviewed"
        assert list((tmp_path / "ws" / "masks").iterdir()) == []  # the replaced mask file is gone


def test_workspace_of_another_video_is_refused_untouched(frame_folder, tmp_path):
    with VideoDocument.open(frame_folder, tmp_path / "ws") as doc:
        edit_some(doc)
    other = write_frame_folder(tmp_path / "other", make_frames(12, seed=5)[0])
    before = snapshot(tmp_path / "ws")
    with pytest.raises(WorkspaceError, match="belongs to another video.*frames.*Nothing was changed"):
        VideoDocument.open(other, tmp_path / "ws")
    assert snapshot(tmp_path / "ws") == before


def test_workspace_is_locked_while_open(frame_folder, tmp_path):
    with VideoDocument.open(frame_folder, tmp_path / "ws"):
        with pytest.raises(WorkspaceError, match="open in another Vivim Studio process"):
            VideoDocument.open(frame_folder, tmp_path / "ws")
        with VideoDocument.open_workspace(tmp_path / "ws", read_only=True) as reader:  # readers need no lock
            assert reader.num_frames == 12
    VideoDocument.open(frame_folder, tmp_path / "ws").close()  # released on close


def test_a_folder_that_is_not_a_workspace_is_never_written(frame_folder, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.docx").write_bytes(b"precious")
    with pytest.raises(WorkspaceError, match="not a Vivim Studio workspace"):
        VideoDocument.open(frame_folder, tmp_path / "mine")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["thesis.docx"]


def test_moved_video_is_recognised_and_followed(frame_folder, tmp_path):
    with VideoDocument.open(frame_folder, tmp_path / "ws") as doc:
        edit_some(doc)
        before = state_of(doc)
    moved = tmp_path / "elsewhere" / "renamed"
    shutil.move(str(frame_folder), moved)
    with VideoDocument.open_workspace(tmp_path / "ws", read_only=True) as doc:  # video gone: masks still readable
        assert doc.mask(1).any()
        with pytest.raises(Exception, match="not available"):
            doc.frame(0)
    with VideoDocument.open(moved, tmp_path / "ws") as doc:
        assert_same_state(before, state_of(doc))
    with VideoDocument.open_workspace(tmp_path / "ws") as doc:  # the new location was recorded
        assert doc.source.path == moved.resolve()


CORRUPTIONS = {
    "workspace.json not JSON": ("workspace.json", lambda t: t[: len(t) // 2], "workspace.json: not valid JSON"),
    "workspace.json wrong format": ("workspace.json", lambda t: t.replace("vivim-studio-workspace", "x"),
                                    "not a Vivim Studio workspace file"),
    "workspace.json newer": ("workspace.json", lambda t: t.replace('"format_version": 3', '"format_version": 9'),
                             "update Vivim Studio"),
    "identity mangled": ("workspace.json", lambda t: t.replace('"num_frames": 12', '"num_frames": "many"'),
                         "source description is invalid"),
    "state current frame": ("state.json", lambda t: t.replace('"current_frame": 7', '"current_frame": 70'),
                            "current_frame must be a frame index"),
    "state not object": ("state.json", lambda t: "[1, 2]", "expected a JSON object"),
    "record not JSON": ("frames/000001.json", lambda t: t + "}}", "000001.json: not valid JSON"),
    "record bad status": ("frames/000001.json", lambda t: t.replace('"edited"', '"fabulous"'),
                          "000001.json: invalid frame record"),
    "record bad area": ("frames/000001.json", lambda t: t.replace('"area": ', '"area": -'),
                        "area must be a non-negative"),
    "record wrong mask name": ("frames/000001.json", lambda t: t.replace('"mask": "000001-', '"mask": "000002-'),
                               "is not a mask file name of frame 1"),
    "record binary": ("frames/000001.json", lambda t: "\udcff", "not a text"),
    "frame out of range": ("frames/000099.json", lambda t: "{}", "record of frame 99"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_hand_edited_nonsense_is_a_clear_error_and_destroys_nothing(frame_folder, tmp_path, case):
    with VideoDocument.open(frame_folder, tmp_path / "ws") as doc:
        edit_some(doc)
    name, corrupt, message = CORRUPTIONS[case]
    path = tmp_path / "ws" / name
    text = path.read_text() if path.exists() else ""
    path.write_bytes(corrupt(text).encode("utf-8", "surrogateescape"))
    before = snapshot(tmp_path / "ws")
    with pytest.raises(WorkspaceError, match=message):
        VideoDocument.open(frame_folder, tmp_path / "ws")
    assert snapshot(tmp_path / "ws") == before


def test_missing_or_damaged_mask_file_is_a_clear_error(frame_folder, tmp_path):
    with VideoDocument.open(frame_folder, tmp_path / "ws") as doc:
        edit_some(doc)
    mask_file = next((tmp_path / "ws" / "masks").glob("000001-*.png"))
    mask_file.write_bytes(b"garbage")
    with pytest.raises(WorkspaceError, match="000001-.*unreadable mask"):
        VideoDocument.open(frame_folder, tmp_path / "ws")
    mask_file.unlink()
    with pytest.raises(WorkspaceError, match="mask file .* is missing"):
        VideoDocument.open(frame_folder, tmp_path / "ws")


def test_leftovers_of_a_crash_are_cleaned_on_open(frame_folder, tmp_path):
    with VideoDocument.open(frame_folder, tmp_path / "ws") as doc:
        doc.paint_stroke(1, [(5, 5)], 3)
    ws = tmp_path / "ws"
    (ws / "masks" / "000004-0123456789abcdef.png").write_bytes(b"orphan")  # written, record never renamed
    (ws / "frames" / ".000004.json.tmp-999").write_bytes(b"{half")
    (ws / ".state.json.tmp-999-1-2").write_bytes(b"{")
    (ws / "masks" / "my-notes.txt").write_text("not ours: kept")
    with VideoDocument.open(frame_folder, ws) as doc:
        assert doc.mask(1).any() and not doc.mask(4).any()
    assert not (ws / "masks" / "000004-0123456789abcdef.png").exists()
    assert not (ws / "frames" / ".000004.json.tmp-999").exists() and (ws / "masks" / "my-notes.txt").exists()
    assert not (ws / ".state.json.tmp-999-1-2").exists()


def test_save_failure_keeps_the_edit_in_memory_and_retries(frame_folder, tmp_path, monkeypatch):
    import vivim_studio.document.workspace as workspace_module

    with VideoDocument.open(frame_folder, tmp_path / "ws") as doc:
        real = workspace_module.atomic_write

        def disk_full(*args, **kwargs):
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(workspace_module, "atomic_write", disk_full)
        with pytest.raises(WorkspaceError, match="No space left.*kept in memory"):
            doc.paint_stroke(2, [(8, 8)], 3)
        assert doc.mask(2).any() and doc.status(2) == FrameStatus.EDITED
        monkeypatch.setattr(workspace_module, "atomic_write", real)
        doc.flush()
    with VideoDocument.open(frame_folder, tmp_path / "ws") as doc:
        assert doc.mask(2).any()


def test_dataset_ground_truth_is_imported_once_and_never_over_human_edits(tmp_path):
    from vivim_core.data.synthetic import write_vtus_dataset

    root = write_vtus_dataset(tmp_path / "vtus", num_videos=1, frames_per_video=5, size=(32, 32))
    case = root / "Train" / "0001"
    with VideoDocument.open(case) as doc:  # default workspace: ROOT/Train.vivim/0001
        assert doc.workspace.folder == root / "Train.vivim" / "0001"
        assert doc.status(0) == FrameStatus.EDITED and doc.record(0).mask_origin == "import:vtus-gt"
        doc.clear(0)
    with VideoDocument.open(case) as doc:
        assert not doc.mask(0).any() and doc.mask(1).any()
    from vivim_core.data.layouts import find_vtus_videos
    assert [v.video_id for v in find_vtus_videos(root, "Train")] == ["0001"]  # the dataset still reads
