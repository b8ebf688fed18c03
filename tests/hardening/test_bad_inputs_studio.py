"""Bad inputs through Vivim Studio's non-GUI layers: the document API (`VideoDocument.open`,
`open_workspace`, edits, `export_document`), the services and the headless verbs `vivim-studio propose|export`.

What the user must see: a `VivimError` subclass (or exit code 2 / 1 for a failed propose input, with one
`error:` line and no traceback) naming the file, the problem and the fix; nothing of their work lost; no
export left half-written; no workspace created for a video that cannot be opened."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest
from hardening_support import (MODEL_SIZE, assert_user_error, make_frames, run_cli, snapshot, write_dicom,
                               write_images, write_video)

from vivim_core.data.layouts import find_vtus_videos
from vivim_core.data.readers import read_mask
from vivim_core.data.synthetic import write_video_file, write_vtus_dataset
from vivim_core.errors import VivimError
from vivim_studio.cli import main as studio
from vivim_studio.document import EditError, FrameStatus, SourceError, VideoDocument
from vivim_studio.document.export import ExportOptions, export_document
from vivim_studio.services import InferenceService

SIZE_ARG = f"{MODEL_SIZE}x{MODEL_SIZE}"


def propose(inputs, checkpoint, capsys, *extra):
    return run_cli(studio, ["propose", *([inputs] if not isinstance(inputs, list) else inputs), "--checkpoint",
                            checkpoint, "--device", "cpu", "--size", SIZE_ARG, *extra], capsys)


def export(workspace, out, capsys, *extra):
    return run_cli(studio, ["export", workspace, "--out", out, *extra], capsys)


def workspace_beside(path):
    return path.with_name(path.name + ".vivim")


# sources that cannot be opened ------------------------------------------------------------------------------
def bad_sources(tmp_path):
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    full = write_video(tmp_path / "full.mp4", make_frames(12)[0], fourcc="mp4v")
    cut = tmp_path / "cut.mp4"  # half an MP4: its index (moov) is at the end, so nothing decodes
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    text = tmp_path / "notes.avi"
    text.write_text("not a video\n" * 100)
    other = tmp_path / "scan.xyz"
    other.write_bytes(b"\x00binary")
    nopix = write_dicom(tmp_path / "report.dcm", None)
    return {zero: "empty (0 bytes)", cut: "OpenCV cannot open", text: "OpenCV cannot open",
            other: "unsupported file type .xyz", nopix: "no pixel data"}


def test_sources_that_cannot_be_opened(tmp_path, tiny_checkpoint, capsys):
    cases = bad_sources(tmp_path)
    for path, problem in cases.items():
        with pytest.raises(SourceError, match=re.escape(problem)) as error:
            VideoDocument.open(path)
        assert str(path) in str(error.value)
        assert not workspace_beside(path).exists()
        code, _, err = export(path, tmp_path / "out", capsys)
        assert_user_error(code, err, str(path), problem)
    # propose runs every input, says which failed and why, and exits 1
    code, _, err = propose(list(cases), tiny_checkpoint, capsys)
    assert code == 1 and "Traceback" not in err
    for path, problem in cases.items():
        assert any(str(path) in line and problem in line for line in err.splitlines() if "error:" in line), err
    assert f"{len(cases)} of {len(cases)} input(s) failed" in err
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("*.vivim"))


def test_truncated_video_file_opens_with_the_frames_that_decode(tmp_path, tiny_checkpoint, capsys):
    full = write_video(tmp_path / "full.avi", make_frames(12)[0])  # MJPG AVI: frames decode up to the cut
    video = tmp_path / "cut.avi"
    video.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with VideoDocument.open(video) as doc:  # the user can view and annotate what is there, and is told
        decodable = doc.num_frames
        assert 1 <= decodable < 12 and doc.frame(decodable - 1).shape == (48, 64, 3)
        assert any(f"announces 12 frames but only {decodable} decode" in w for w in doc.warnings), doc.warnings
        doc.set_mask(1, np.ones((48, 64), bool))
        doc.accept(1)
    workspace = workspace_beside(video)
    code, _, err = propose(video, tiny_checkpoint, capsys)
    assert code == 0 and "Traceback" not in err, err
    with VideoDocument.open(video) as doc:  # the accepted frame is intact
        assert doc.status(1) == FrameStatus.ACCEPTED and doc.mask(1).all()
        assert doc.status_counts()[FrameStatus.PROPOSED] == decodable - 1
    code, _, err = export(workspace, tmp_path / "out", capsys, "--include-unreviewed-proposals")
    assert code == 0 and f"announces 12 frames but only {decodable} decode" in err, err
    assert len(find_vtus_videos(tmp_path / "out", "Train")[0]) == decodable


# frame folders ----------------------------------------------------------------------------------------------
def test_folder_with_mixed_sizes_opens_for_viewing_and_names_the_odd_frame(tmp_path, tiny_checkpoint, capsys):
    folder = write_images(tmp_path / "mixed", make_frames(5)[0])
    write_images(folder, [np.zeros((32, 40, 3), np.uint8)], names=["0004"])
    with VideoDocument.open(folder) as doc:
        assert doc.frame(0).shape == (48, 64, 3)
        with pytest.raises(SourceError, match=r"0004\.png: frame is 40x32 but 0001\.png is 64x48"):
            doc.frame(3)
        doc.paint_stroke(0, [(10, 10)], 4)
    code, _, err = propose(folder, tiny_checkpoint, capsys)
    assert code == 1 and "Traceback" not in err and "0004.png: frame is 40x32" in err
    code, _, err = export(workspace_beside(folder), tmp_path / "out", capsys, "--include-unreviewed-proposals")
    assert_user_error(code, err, str(folder / "0004.png"), "one size")
    assert not (tmp_path / "out").exists()
    with VideoDocument.open(folder) as doc:
        assert doc.mask(0).any()  # the stroke survived every failure


def test_non_image_files_are_ignored(tmp_path, tiny_checkpoint, capsys):
    folder = write_images(tmp_path / "video", make_frames(4)[0])
    (folder / "Thumbs.db").write_bytes(b"\x00\x01")
    (folder / "notes.txt").write_text("notes")
    code, _, err = propose(folder, tiny_checkpoint, capsys)
    assert code == 0, err
    with VideoDocument.open(folder) as doc:
        assert doc.num_frames == 4 and doc.status_counts()[FrameStatus.PROPOSED] == 4
    (folder / "0005.png").write_text("text with an image's name")
    with VideoDocument.open(folder, tmp_path / "ws2") as doc:
        with pytest.raises(SourceError, match=r"0005\.png: cannot (decode this image|read this image's header)"):
            doc.frame(4)


def test_frame_names_with_gaps(tmp_path, tiny_checkpoint, capsys):
    names = ["1", "2", "5", "9", "10", "30"]
    folder = write_images(tmp_path / "case", make_frames(6)[0], names, ".jpg")
    code, _, err = propose(folder, tiny_checkpoint, capsys)
    assert code == 0, err
    with VideoDocument.open(folder) as doc:
        assert [p.stem for p in doc.source.frame_paths] == names  # natural order, gaps kept
        doc.accept(2)
    code, _, err = export(workspace_beside(folder), tmp_path / "out", capsys, "--include-unreviewed-proposals")
    assert code == 0, err
    [video] = find_vtus_videos(tmp_path / "out", "Train")
    assert [p.name for p in video.frame_paths] == [f"{i:04d}.jpg" for i in range(1, 7)]
    manifest = json.loads((tmp_path / "out" / "manifests" / "Train" / "case.json").read_text())
    assert [(f["name"], f["source_file"]) for f in manifest["frames"]] == [
        (f"{i + 1:04d}", f"{n}.jpg") for i, n in enumerate(names)]  # each exported frame traces to its file
    assert manifest["accepted_frames"] == [2]


def test_vtus_case_with_missing_or_extra_ground_truth(tmp_path):
    root = write_vtus_dataset(tmp_path / "vtus", num_videos=1, frames_per_video=5, size=(48, 64))
    gt = root / "Train_GT" / "0001"
    (gt / "0003.png").unlink()
    (gt / "0099.png").write_bytes((gt / "0001.png").read_bytes())
    with VideoDocument.open(root / "Train" / "0001") as doc:
        warnings = " ".join(doc.source.warnings)
        assert "no vtus-gt mask for 1 frame(s): 0003.jpg" in warnings and "0099.png" in warnings
        assert doc.status(2) == FrameStatus.UNREVIEWED and doc.status(1) == FrameStatus.EDITED
        result = export_document(doc, tmp_path / "out", ExportOptions(selection="reviewed"))
    assert result.manifest["human_edited_frames"] == [0, 1, 3, 4]
    assert [len(v) for v in find_vtus_videos(tmp_path / "out", "Train")] == [4]


@pytest.mark.parametrize("problem", ["values {0, 128, 255}", "colour"])
def test_vtus_case_with_bad_ground_truth_leaves_no_workspace(tmp_path, tiny_checkpoint, capsys, problem):
    root = write_vtus_dataset(tmp_path / "vtus", num_videos=1, frames_per_video=4, size=(48, 64))
    path = root / "Train_GT" / "0001" / "0002.png"
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if problem == "colour":
        cv2.imwrite(str(path), np.stack([mask, mask // 2, mask], axis=-1))
    else:
        mask[0, 0] = 128
        cv2.imwrite(str(path), mask)
    message = "mask has colour" if problem == "colour" else "mask is not binary"
    with pytest.raises(SourceError, match=message) as error:
        VideoDocument.open(root / "Train" / "0001")
    assert str(path) in str(error.value)
    assert not (root / "Train.vivim").exists()  # no empty workspace left beside the dataset
    code, _, err = propose(root / "Train" / "0001", tiny_checkpoint, capsys)
    assert code == 1 and str(path) in err and message in err and "Traceback" not in err
    assert not (root / "Train.vivim").exists()
    assert [len(v) for v in find_vtus_videos(root, "Train", require_masks=False)] == [4]  # the dataset is untouched


def test_16_bit_frames_and_masks(tmp_path):
    frames, masks = make_frames(3)
    root = tmp_path / "vtus"
    write_images(root / "Train" / "0001", [f.astype(np.uint16) * 257 for f in frames])
    write_images(root / "Train_GT" / "0001", [m.astype(np.uint16) * 65535 for m in masks])
    with VideoDocument.open(root / "Train" / "0001") as doc:
        assert doc.frame(1).dtype == np.uint8 and np.array_equal(doc.frame(1), frames[1])
        assert np.array_equal(doc.mask(2), masks[2]) and doc.status(2) == FrameStatus.EDITED
        result = export_document(doc, tmp_path / "out", ExportOptions(format="png"))
    assert np.array_equal(read_mask(result.outputs[0] / "0003.png"), masks[2])


# huge and tiny videos ---------------------------------------------------------------------------------------
def test_8k_frame_opens_proposes_edits_and_exports(tmp_path, tiny_checkpoint, capsys):
    frame = np.zeros((4320, 7680, 3), np.uint8)
    cv2.circle(frame, (3000, 2000), 900, (200, 180, 160), -1)
    folder = write_images(tmp_path / "uhd", [frame])
    del frame
    code, _, err = propose(folder, tiny_checkpoint, capsys)
    assert code == 0, err
    with VideoDocument.open(folder) as doc:
        assert doc.frame_size == (4320, 7680) and doc.status(0) == FrameStatus.PROPOSED
        assert doc.probability(0).shape == (4320, 7680)
        doc.paint_stroke(0, [(7000, 4000), (7600, 4300)], 60)
        doc.accept(0)
        assert doc.source.cache._bytes <= max(doc.source.cache.max_bytes, 4320 * 7680 * 3)
        assert doc.masks.memory_bytes() < 50 * 2**20  # masks held encoded (1-bit PNG), not as 8K arrays
    code, _, err = export(workspace_beside(folder), tmp_path / "out", capsys)
    assert code == 0, err
    exported = cv2.imread(str(tmp_path / "out" / "Train_GT" / "uhd" / "0001.png"), cv2.IMREAD_UNCHANGED)
    assert exported.shape == (4320, 7680) and exported[4200, 7500] == 255


@pytest.mark.parametrize("kind", ["mp4", "folder"])
def test_a_one_frame_video_opens_proposes_and_exports(tmp_path, tiny_checkpoint, capsys, kind):
    frames = make_frames(1)[0]
    source = (write_images(tmp_path / "one", frames) if kind == "folder"
              else write_video_file(tmp_path / "one.mp4", frames))
    code, _, err = propose(source, tiny_checkpoint, capsys)
    assert code == 0, err
    with VideoDocument.open(source) as doc:
        assert doc.num_frames == 1 and doc.status(0) == FrameStatus.PROPOSED
        doc.paint_stroke(0, [(20, 20)], 5)
        doc.accept(0)
        with pytest.raises(EditError, match="first frame has no previous"):
            doc.copy_from_previous(0)
        assert doc.propagate(0) == []
    for fmt in ("vtus", "png", "nifti"):
        code, _, err = export(workspace_beside(source), tmp_path / fmt, capsys, "--format", fmt, "--only-accepted")
        assert code == 0, err
    assert [len(v) for v in find_vtus_videos(tmp_path / "vtus", "Train")] == [1]
    import nibabel as nib
    assert nib.load(tmp_path / "nifti" / "one.nii.gz").shape == (48, 64, 1)


# checkpoints ------------------------------------------------------------------------------------------------
def bad_checkpoints(tmp_path, tiny_checkpoint):
    import torch

    from hardening_support import tiny_model, wrong_variant_checkpoint
    from vivim_core import save_checkpoint

    model = tiny_model()
    with torch.no_grad():
        model.decoder.classifier.bias.fill_(float("inf"))
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(tiny_checkpoint.read_bytes()[:-1000])
    return {wrong_variant_checkpoint(tiny_checkpoint, tmp_path / "wrong.safetensors"): "does not match its own",
            save_checkpoint(model, tmp_path / "inf.safetensors"): "NaN or infinite weights",
            truncated: "truncated", tmp_path / "absent.safetensors": "does not exist"}


def test_bad_checkpoints_fail_once_before_any_workspace_is_made(tmp_path, tiny_checkpoint, capsys):
    folder = write_images(tmp_path / "video", make_frames(3)[0])
    for checkpoint, problem in bad_checkpoints(tmp_path, tiny_checkpoint).items():
        code, _, err = propose(folder, checkpoint, capsys)
        assert_user_error(code, err, str(checkpoint), problem)
        assert not workspace_beside(folder).exists()
        service = InferenceService(checkpoint, "cpu", size=(MODEL_SIZE, MODEL_SIZE))
        with VideoDocument.open(folder, tmp_path / "ws") as doc:
            with pytest.raises(VivimError, match=problem):
                service.propose(doc)
            assert doc.status_counts()[FrameStatus.PROPOSED] == 0 and doc.checkpoint is None
