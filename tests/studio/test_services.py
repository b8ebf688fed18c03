"""The proposal service and the headless CLI (`vivim-studio propose` / `export`), on a tiny random model."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from vivim_studio.document import FrameStatus, VideoDocument, open_source
from vivim_studio.services import CheckpointNotFound, InferenceService, find_default_checkpoint
from vivim_studio.services import default_checkpoint as default_checkpoint_module

from .helpers import make_frames, write_frame_folder

SIZE = (64, 64)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A very small random Vivim (fast on 2 CPU cores), saved as a real checkpoint."""
    import torch
    import vivim_core

    torch.manual_seed(0)
    model = vivim_core.build_model("vivim-tiny", embed_dims=(8, 16, 32, 64), transformer_depths=(1, 1, 1, 1),
                                   temporal_depths=(1, 0, 0, 1), num_heads=(1, 1, 1, 1), decoder_dim=32)
    return vivim_core.save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


@pytest.fixture
def video(tmp_path) -> Path:
    return write_frame_folder(tmp_path / "video", make_frames(8, 64, 64, seed=3)[0])


def reference_masks(checkpoint: Path, video: Path, threshold: float = 0.5) -> np.ndarray:
    """What `vivim-core predict` computes: iter_predict over the frames, thresholded."""
    from vivim_core import load_model
    from vivim_core.engine.predict import predict_video

    with open_source(video) as source:
        frames = [f for _, f in source.iter_frames()]
    return predict_video(load_model(checkpoint), frames, size=SIZE) >= threshold


def test_proposals_equal_vivim_core_prediction_and_keep_human_work(checkpoint, video, tmp_path):
    expected = reference_masks(checkpoint, video)
    with VideoDocument.open(video, tmp_path / "ws") as doc:
        doc.paint_stroke(2, [(5, 5)], 3)
        doc.accept(5)
        calls = []
        service = InferenceService(checkpoint, "cpu", size=SIZE)
        result = service.propose(doc, progress=lambda done, total: calls.append((done, total)))
        assert (result.proposed, result.kept, result.cancelled, result.device) == (6, 2, False, "cpu")
        assert calls[-1] == (8, 8) and len(calls) == 8
        for i in range(8):
            if i in (2, 5):
                assert doc.status(i) in (FrameStatus.EDITED, FrameStatus.ACCEPTED) and doc.probability(i) is not None
            else:
                assert np.array_equal(doc.mask(i), expected[i]) and doc.status(i) == FrameStatus.PROPOSED
        assert doc.record(0).mask_origin == "model:" + result.checkpoint_sha256[:16]
        assert doc.checkpoint == {"sha256": result.checkpoint_sha256, "name": "tiny.safetensors"}
    with VideoDocument.open(video, tmp_path / "ws") as doc:  # saved
        assert np.array_equal(doc.mask(7), expected[7]) and doc.probability(7) is not None


def test_proposals_prepared_on_several_threads_are_written_in_frame_order(checkpoint, video, tmp_path, monkeypatch):
    """Maps are quantised and encoded on a pool (here 3 threads, as on a 4-core machine) while the model runs
    ahead; the document still receives frame 0, 1, 2, ... in order, and the masks equal the prediction."""
    import os

    from vivim_studio.services import inference

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(inference, "PREPARE_WORKERS", 3)
    expected = reference_masks(checkpoint, video)
    with VideoDocument.open(video, tmp_path / "ws") as doc:
        order = []
        set_proposal = doc.set_proposal
        monkeypatch.setattr(doc, "set_proposal",
                            lambda index, *a, **k: order.append(index) or set_proposal(index, *a, **k))
        result = InferenceService(checkpoint, "cpu", size=SIZE, batch_size=1).propose(doc)
        assert order == list(range(8)) and result.proposed == 8
        assert all(np.array_equal(doc.mask(i), expected[i]) for i in range(8))


def test_cancel_keeps_what_was_done_and_edits_can_continue_meanwhile(checkpoint, video, tmp_path):
    with VideoDocument.open(video, tmp_path / "ws") as doc:
        stop = threading.Event()
        service = InferenceService(checkpoint, "cpu", size=SIZE, batch_size=1)
        outcome = {}
        worker = threading.Thread(target=lambda: outcome.update(result=service.propose(
            doc, progress=lambda done, total: stop.set() if done >= 4 else None, cancel=stop)))
        worker.start()
        for k in range(20):  # the GUI thread keeps editing while the worker writes proposals
            doc.paint_stroke(7, [(k, k)], 2)
        worker.join(120)
        result = outcome["result"]
        assert result.cancelled and 4 <= result.done < 8
        assert doc.status(0) == FrameStatus.PROPOSED and doc.status(7) == FrameStatus.EDITED
        assert doc.frames_with_status(FrameStatus.UNREVIEWED)


