"""Exports land where the user chose and on nothing else: two videos never share an id in one output folder
(names in any script stay distinguishable), split and id names cannot climb out of --out, an export never
lands on or inside its own video, dataset or workspace, and `propose --workspace-root` names stay inside
the root."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hardening_support import assert_user_error, make_frames, run_cli, snapshot, write_images

from vivim_core.data.layouts import find_vtus_videos
from vivim_core.data.readers import read_mask
from vivim_core.data.synthetic import write_vtus_dataset
from vivim_core.file_safety import UnsafePathError
from vivim_studio.cli import main as studio
from vivim_studio.document import ExportError, VideoDocument
from vivim_studio.document.export import ExportOptions, export_document
from vivim_studio.document.export_targets import safe_video_id


def reviewed_video(folder, seed, workspace):
    """A frame folder with frames 0 and 2 accepted (a mask that differs per seed) and its workspace."""
    frames = make_frames(4, seed=seed)[0]
    write_images(folder, frames)
    with VideoDocument.open(folder, workspace) as doc:
        for index in (0, 2):
            mask = np.zeros((48, 64), bool)
            mask[10 + seed: 20 + seed, 10:30] = True
            doc.set_mask(index, mask)
            doc.accept(index)
    return folder


# ids ---------------------------------------------------------------------------------------------------------
def test_ids_keep_letters_of_every_script_and_fall_back_to_a_hash():
    digest = "ab12cd34" + "0" * 56
    assert safe_video_id("甲状腺") == "甲状腺" and safe_video_id("Щитовидка 3") == "Щитовидка_3"
    assert safe_video_id("case 7/a") == "case_7_a" and safe_video_id("0002") == "0002"  # as before
    assert safe_video_id("..", digest) == "video-ab12cd34" and safe_video_id("«»", digest) == "video-ab12cd34"
    assert safe_video_id("con", digest) == "con-ab12cd34"  # a Windows device name
    assert safe_video_id("a\u202eb") == "a_b"  # a right-to-left override is not a letter
    long = safe_video_id("甲" * 300, digest)
    assert len(long.encode()) <= 160 and long.endswith("-ab12cd34")


@pytest.mark.parametrize("names", [("clip", "clip"), ("甲状腺", "乳腺"), ("«»", "…")],
                         ids=["same name", "non-Latin names", "nothing usable"])
def test_two_videos_never_replace_each_others_export(tmp_path, names, capsys):
    out = tmp_path / "out"
    exported = []
    for number, name in enumerate(names):
        video = reviewed_video(tmp_path / f"site{number}" / name, number, tmp_path / f"ws{number}")
        code, text, err = run_cli(studio, ["export", tmp_path / f"ws{number}", "--out", out], capsys)
        assert code == 0, err
        manifest = json.loads(next(iter(sorted((out / "manifests" / "Train").glob("*.json"),
                                               key=lambda p: p.stat().st_mtime_ns, reverse=True))).read_text())
        exported.append((manifest["video_id"], video))
    ids = [video_id for video_id, _ in exported]
    assert len(set(ids)) == 2, ids
    videos = {v.video_id: v for v in find_vtus_videos(out, "Train")}
    for number, (video_id, _) in enumerate(exported):  # each export still holds its own masks
        mask = read_mask(videos[video_id].mask_paths[0])
        assert mask[10 + number, 10] and not mask[9 + number, 10]
    if names[0] != "«»":
        assert ids[0] == safe_video_id(names[0])  # a readable name stays readable


def test_re_export_of_the_same_video_replaces_its_own_export(tmp_path):
    video = reviewed_video(tmp_path / "clip", 0, tmp_path / "ws")
    out = tmp_path / "out"
    with VideoDocument.open(video, tmp_path / "ws") as doc:
        first = export_document(doc, out)
        doc.set_mask(0, np.ones((48, 64), bool))
        second = export_document(doc, out)
    assert first.manifest["video_id"] == second.manifest["video_id"] == "clip"
    assert sorted(p.name for p in (out / "Train_GT" / "clip").iterdir()) == ["0001.png", "0003.png"]
    assert read_mask(out / "Train_GT" / "clip" / "0001.png").all()


def test_a_chosen_id_of_another_video_is_refused(tmp_path, capsys):
    reviewed_video(tmp_path / "a" / "clip", 0, tmp_path / "wsa")
    reviewed_video(tmp_path / "b" / "clip", 1, tmp_path / "wsb")
    out = tmp_path / "out"
    assert run_cli(studio, ["export", tmp_path / "wsa", "--out", out], capsys)[0] == 0
    before = snapshot(out)
    code, _, err = run_cli(studio, ["export", tmp_path / "wsb", "--out", out, "--video-id", "clip"], capsys)
    assert_user_error(code, err, "another video", "--video-id")
    assert snapshot(out) == before


def test_an_existing_folder_not_written_by_this_video_is_never_replaced(tmp_path):
    """A dataset's own case of the same name (no manifest): the export takes another id, the case stays."""
    dataset = write_vtus_dataset(tmp_path / "dataset", num_videos=1, frames_per_video=3, size=(48, 64))
    case = find_vtus_videos(dataset, "Train")[0].video_id
    video = reviewed_video(tmp_path / "mine" / case, 0, tmp_path / "ws")
    before = snapshot(dataset / "Train_GT")
    with VideoDocument.open(video, tmp_path / "ws") as doc:
        result = export_document(doc, dataset)
        assert result.manifest["video_id"] != case
        with pytest.raises(ExportError, match="was not written by an export of this video"):
            export_document(doc, dataset, ExportOptions(video_id=case))
    assert {k: v for k, v in snapshot(dataset / "Train_GT").items() if k.split("/")[0] == case} == before


