"""The workspace under abuse: edited by hand into nonsense, on a read-only folder, on a full disk.
The user's work on disk must never change because of the failure, and every message names the file."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from hardening_support import (MODEL_SIZE, assert_user_error, make_frames, read_only_tree, run_cli, snapshot,
                               write_images)

from vivim_studio.cli import main as studio
from vivim_studio.document import EditError, ExportError, FrameStatus, VideoDocument, WorkspaceError
from vivim_studio.document.export import ExportOptions, export_document


@pytest.fixture
def video(tmp_path):
    return write_images(tmp_path / "video", make_frames(6)[0])


@pytest.fixture
def workspace(video, tmp_path):
    """A workspace with a human stroke on frame 1 (accepted), a proposal on frame 2 and an edit on frame 4."""
    folder = tmp_path / "ws"
    with VideoDocument.open(video, folder) as doc:
        doc.paint_stroke(1, [(10, 10), (30, 20)], 5)
        doc.accept(1)
        probability = np.zeros((48, 64), np.float32)
        probability[10:30, 20:40] = 0.9
        doc.set_proposal(2, probability, model="7" * 64)
        doc.paint_stroke(4, [(40, 30)], 6)
    return folder


def masks_of(folder, frames=(1, 2, 4)):
    with VideoDocument.open_workspace(folder, read_only=True) as doc:
        return {i: doc.mask(i).copy() for i in frames}


def blob(workspace, kind, index):
    return next((workspace / kind).glob(f"{index:06d}-*.png"))


# hand-edited nonsense ---------------------------------------------------------------------------------------
def _truncate_png(path):
    path.write_bytes(path.read_bytes()[:45])  # signature and header intact, image data cut


def _corrupt_png_middle(path):
    data = bytearray(path.read_bytes())
    for i in range(45, len(data) - 12):  # scramble the compressed data, keep the end marker
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


NONSENSE = {  # what the user did -> (how, the words the message must contain)
    "record made a folder": (lambda ws: (ws / "frames" / "000004.json").unlink() or
                             (ws / "frames" / "000004.json").mkdir(), "000004.json: cannot be read"),
    "workspace.json a list": (lambda ws: (ws / "workspace.json").write_text("[]"), "not a Vivim Studio workspace"),
    "workspace.json deleted": (lambda ws: (ws / "workspace.json").unlink(), "no workspace.json"),
    "record null": (lambda ws: (ws / "frames" / "000001.json").write_text("null"), "invalid frame record"),
    "area infinite": (lambda ws: (ws / "frames" / "000001.json").write_text('{"status": "edited", "area": 1e400}'),
                      "area must be a non-negative integer"),
    "threshold NaN": (lambda ws: (ws / "state.json").write_text('{"proposal_threshold": NaN}'),
                      "proposal_threshold must be a number"),
    "checkpoint a string": (lambda ws: (ws / "state.json").write_text('{"checkpoint": "best.pt"}'),
                            "checkpoint must be null or an object"),
    "mask truncated": (lambda ws: _truncate_png(blob(ws, "masks", 1)), r"unreadable mask \(truncated PNG"),
    "mask is a pickle": (lambda ws: blob(ws, "masks", 1).write_bytes(b"\x80\x04\x95cos\nsystem\n."), "unreadable mask"),
}


@pytest.mark.parametrize("case", list(NONSENSE))
def test_hand_edited_workspace_is_refused_untouched(video, workspace, tmp_path, capsys, case):
    change, message = NONSENSE[case]
    change(workspace)
    before = snapshot(workspace)
    for attempt in (lambda: VideoDocument.open(video, workspace), lambda: VideoDocument.open_workspace(workspace),
                    lambda: VideoDocument.open_workspace(workspace, read_only=True)):
        with pytest.raises(WorkspaceError, match=message) as error:
            attempt()
        assert str(workspace) in str(error.value)
    code, _, err = run_cli(studio, ["export", workspace, "--out", tmp_path / "out"], capsys)
    assert_user_error(code, err, str(workspace), expected_code=2)
    assert snapshot(workspace) == before and not (tmp_path / "out").exists()


def test_a_mask_damaged_inside_is_named_when_it_is_used(video, workspace, tmp_path, capsys):
    """A mask whose data (not its ends) is damaged passes the cheap check at open; using it names the file."""
    path = blob(workspace, "masks", 4)
    _corrupt_png_middle(path)
    before = snapshot(workspace)
    with VideoDocument.open(video, workspace) as doc:
        assert doc.mask(1).any()  # the other frames work
        with pytest.raises(WorkspaceError, match=f"{path}: the mask of frame 4 cannot be decoded"):
            doc.mask(4)
        with pytest.raises(WorkspaceError, match="000004-"):
            doc.paint_stroke(4, [(5, 5)], 2)
    code, _, err = run_cli(studio, ["export", workspace, "--out", tmp_path / "out"], capsys)
    assert_user_error(code, err, str(path), "cannot be decoded", "restore the file")
    assert not (tmp_path / "out").exists()
    assert {k: v for k, v in snapshot(workspace).items() if k != "state.json"} == \
        {k: v for k, v in before.items() if k != "state.json"}


@pytest.mark.parametrize("damage", [_truncate_png, _corrupt_png_middle])
def test_a_damaged_probability_map_is_named_and_replaced_by_the_next_proposal(video, workspace, tiny_checkpoint,
                                                                            damage):
    path = blob(workspace, "probabilities", 2)
    damage(path)
    with VideoDocument.open(video, workspace) as doc:  # opening reads no probability map: it works
        assert doc.mask(2).any() and doc.status(2) == FrameStatus.PROPOSED
        with pytest.raises(WorkspaceError, match=f"{path}: .*propose masks again"):
            doc.probability(2)
        with pytest.raises(WorkspaceError, match=str(path)):
            doc.rethreshold(2, 0.3)
        assert doc.mask(2).any()  # the mask is untouched
    with VideoDocument.open(video, workspace) as doc:
        from vivim_studio.services import InferenceService
        InferenceService(tiny_checkpoint, "cpu", size=(MODEL_SIZE, MODEL_SIZE)).propose(doc)
        assert doc.probability(2).shape == (48, 64)  # replaced
        assert doc.status(1) == FrameStatus.ACCEPTED


# read-only folder ---------------------------------------------------------------------------------------------
def test_read_only_workspace_opens_for_viewing_and_refuses_edits_clearly(video, workspace, tiny_checkpoint,
                                                                        tmp_path, capsys):
    expected = masks_of(workspace)
    before = snapshot(workspace)
    with read_only_tree(workspace):
        for open_document in (lambda: VideoDocument.open(video, workspace),
                              lambda: VideoDocument.open_workspace(workspace)):
            with open_document() as doc:
                assert doc.workspace.read_only
                assert doc.frame(3).shape == (48, 64, 3) and doc.status(1) == FrameStatus.ACCEPTED
                assert all(np.array_equal(doc.mask(i), m) for i, m in expected.items())
                assert doc.probability(2) is not None
                doc.current_frame = 5  # navigating is fine (not saved)
                for edit in (lambda: doc.paint_stroke(3, [(5, 5)], 3), lambda: doc.accept(2),
                             lambda: doc.fill_holes(1), lambda: doc.undo(1), lambda: doc.clear(4)):
                    with pytest.raises(EditError, match=f"{workspace}: the workspace folder cannot be written.*"
                                                        f"cannot be saved.*copy the folder to a writable place"):
                        edit()
        code, _, err = run_cli(studio, ["export", workspace, "--out", tmp_path / "out"], capsys)
        assert code == 0, err
    assert snapshot(workspace) == before
    with VideoDocument.open(video, workspace) as doc:  # writable again: editing works as before
        assert not doc.workspace.read_only
        assert doc.paint_stroke(3, [(5, 5)], 3)


def test_propose_into_a_read_only_workspace_says_so_before_running(video, tiny_checkpoint, tmp_path, capsys):
    workspace = tmp_path / "root" / "video.vivim"  # where `propose --workspace-root root` looks for it
    with VideoDocument.open(video, workspace) as doc:
        doc.paint_stroke(1, [(10, 10)], 4)
    before = snapshot(workspace)
    with read_only_tree(workspace):
        code, _, err = run_cli(studio, ["propose", video, "--workspace-root", tmp_path / "root", "--checkpoint",
                                        tiny_checkpoint, "--device", "cpu"], capsys)
    assert code == 1 and "Traceback" not in err
    assert f"{workspace}: the workspace folder cannot be written" in err and "1 of 1 input(s) failed" in err
    assert "| 0/6" in err and "| 1/6" not in err  # refused before inference ran
    assert snapshot(workspace) == before


# full disk -------------------------------------------------------------------------------------------------------
def fill_disk_after(monkeypatch, writes_allowed: int):
    """From the (writes_allowed + 1)-th workspace file write on, the disk is full: half the data reaches the
    temporary file, then the write fails with ENOSPC (as a real full disk does)."""
    import vivim_studio.document.atomic as atomic_module

    count = {"n": 0}
    real_open = open

    class HalfWritten:
        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    def full_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if "w" in mode:
            count["n"] += 1
            if count["n"] > writes_allowed:
                return HalfWritten(handle)
        return handle

    monkeypatch.setattr(atomic_module, "open", full_open, raising=False)
    return lambda: monkeypatch.setattr(atomic_module, "open", real_open, raising=False)


@pytest.mark.parametrize("writes_allowed", [0, 1], ids=["mask file", "frame record"])
def test_full_disk_during_autosave_keeps_the_previous_state(video, workspace, monkeypatch, writes_allowed):
    before, expected = snapshot(workspace), masks_of(workspace)
    with VideoDocument.open(video, workspace) as doc:
        free_disk = fill_disk_after(monkeypatch, writes_allowed)
        with pytest.raises(WorkspaceError, match=r"could not save \(No space left on device\).*kept in memory.*"
                                                 r"free disk space"):
            doc.paint_stroke(1, [(50, 40)], 6)
        assert doc.mask(1)[40, 50] and doc.can_undo(1)  # the edit is on screen and undoable
        on_disk = snapshot(workspace)
        assert not [name for name in on_disk if ".tmp-" in name]  # no half-written temporary file left
        assert on_disk["frames/000001.json"] == before["frames/000001.json"]  # the record still names the old mask
        assert all(np.array_equal(masks_of(workspace)[i], m) for i, m in expected.items())
        free_disk()
        doc.flush()  # space freed: the pending edit is saved
    with VideoDocument.open(video, workspace) as doc:
        assert doc.mask(1)[40, 50] and doc.status(1) == FrameStatus.EDITED
    assert not [n for n in snapshot(workspace) if n.startswith("masks/000001-")][1:]  # the orphan was removed


def test_full_disk_during_export_keeps_the_previous_export(video, workspace, tmp_path, monkeypatch):
    with VideoDocument.open_workspace(workspace, read_only=True) as doc:
        export_document(doc, tmp_path / "out", ExportOptions(selection="all"))
        before = snapshot(tmp_path / "out")
        from pathlib import Path
        real, calls = Path.write_bytes, {"n": 0}

        def write_bytes(self, data):
            calls["n"] += 1
            if calls["n"] > 5:
                real(self, data[: len(data) // 2])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(self, data)
        monkeypatch.setattr(Path, "write_bytes", write_bytes)
        with pytest.raises(ExportError, match="No space left on device.*nothing was left half-written"):
            export_document(doc, tmp_path / "out", ExportOptions(selection="all"))
    assert snapshot(tmp_path / "out") == before