def test_settings_default_to_what_the_checkpoint_was_trained_with(checkpoint, tmp_path):
    """A model trained at 64x64 with 3-frame clips proposes at that size and clip length unless told otherwise."""
    import vivim_core

    trained = vivim_core.save_checkpoint(vivim_core.load_model(checkpoint), tmp_path / "trained.safetensors",
                                         provenance={"train_size": [64, 96], "clip_length": 3})
    assert InferenceService(trained, "cpu").options == dict(clip_length=3, overlap=1, size=(64, 96), batch_size=4)
    assert InferenceService(trained, "cpu", size=(32, 32), clip_length=5).options["size"] == (32, 32)
    silent = InferenceService(checkpoint, "cpu").options  # no training record: the usual 256x256, 5 frames
    assert (silent["size"], silent["clip_length"], silent["overlap"]) == ((256, 256), 5, 2)


def test_default_checkpoint_discovery(tmp_path, monkeypatch, checkpoint):
    monkeypatch.delenv(default_checkpoint_module.ENV_VARIABLE, raising=False)
    monkeypatch.setattr(default_checkpoint_module, "resource_dirs", lambda: [tmp_path / "resources"])
    with pytest.raises(CheckpointNotFound, match="no checkpoint given.*--checkpoint PATH"):
        find_default_checkpoint()
    (tmp_path / "resources").mkdir()
    (tmp_path / "resources" / "affine_prior.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(CheckpointNotFound):
        find_default_checkpoint()  # other assets are not mistaken for a model
    import shutil
    shutil.copy(checkpoint, tmp_path / "resources" / "vivim-thyroid.safetensors")
    shutil.copy(checkpoint, tmp_path / "resources" / "vivim-polyp.safetensors")
    assert find_default_checkpoint("polyp").name == "vivim-polyp.safetensors"
    with pytest.raises(CheckpointNotFound, match="several"):
        find_default_checkpoint()
    monkeypatch.setenv(default_checkpoint_module.ENV_VARIABLE, str(checkpoint))
    assert find_default_checkpoint() == checkpoint


def test_cli_propose_then_export(checkpoint, tmp_path, capsys):
    from vivim_core.data.layouts import find_vtus_videos
    from vivim_studio.cli import main

    night = tmp_path / "night"
    night.mkdir()
    first = write_frame_folder(night / "a", make_frames(8, 64, 64, seed=3)[0])
    write_frame_folder(night / "b", make_frames(6, 64, 64, seed=4)[0])
    code = main(["propose", str(night), "--checkpoint", str(checkpoint), "--device", "cpu", "--size", "64x64"])
    assert code == 0, capsys.readouterr().err
    with VideoDocument.open(first) as doc:
        assert np.array_equal(np.stack([doc.mask(i) for i in range(8)]), reference_masks(checkpoint, first))
        doc.accept(3)
    assert main(["export", str(night / "a.vivim"), "--out", str(tmp_path / "out"), "--only-accepted"]) == 0
    videos = find_vtus_videos(tmp_path / "out", "Train")
    assert [(v.video_id, len(v)) for v in videos] == [("a", 1)]
    assert main(["export", str(night / "b"), "--format", "nifti", "--out", str(tmp_path / "nii"),
                 "--size", "32x16"]) == 2  # nothing reviewed: proposals are not ground truth
    assert "--include-unreviewed-proposals" in capsys.readouterr().err
    assert main(["export", str(night / "b"), "--format", "nifti", "--out", str(tmp_path / "nii"),
                 "--size", "32x16", "--include-unreviewed-proposals"]) == 0
    assert (tmp_path / "nii" / "b.nii.gz").is_file()


def test_cli_errors_are_one_clear_line(tmp_path, capsys, monkeypatch):
    from vivim_studio.cli import main

    monkeypatch.delenv(default_checkpoint_module.ENV_VARIABLE, raising=False)
    monkeypatch.setattr(default_checkpoint_module, "resource_dirs", lambda: [tmp_path / "none"])
    folder = write_frame_folder(tmp_path / "v", make_frames(2)[0])
    assert main(["propose", str(folder)]) == 2
    assert "error: no checkpoint given" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "missing: not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--format", "gif"])
    assert exit_info.value.code == 2


def test_cli_help_is_instant_and_imports_neither_torch_nor_qt():
    code = ("import sys, contextlib, io\nfrom vivim_studio.cli import main\n"
            "for argv in (['--help'], ['export', '--help'], ['propose', '--help']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        try: main(argv)\n"
            "        except SystemExit: pass\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6', 'pyqtgraph')]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
