"""The source identity covers the whole content: a frame changed to a file of the same size is noticed (the
workspace refuses the changed video), and workspaces made with the previous, sampled identity still open,
are upgraded once and keep every mask."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from vivim_studio.document import FrameStatus, VideoDocument, WorkspaceError, open_source
from vivim_studio.document.export import export_document

from .helpers import make_frames, write_frame_folder, write_video


def flip_a_byte(path, position: float) -> None:
    """Change one byte at `position` (0..1) of the file, keeping its size."""
    data = bytearray(path.read_bytes())
    offset = int(len(data) * position)
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_same_size_change_to_a_frame_is_noticed(tmp_path, frames_and_masks):
    folder = write_frame_folder(tmp_path / "frames", frames_and_masks[0], suffix=".bmp")  # uncompressed
    with open_source(folder) as source:
        before, legacy = source.identity, source.legacy_digest()
    changed = folder / "4.bmp"  # neither the first, middle nor last frame: the old identity never read it
    size = changed.stat().st_size
    flip_a_byte(changed, 0.6)
    assert changed.stat().st_size == size
    with open_source(folder) as source:
        assert source.legacy_digest() == legacy  # what the previous identity missed
        assert source.identity.digest != before.digest and source.identity.version == 2


def test_a_workspace_refuses_its_video_changed_in_place(tmp_path, frames_and_masks):
    folder = write_frame_folder(tmp_path / "frames", frames_and_masks[0], suffix=".bmp")
    with VideoDocument.open(folder, tmp_path / "ws") as doc:
        doc.set_mask(1, frames_and_masks[1][1])
        doc.accept(1)
    flip_a_byte(folder / "7.bmp", 0.5)
    with pytest.raises(WorkspaceError, match="belongs to another video"):
        VideoDocument.open(folder, tmp_path / "ws")
    with pytest.raises(WorkspaceError, match="is not this workspace's video"):
        VideoDocument.open_workspace(tmp_path / "ws")


def test_a_same_size_change_inside_a_video_file_is_noticed(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (40, 96, 128, 3), dtype=np.uint8)  # noise: a file well over 3 x 64 KB
    video = write_video(tmp_path / "noise.avi", frames, fourcc="MJPG")
    assert video.stat().st_size > 4 * 64 * 1024
    with open_source(video) as source:
        before, legacy = source.identity.digest, source.legacy_digest()
    flip_a_byte(video, 0.3)  # between the old samples (start, middle, end)
    with open_source(video) as source:
        assert source.legacy_digest() == legacy and source.identity.digest != before


def make_legacy(workspace, source) -> str:
    """Rewrite a workspace's workspace.json as the previous version wrote it (format 1, sampled identity)."""
    path = workspace / "workspace.json"
    data = json.loads(path.read_text())
    data["format_version"] = 1
    identity = data["source"]["identity"]
    identity.pop("version")
    identity["digest"] = source.legacy_digest()
    path.write_text(json.dumps(data, indent=1))
    return identity["digest"]


def test_old_workspaces_open_and_are_upgraded_once_without_losing_anything(tmp_path, frames_and_masks, capsys):
    from vivim_studio.cli import main as studio

    folder = write_frame_folder(tmp_path / "frames", frames_and_masks[0])
    truth = frames_and_masks[1]
    with VideoDocument.open(folder, tmp_path / "ws") as doc:
        doc.set_mask(2, truth[2])
        doc.accept(2)
        doc.set_mask(6, truth[6])
        current = doc.source.identity.digest
        old = make_legacy(tmp_path / "ws", doc.source)
        export_document(doc, tmp_path / "out")  # an export made "before the upgrade" names the old digest
    manifest_path = tmp_path / "out" / "manifests" / "Train" / "frames.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["source"]["identity"] = old
    manifest_path.write_text(json.dumps(manifest))
    legacy_file = (tmp_path / "ws" / "workspace.json").read_text()

    # read-only (export): accepted, nothing rewritten; the old export is recognised as this video's
    assert studio(["export", str(tmp_path / "ws"), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "ws" / "workspace.json").read_text() == legacy_file
    assert sorted(p.name for p in (tmp_path / "out" / "Train_GT").iterdir()) == ["frames"]  # replaced, same id
    assert json.loads(manifest_path.read_text())["source"]["identity"] == current

    # writable: upgraded in place, once; every mask and status kept
    with VideoDocument.open(folder, tmp_path / "ws") as doc:
        assert doc.status(2) == FrameStatus.ACCEPTED and np.array_equal(doc.mask(2), truth[2])
        assert doc.status(6) == FrameStatus.EDITED and np.array_equal(doc.mask(6), truth[6])
    data = json.loads((tmp_path / "ws" / "workspace.json").read_text())
    assert data["format_version"] == 3 and data["source"]["identity"]["version"] == 2
    assert data["source"]["identity"]["digest"] == current and data["source"]["previous_identities"] == [old]
    upgraded = (tmp_path / "ws" / "workspace.json").read_text()
    with VideoDocument.open_workspace(tmp_path / "ws") as doc:
        assert doc.status(2) == FrameStatus.ACCEPTED
    assert (tmp_path / "ws" / "workspace.json").read_text() == upgraded


def test_an_old_workspace_of_another_video_is_still_refused(tmp_path, frames_and_masks):
    folder = write_frame_folder(tmp_path / "frames", frames_and_masks[0])
    with VideoDocument.open(folder, tmp_path / "ws") as doc:
        make_legacy(tmp_path / "ws", doc.source)
    image = cv2.imread(str(folder / "1.png"))
    image[0, 0] = 255 - image[0, 0]
    cv2.imwrite(str(folder / "1.png"), image)  # the first frame: the old identity read all of it
    with pytest.raises(WorkspaceError, match="belongs to another video"):
        VideoDocument.open(folder, tmp_path / "ws")
    assert json.loads((tmp_path / "ws" / "workspace.json").read_text())["format_version"] == 1  # untouched
