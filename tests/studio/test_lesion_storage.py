"""Storage of lesion label maps, and workspaces of the previous format (2) opening without loss.

`fixtures/format2` holds six 32x24 frames and their workspace as the format-2 code wrote it: a proposal with its
probability map (frame 1), a proposal a human painted over (2), an accepted proposal (3), an accepted empty
frame (4), a frame drawn by clicks (5), an untouched frame (6), and a state with a checkpoint.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from vivim_studio.document import FrameStatus, VideoDocument, WorkspaceError

FIXTURE = Path(__file__).parent / "fixtures" / "format2"


@pytest.fixture
def format2(tmp_path):
    """A copy of the format-2 workspace and its frames: (frames folder, workspace folder)."""
    shutil.copytree(FIXTURE, tmp_path / "format2")
    return tmp_path / "format2" / "frames", tmp_path / "format2" / "clip.vivim"


def written_by_format2(workspace: Path) -> dict[int, dict]:
    """What the format-2 workspace holds, read with plain JSON and OpenCV (not our reader)."""
    frames = {}
    for path in sorted((workspace / "frames").glob("*.json")):
        data = json.loads(path.read_text())
        mask = None
        if data["mask"]:
            mask = cv2.imread(str(workspace / "masks" / data["mask"]), cv2.IMREAD_GRAYSCALE) > 127
        probability = None
        if data["probability"]:
            probability = cv2.imread(str(workspace / "probabilities" / data["probability"]), cv2.IMREAD_UNCHANGED)
        frames[data["frame"]] = dict(data, mask_array=mask, probability_array=probability)
    return frames


def check_same_as_format2(doc, expected: dict[int, dict]) -> None:
    assert doc.num_frames == 6 and doc.frame_size == (24, 32)
    for index in range(6):
        if index not in expected:
            assert doc.status(index) == FrameStatus.UNREVIEWED and not doc.mask(index).any()
            continue
        old, record = expected[index], doc.record(index)
        mask = old["mask_array"] if old["mask_array"] is not None else np.zeros((24, 32), bool)
        assert np.array_equal(doc.mask(index), mask) and np.array_equal(doc.labels(index), mask.view(np.uint8))
        for key in ("mask_origin", "model", "threshold", "area", "confidence", "updated"):
            assert getattr(record, key) == old[key], (index, key)
        assert record.status.value == old["status"]
        assert record.lesion_clicks == tuple((x, y, p, 1) for x, y, p in old["clicks"])  # the clicks drew lesion 1
        assert doc.clicks(index, 1) == tuple(tuple(c) for c in old["clicks"])
        if mask.any():  # the mask is lesion 1, with the frame's status and origin
            assert doc.lesions(index) == [1]
            lesion = doc.lesion_record(index, 1)
            assert (lesion.status.value, lesion.origin, lesion.area) == (old["status"], old["mask_origin"], old["area"])
        else:
            assert doc.lesions(index) == []
        if old["probability_array"] is not None:
            stored = doc.probability(index)
            assert stored is not None and np.array_equal(doc.masks.probability(index), old["probability_array"])
        else:
            assert doc.probability(index) is None
    assert doc.current_frame == 4 and doc.proposal_threshold == 0.5
    assert doc.checkpoint == {"name": "demo.safetensors", "sha256": "ab" * 32}


def test_a_format2_workspace_opens_and_migrates_without_loss(format2):
    frames, workspace = format2
    expected = written_by_format2(workspace)
    assert set(expected) == {0, 1, 2, 3, 4} and expected[3]["status"] == "accepted" and not expected[3]["mask"]
    with VideoDocument.open_workspace(workspace, read_only=True) as doc:  # read-only: read, nothing written
        check_same_as_format2(doc, expected)
    assert json.loads((workspace / "workspace.json").read_text())["format_version"] == 2
    with VideoDocument.open(frames, workspace) as doc:  # writable: marked format 3, records read as they are
        check_same_as_format2(doc, expected)
    assert json.loads((workspace / "workspace.json").read_text())["format_version"] == 3
    with VideoDocument.open(frames, workspace) as doc:
        check_same_as_format2(doc, expected)
        doc.active_lesion = 2
        doc.paint_stroke(4, [(25, 5)], 2)  # a second lesion on a format-2 frame: stored as an 8-bit label map
        assert doc.lesions(4) == [1, 2] and doc.lesion_record(4, 1).origin == "prompt:" + "cd" * 8
        labels = doc.labels(4).copy()
    record = json.loads((workspace / "frames" / "000004.json").read_text())
    assert [x["id"] for x in record["lesions"]] == [1, 2] and record["clicks"][0] == [16, 12, True, 1]
    stored = cv2.imread(str(workspace / "masks" / record["mask"]), cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.uint8 and np.array_equal(stored, labels)
    with VideoDocument.open(frames, workspace) as doc:
        assert np.array_equal(doc.labels(4), labels) and doc.status(1) == FrameStatus.EDITED


def test_an_older_reader_is_refused_a_format3_workspace_and_a_newer_one_is_refused_here(format2):
    frames, workspace = format2
    VideoDocument.open(frames, workspace).close()
    data = json.loads((workspace / "workspace.json").read_text())
    assert data["format_version"] == 3
    data["format_version"] = 4
    (workspace / "workspace.json").write_text(json.dumps(data))
    with pytest.raises(WorkspaceError, match="format version 4.*update Vivim Studio"):
        VideoDocument.open(frames, workspace)


def test_one_bit_files_for_lesion_1_and_label_files_otherwise(frame_folder, tmp_path):
    with VideoDocument.open(frame_folder, tmp_path / "ws") as doc:
        doc.paint_stroke(0, [(10, 10)], 4)
        doc.active_lesion = 3
        doc.paint_stroke(1, [(30, 20)], 5)  # lesion 3 alone: not lesion 1, so 8-bit
        doc.active_lesion = 1
        doc.paint_stroke(1, [(10, 10)], 4)
    depths = {}
    for index in (0, 1):
        name = json.loads((tmp_path / "ws" / "frames" / f"{index:06d}.json").read_text())["mask"]
        depths[index] = (tmp_path / "ws" / "masks" / name).read_bytes()[24]
    assert depths == {0: 1, 1: 8}


def test_hand_edited_lesion_records_are_clear_errors(frame_folder, tmp_path):
    with VideoDocument.open(frame_folder, tmp_path / "ws") as doc:
        doc.paint_stroke(0, [(10, 10)], 4)
    path = tmp_path / "ws" / "frames" / "000000.json"
    data = json.loads(path.read_text())
    for bad, message in (([{"id": 0, "status": "edited"}], "lesion id must be an integer 1..255"),
                         ([{"id": 2}, {"id": 1}], "by increasing id"),
                         ([{"id": 1, "box": [1, 2]}], "box must be")):
        path.write_text(json.dumps(dict(data, lesions=bad)))
        with pytest.raises(WorkspaceError, match=message):
            VideoDocument.open(frame_folder, tmp_path / "ws")