# names that would leave --out --------------------------------------------------------------------------------
@pytest.mark.parametrize("flag,value", [("--split", "../escaped"), ("--split", "/tmp/abs"), ("--split", "a/b"),
                                        ("--split", ".."), ("--video-id", "../escaped"), ("--video-id", "a/b"),
                                        ("--video-id", ".."), ("--video-id", "nul")])
def test_split_and_video_id_cannot_leave_the_output(tmp_path, capsys, flag, value):
    reviewed_video(tmp_path / "clip", 0, tmp_path / "ws")
    sandbox = tmp_path / "sandbox"
    out = sandbox / "inner" / "out"
    out.mkdir(parents=True)
    before = snapshot(tmp_path)
    code, _, err = run_cli(studio, ["export", tmp_path / "ws", "--out", out, flag, value], capsys)
    assert_user_error(code, err, flag, repr(value))
    assert snapshot(tmp_path) == before


# outputs on inputs -------------------------------------------------------------------------------------------
def test_exporting_a_case_back_into_its_dataset_is_refused(tmp_path, capsys):
    dataset = write_vtus_dataset(tmp_path / "dataset", num_videos=1, frames_per_video=3, size=(48, 64))
    case = dataset / "Train" / find_vtus_videos(dataset, "Train")[0].video_id
    with VideoDocument.open(case) as doc:  # the workspace goes to dataset/Train.vivim/<case>
        workspace = doc.workspace.folder
        doc.accept(0)
    before = snapshot(tmp_path)
    for out in (dataset, dataset / "Train", case, case / "sub", workspace, workspace / "x", tmp_path):
        code, _, err = run_cli(studio, ["export", workspace, "--out", out], capsys)
        assert_user_error(code, err, str(out), "overlaps the input", "choose a separate output folder")
        assert snapshot(tmp_path) == before
    code, _, err = run_cli(studio, ["export", workspace, "--out", tmp_path / "apart"], capsys)
    assert code == 0, err


def test_exporting_next_to_a_video_file_is_fine_but_not_onto_it(tmp_path, capsys):
    from hardening_support import write_video

    (tmp_path / "media").mkdir()
    video = write_video(tmp_path / "media" / "clip.avi", make_frames(4)[0])
    with VideoDocument.open(video) as doc:
        doc.accept(1)
    workspace = tmp_path / "media" / "clip.avi.vivim"
    code, _, err = run_cli(studio, ["export", workspace, "--out", tmp_path / "media"], capsys)
    assert_user_error(code, err, "overlaps the input")
    code, _, err = run_cli(studio, ["export", workspace, "--out", video], capsys)
    assert_user_error(code, err, "overlaps the input")
    assert run_cli(studio, ["export", workspace, "--out", tmp_path / "media" / "export"], capsys)[0] == 0


def test_default_export_folder_is_apart_from_the_dataset(tmp_path):
    from vivim_studio.document.export_targets import default_export_folder

    dataset = write_vtus_dataset(tmp_path / "dataset", num_videos=1, frames_per_video=3, size=(48, 64))
    case = dataset / "Train" / find_vtus_videos(dataset, "Train")[0].video_id
    with VideoDocument.open(case, tmp_path / "ws") as doc:
        assert default_export_folder(doc) == tmp_path / "vivim-export"
        assert default_export_folder(doc, dataset / "exports") == tmp_path / "vivim-export"
        assert default_export_folder(doc, tmp_path / "mine") == tmp_path / "mine"


# propose --workspace-root ------------------------------------------------------------------------------------
def test_workspace_root_names_stay_inside_the_root(tmp_path):
    from vivim_studio.cli import _workspace_for

    root = tmp_path / "root"
    for name in ("..", "«»", "con", "甲状腺", "a b"):
        folder = write_images(tmp_path / "in" / name, make_frames(2)[0]) if name != ".." else tmp_path / "in" / ".."
        target = _workspace_for(folder, root)
        assert target.parent == root and target.name.endswith(".vivim"), target
    assert _workspace_for(tmp_path / "in" / "甲状腺", root).name == "甲状腺.vivim"
    assert _workspace_for(tmp_path / "in" / "«»", root) != _workspace_for(tmp_path / "in" / "…", root)
    root.mkdir()
    (root / "a_b.vivim").symlink_to(tmp_path / "elsewhere")  # a link planted in the root is not followed
    with pytest.raises(UnsafePathError, match="outside"):
        _workspace_for(tmp_path / "in" / "a b", root)
