"""A label export is ground truth: by default it holds only the frames a human edited or accepted. The model's
unreviewed proposals go out only when asked for by name (`--include-unreviewed-proposals`, selection "all"),
and the manifest says, frame by frame, what was reviewed and where each mask came from."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vivim_studio.cli import main as studio
from vivim_studio.document import ExportError, FrameStatus
from vivim_studio.document.export import ExportOptions, export_document


@pytest.fixture
def proposed(document, frames_and_masks):
    """Every frame proposed by a model; frame 3 corrected by hand, frame 5 accepted."""
    _, truth = frames_and_masks
    for i in range(document.num_frames):
        document.set_proposal(i, truth[i].astype(np.float32) * 0.9, model="7" * 64)
    document.paint_stroke(3, [(5, 5)], 2)
    document.accept(5)
    return document


def test_default_export_holds_only_reviewed_frames(proposed, tmp_path):
    result = export_document(proposed, tmp_path / "out")
    assert result.frames == [3, 5]
    assert sorted(p.name for p in (tmp_path / "out" / "Train_GT" / "frames").iterdir()) == ["0004.png", "0006.png"]
    manifest = result.manifest
    assert manifest["selection"] == "reviewed" and not manifest["includes_unreviewed_proposals"]
    assert manifest["reviewed_frames"] == [3, 5] and manifest["unreviewed_frames"] == []
    assert [(f["index"], f["status"], f["reviewed"], f["mask_origin"]) for f in manifest["frames"]] == [
        (3, "edited", True, "human"), (5, "accepted", True, "model:" + "7" * 16)]


def test_unreviewed_proposals_only_when_asked_and_flagged_in_the_manifest(proposed, tmp_path, capsys):
    workspace = proposed.workspace.folder
    proposed.close()
    assert studio(["export", str(workspace), "--out", str(tmp_path / "default")]) == 0
    assert len(list((tmp_path / "default" / "Train_GT" / "frames").iterdir())) == 2
    capsys.readouterr()
    assert studio(["export", str(workspace), "--out", str(tmp_path / "all"), "--include-unreviewed-proposals"]) == 0
    err = capsys.readouterr().err
    assert "10 exported frame(s) are unreviewed model proposals, not ground truth" in err
    manifest = json.loads((tmp_path / "all" / "manifests" / "Train" / "frames.json").read_text())
    assert manifest["selection"] == "all" and manifest["includes_unreviewed_proposals"]
    assert manifest["reviewed_frames"] == [3, 5] and len(manifest["unreviewed_frames"]) == 10
    assert {f["status"] for f in manifest["frames"] if not f["reviewed"]} == {"proposed"}
    assert len(list((tmp_path / "all" / "Train_GT" / "frames").iterdir())) == 12
    with pytest.raises(SystemExit):  # one selection at a time
        studio(["export", str(workspace), "--out", str(tmp_path / "x"), "--only-accepted",
                "--include-unreviewed-proposals"])


def test_nothing_reviewed_says_how_to_review_or_include_proposals(document, frames_and_masks, tmp_path, capsys):
    document.set_proposal(0, frames_and_masks[1][0].astype(np.float32), model="7" * 64)
    assert document.status(0) == FrameStatus.PROPOSED
    with pytest.raises(ExportError, match="no frame of frames was edited or accepted by a human yet.*"
                                          "--include-unreviewed-proposals"):
        export_document(document, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    result = export_document(document, tmp_path / "out", ExportOptions(selection="all"))
    assert result.manifest["includes_unreviewed_proposals"]
