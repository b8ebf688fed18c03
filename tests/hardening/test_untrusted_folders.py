"""Folders received from elsewhere: bookkeeping files the Studio finds in an output folder or a workspace
(an interrupted export's journal, a workspace's `.lock`, frame records) are checked before anything obeys
them. A crafted or stray file is refused with a message naming it, or left alone and reported; nothing
outside the chosen folder changes and no mask a human edited or accepted is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hardening_support import assert_user_error, make_frames, run_cli, snapshot, write_images

from vivim_core.errors import VivimError
from vivim_studio.cli import main as studio
from vivim_studio.document import ExportError, FrameStatus, VideoDocument
from vivim_studio.document.export import JOURNAL_SUFFIX, ExportOptions, export_document


def dead_pid() -> int:
    """The pid of a process that has ended (what an interrupted export leaves in its journal's name)."""
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    return finished.pid


@pytest.fixture
def reviewed(tmp_path):
    """A workspace of a 6-frame folder: frame 2 accepted, frame 4 edited."""
    video = write_images(tmp_path / "video", make_frames(6)[0])
    doc = VideoDocument.open(video, tmp_path / "ws")
    doc.set_mask(2, np.ones((48, 64), bool))
    doc.accept(2)
    doc.paint_stroke(4, [(20, 20)], 5)
    yield doc
    doc.close()


@pytest.fixture
def victim(tmp_path):
    """Files outside every folder the user chose; they must come out of each test unchanged."""
    folder = tmp_path / "victim"
    (folder / "inner").mkdir(parents=True)
    (folder / "notes.txt").write_text("precious")
    (folder / "inner" / "data.bin").write_bytes(b"\x00\x01" * 100)
    before = snapshot(folder)
    yield folder
    assert snapshot(folder) == before, "a file outside the chosen folders changed"


def plant_journal(out, content, pid=None, staging_folder=True):
    """An interrupted export's journal (and its staging folder) in `out`, as a received folder may hold."""
    name = f".vivim-export-{pid or dead_pid()}-deadbeef"
    if staging_folder:
        (out / name).mkdir(parents=True, exist_ok=True)
    journal = out / f"{name}{JOURNAL_SUFFIX}"
    journal.write_text(content if isinstance(content, str) else json.dumps(content))
    return journal, name


# export journals ---------------------------------------------------------------------------------------------
def crafted_journals(out, victim, name):
    outside = os.path.relpath(victim, out)
    return {
        "staging outside the output": {"staging": outside, "paths": ["notes.txt"]},
        "staging absolute": {"staging": str(victim), "paths": []},
        "a path climbing out": {"staging": name, "paths": [f"{outside}/notes.txt"]},
        "an absolute path": {"staging": name, "paths": [str(victim / "notes.txt")]},
        "a path into the staging folder": {"staging": name, "paths": [f"{name}/x"]},
        "not a list of paths": {"staging": name, "paths": "Train"},
        "a path that is not text": {"staging": name, "paths": [7]},
        "unknown keys": {"staging": name, "paths": [], "delete": str(victim)},
        "another staging name": {"staging": ".vivim-export-1-cafecafe", "paths": []},
        "a foreign format": {"format": "something-else", "format_version": 1, "staging": name, "paths": []},
        "not JSON": "{this is not json",
        "a JSON list": [name, ["Train"]],
    }


def test_crafted_journals_are_refused_and_nothing_outside_changes(reviewed, tmp_path, victim, capsys):
    out = tmp_path / "out"
    export_document(reviewed, out)
    name = f".vivim-export-{dead_pid()}-deadbeef"
    for what, content in crafted_journals(out, victim, name).items():
        journal, _ = plant_journal(out, content, pid=int(name.split("-")[2]))
        before = snapshot(out)
        with pytest.raises(ExportError) as caught:
            export_document(reviewed, out)
        message = str(caught.value)
        assert str(journal) in message and "delete" in message, (what, message)
        assert snapshot(out) == before, f"{what}: the output changed although the journal was refused"
        code, _, err = run_cli(studio, ["export", reviewed.workspace.folder, "--out", out], capsys)
        assert_user_error(code, err, str(journal))
        journal.unlink()


def test_journal_that_is_a_symbolic_link_is_refused(reviewed, tmp_path, victim):
    out = tmp_path / "out"
    export_document(reviewed, out)
    name = f".vivim-export-{dead_pid()}-deadbeef"
    (victim.parent / "elsewhere.json").write_text(json.dumps({"staging": name, "paths": []}))
    (out / f"{name}{JOURNAL_SUFFIX}").symlink_to(victim.parent / "elsewhere.json")
    with pytest.raises(ExportError, match="symbolic link"):
        export_document(reviewed, out)


def test_staging_folder_that_is_a_symbolic_link_is_never_emptied(reviewed, tmp_path, victim):
    out = tmp_path / "out"
    export_document(reviewed, out)
    name = f".vivim-export-{dead_pid()}-deadbeef"
    (out / name).symlink_to(victim)  # no journal: looks like an abandoned staging folder
    export_document(reviewed, out, ExportOptions(split="Test"))
    assert (out / name).is_symlink()  # left alone: not ours
    journal, _ = plant_journal(out, {"staging": name, "paths": []}, pid=int(name.split("-")[2]),
                               staging_folder=False)
    with pytest.raises(ExportError, match=f"{journal}.*symbolic link"):
        export_document(reviewed, out)


def test_a_genuine_interrupted_export_is_still_completed(reviewed, tmp_path):
    """The journals this Studio writes (and those of the previous version, without the format field) are still
    obeyed: the interrupted commit is finished."""
    import shutil

    from vivim_core.data.layouts import find_vtus_videos

    out = tmp_path / "out"
    export_document(reviewed, out)
    exported = len(list((out / "Train" / "video").iterdir()))
    for legacy in (False, True):
        name = f".vivim-export-{dead_pid()}-deadbeef"
        staging = out / name
        shutil.copytree(out / "Train", staging / "Test")
        shutil.copytree(out / "Train_GT", staging / "Test_GT")
        content = {"staging": name, "paths": ["Test/video", "Test_GT/video"]}
        if not legacy:
            content = {"format": "vivim-studio-export-journal", "format_version": 1, **content}
        plant_journal(out, content, pid=int(name.split("-")[2]))
        export_document(reviewed, out, ExportOptions(split="Val"))
        assert [len(v) for v in find_vtus_videos(out, "Test")] == [exported] and not staging.exists()
        assert not list(out.glob(f"*{JOURNAL_SUFFIX}"))
        shutil.rmtree(out / "Test")
        shutil.rmtree(out / "Test_GT")


# the workspace lock ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["symlink", "hardlink", "folder"])
def test_workspace_lock_that_is_not_a_plain_file_is_refused(reviewed, tmp_path, victim, kind, capsys):
    workspace = reviewed.workspace.folder
    video = reviewed.source.path
    reviewed.close()
    lock = workspace / ".lock"
    lock.unlink(missing_ok=True)
    if kind == "symlink":
        lock.symlink_to(victim / "notes.txt")
    elif kind == "hardlink":
        os.link(victim / "notes.txt", lock)
    else:
        lock.mkdir()
    with pytest.raises(VivimError) as caught:
        VideoDocument.open(video, workspace)
    assert str(lock) in str(caught.value)
    with pytest.raises(VivimError, match=".lock"):
        VideoDocument.open_workspace(workspace)
    with VideoDocument.open_workspace(workspace, read_only=True) as doc:  # reading needs no lock
        assert doc.status(2) == FrameStatus.ACCEPTED


# frame records -----------------------------------------------------------------------------------------------
def test_stray_frame_records_are_ignored_reported_and_never_cost_a_mask(reviewed, tmp_path):
    workspace = reviewed.workspace.folder
    video = reviewed.source.path
    accepted = reviewed.mask(2).copy()
    reviewed.close()
    frames = workspace / "frames"
    canonical = json.loads((frames / "000002.json").read_text())
    stray = dict(canonical, status="unreviewed", mask=None, mask_origin=None, area=0)
    for name in ("0000002.json", "00000002.json", "000000002.json"):  # all read as "frame 2" before
        (frames / name).write_text(json.dumps(stray))
    masks_before = sorted(p.name for p in (workspace / "masks").iterdir())
    for _ in range(3):
        with VideoDocument.open(video, workspace) as doc:
            assert doc.status(2) == FrameStatus.ACCEPTED and np.array_equal(doc.mask(2), accepted)
            assert any("0000002.json" in w and "ignored" in w for w in doc.warnings), doc.warnings
    assert sorted(p.name for p in (workspace / "masks").iterdir()) == masks_before
    assert (frames / "0000002.json").is_file()  # left alone


def test_stray_blob_names_are_left_alone(reviewed, tmp_path):
    workspace = reviewed.workspace.folder
    video = reviewed.source.path
    reviewed.close()
    mask = next((workspace / "masks").glob("000002-*.png"))
    stray = workspace / "masks" / f"0{mask.name}"
    stray.write_bytes(mask.read_bytes())
    with VideoDocument.open(video, workspace) as doc:
        assert doc.status(2) == FrameStatus.ACCEPTED
    assert stray.is_file() and mask.is_file()


def test_workspace_sub_folder_that_is_a_symbolic_link_is_refused(reviewed, tmp_path, victim):
    import shutil

    workspace = reviewed.workspace.folder
    video = reviewed.source.path
    reviewed.close()
    shutil.copytree(workspace / "probabilities", victim.parent / "probs-elsewhere")
    shutil.rmtree(workspace / "probabilities")
    (workspace / "probabilities").symlink_to(victim.parent / "probs-elsewhere")
    with pytest.raises(VivimError, match="probabilities.*symbolic link"):
        VideoDocument.open(video, workspace)
