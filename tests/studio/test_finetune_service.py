"""The fine-tune job of the Studio (`services.finetune`), without Qt: it exports the corrected frames in the VTUS
layout and fine-tunes the checkpoint on them, reporting progress and honouring cancel."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from vivim_core.errors import VivimError
from vivim_studio.document import FrameStatus, VideoDocument
from vivim_studio.services.finetune import FinetuneError, finetune_on_corrections

# as small as the trainer allows, so that the test checks the plumbing in seconds on 2 CPU cores
TINY = dict(max_steps=1, batch_size=1, clip_length=2, clips_per_video=1, size=(32, 32), affine_weight=0.0,
            eval_every=1)


@pytest.fixture
def corrected_document(tmp_path):
    import vivim_core
    from vivim_core.data.synthetic import make_ultrasound_video, write_video_file

    frames, masks = make_ultrasound_video(num_frames=6, height=32, width=32, seed=1)
    video = write_video_file(tmp_path / "clip.avi", frames, fps=10)
    checkpoint = tmp_path / "start.safetensors"
    vivim_core.save_checkpoint(vivim_core.build_model("vivim-tiny"), checkpoint)
    document = VideoDocument.open(video, tmp_path / "ws")
    yield document, masks, checkpoint
    document.close()


def test_finetune_exports_corrections_and_returns_a_loadable_checkpoint(corrected_document, tmp_path):
    import vivim_core

    document, masks, checkpoint = corrected_document
    document.set_mask(1, masks[1])
    document.set_mask(2, masks[2])
    document.accept(2)
    document.set_proposal(4, np.full((32, 32), 0.9, np.float32), model="0" * 64)  # never reviewed: not used
    reports = []
    result = finetune_on_corrections(document, checkpoint, tmp_path / "run", device="cpu",
                                     progress=lambda done, total: reports.append((done, total)), **TINY)
    assert result.frames_used == [1, 2] and not result.cancelled and result.steps == 1
    assert sorted(p.name for p in (result.data_dir / "Train_GT").rglob("*.png")) == ["0002.png", "0003.png"]
    manifest = json.loads((result.data_dir / "manifests" / "Train" / "clip.json").read_text())
    assert manifest["unreviewed_frames"] == [] and not manifest["includes_unreviewed_proposals"]
    assert result.checkpoint_path.is_file() and reports[-1] == (1, 1)
    vivim_core.load_model(result.checkpoint_path)
    assert document.status(4) == FrameStatus.PROPOSED  # the masks are only read
    # too few corrections to hold some out: all train, and the quality is not made up
    assert result.trained_frames == [1, 2] and result.heldout_frames == [] and result.heldout_dice is None
    assert "cannot be measured yet" in result.quality


def test_finetune_refuses_without_corrections_and_stops_when_cancelled(corrected_document, tmp_path):
    document, masks, checkpoint = corrected_document
    with pytest.raises(FinetuneError, match="accept them"):
        finetune_on_corrections(document, checkpoint, tmp_path / "run0", device="cpu", **TINY)
    document.set_mask(0, masks[0])
    cancel = threading.Event()
    cancel.set()  # before anything: nothing is trained
    result = finetune_on_corrections(document, checkpoint, tmp_path / "run1", device="cpu", cancel=cancel, **TINY)
    assert result.cancelled and result.checkpoint_path is None and result.steps == 0
    cancel.clear()  # during training: stops after the current step, keeps the best checkpoint so far
    result = finetune_on_corrections(document, checkpoint, tmp_path / "run2", device="cpu", cancel=cancel,
                                     progress=lambda done, total: cancel.set(), **dict(TINY, max_steps=50))
    assert result.cancelled and result.stop_reason == "cancelled"
    with pytest.raises(FinetuneError, match="not empty"):
        finetune_on_corrections(document, checkpoint, tmp_path / "run2", device="cpu", **TINY)


def test_a_bad_checkpoint_is_refused_before_anything_is_written(corrected_document, tmp_path):
    document, masks, _ = corrected_document
    document.set_mask(0, masks[0])
    not_a_checkpoint = tmp_path / "notes.safetensors"
    not_a_checkpoint.write_text("these are my notes, not weights")
    with pytest.raises(VivimError, match="notes.safetensors"):
        finetune_on_corrections(document, not_a_checkpoint, tmp_path / "run", device="cpu", **TINY)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_quality_is_measured_on_held_out_frames_and_the_model_becomes_the_workspaces(corrected_document, tmp_path):
    from vivim_core.engine.checkpoint import checkpoint_sha256
    from vivim_studio.services.checkpoint_header import read_metadata
    from vivim_studio.services.finetune import measure_heldout

    document, masks, checkpoint = corrected_document
    for index in range(5):
        document.set_mask(index, masks[index])
    result = finetune_on_corrections(document, checkpoint, tmp_path / "run", device="cpu", **TINY)
    assert result.trained_frames == [0, 1, 2, 4] and result.heldout_frames == [3]  # every 4th is held out
    exported = sorted(p.name for p in (result.data_dir / "Train_GT").rglob("*.png"))
    assert exported == ["0001.png", "0002.png", "0003.png", "0005.png"]  # the held-out frame was never trained on
    assert 0.0 <= result.heldout_dice <= 1.0 and "on 1 corrected frame(s) it did not train on" in result.quality
    import vivim_core

    best = vivim_core.load_model(result.checkpoint_path)
    assert result.heldout_dice == measure_heldout(best, result.checkpoint_path, document, [3])
    # the best checkpoint is now the workspace's model, with its lineage and held-out quality
    assert document.model["sha256"] == result.workspace_model_sha256
    provenance = read_metadata(document.workspace_model_path())["provenance"]
    assert provenance["kind"] == "finetuned" and provenance["parent_sha256"] == checkpoint_sha256(checkpoint)
    assert result.start_checkpoint_sha256 == provenance["parent_sha256"]
    assert provenance["heldout_frames"] == [3] and provenance["heldout_dice"] == result.heldout_dice


def test_measure_heldout_scores_the_proposal_of_each_frame_against_its_human_mask(corrected_document):
    """A model whose every output is "lesion" (its classifier a constant +10) scores, on each frame, the Dice of a
    full mask with the human one."""
    import torch
    import vivim_core

    from vivim_studio.document.mask_ops import dice
    from vivim_studio.services.finetune import measure_heldout

    document, masks, checkpoint = corrected_document
    for index in (1, 4):
        document.set_mask(index, masks[index])
    model = vivim_core.load_model(checkpoint)
    with torch.no_grad():
        model.decoder.classifier.weight.zero_()
        model.decoder.classifier.bias.fill_(10.0)
    full = np.ones(document.frame_size, bool)
    expected = (dice(full, masks[1]) + dice(full, masks[4])) / 2
    assert measure_heldout(model, checkpoint, document, [1, 4]) == pytest.approx(expected)

