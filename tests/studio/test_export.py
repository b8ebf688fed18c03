"""Export: VTUS (readable by the training data layer), PNG and NIfTI, read back bit-exact; manifests;
selection and resizing; atomic commit; no patient identifiers."""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pytest

from vivim_core.file_safety import UnsafePathError
from vivim_studio.document import ExportError, FrameStatus, VideoDocument
from vivim_studio.document.export import (JOURNAL_SUFFIX, ExportOptions, complete_interrupted_exports,
                                          export_document)

from .helpers import make_frames, write_dicom_cine


@pytest.fixture
def reviewed(document, frames_and_masks):
    """The frame-folder document with ground-truth masks set on every frame, some accepted/edited."""
    _, truth = frames_and_masks
    for i in range(document.num_frames):
        document.set_proposal(i, truth[i].astype(np.float32) * 0.9, model="9" * 64)
    document.set_checkpoint("9" * 64, "demo.safetensors")
    document.paint_stroke(4, [(2, 2)], 1)
    document.accept(2)
    document.accept(4)
    document.clear(7)
    return document


def read_png(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_vtus_export_reads_back_bit_exact_and_feeds_the_training_reader(reviewed, tmp_path, frames_and_masks):
    from vivim_core.data.layouts import find_vtus_videos, validate_video
    from vivim_core.data.readers import read_frame, read_mask

    result = export_document(reviewed, tmp_path / "out", ExportOptions(selection="all"))
    videos = find_vtus_videos(tmp_path / "out", "Train")
    assert [v.video_id for v in videos] == ["frames"] and validate_video(videos[0]) == (48, 64)
    assert [p.name for p in videos[0].frame_paths][:2] == ["0001.jpg", "0002.jpg"] and len(videos[0]) == 12
    for i, (frame_path, mask_path) in enumerate(zip(videos[0].frame_paths, videos[0].mask_paths)):
        raw = read_png(mask_path)
        assert raw.dtype == np.uint8 and raw.ndim == 2 and set(np.unique(raw)) <= {0, 255}
        assert np.array_equal(read_mask(mask_path), reviewed.mask(i))
        assert np.abs(read_frame(frame_path).astype(int) - frames_and_masks[0][i]).mean() < 4  # JPEG q95
    manifest = result.manifest
    assert result.manifest_path == tmp_path / "out" / "manifests" / "Train" / "frames.json"
    assert manifest["frame_range"] == [0, 11] and manifest["accepted_frames"] == [2, 4]
    assert manifest["human_edited_frames"] == [7] and manifest["models"] == ["9" * 16]
    assert manifest["checkpoint"]["sha256"] == "9" * 64
    assert manifest["source"]["identity"] == reviewed.source.identity.digest
    assert [f["name"] for f in manifest["frames"]][:3] == ["0001", "0002", "0003"]
    assert not [p for p in (tmp_path / "out").rglob("*") if ".vivim-export" in p.name]


def test_only_accepted_resized_and_re_export_replaces(reviewed, tmp_path):
    out = tmp_path / "out"
    export_document(reviewed, out, ExportOptions(selection="all"))
    result = export_document(reviewed, out, ExportOptions(selection="accepted", size=(24, 32)))
    masks = sorted(p.name for p in (out / "Train_GT" / "frames").iterdir())
    assert masks == ["0003.png", "0005.png"]  # replaced, not merged; names keep the source frame number
    back = read_png(out / "Train_GT" / "frames" / "0005.png")
    expected = cv2.resize(reviewed.mask(4).astype(np.uint8), (32, 24), interpolation=cv2.INTER_NEAREST) * 255
    assert back.shape == (24, 32) and np.array_equal(back, expected)
    assert cv2.imread(str(out / "Train" / "frames" / "0003.jpg")).shape == (24, 32, 3)
    assert result.manifest["resized"] and result.manifest["selection"] == "accepted"
    export_document(reviewed, out, ExportOptions(split="Test", video_id="case 7"))  # another split beside
    assert (out / "Test" / "case 7").is_dir() and (out / "Train" / "frames").is_dir()
    with pytest.raises(UnsafePathError, match="--video-id 'case 7/a' is not a plain"):
        export_document(reviewed, out, ExportOptions(split="Test", video_id="case 7/a"))


def test_png_and_nifti_exports_read_back_bit_exact(reviewed, tmp_path):
    import nibabel as nib

    png = export_document(reviewed, tmp_path / "png", ExportOptions(format="png", selection="reviewed"))
    names = sorted(p.name for p in (tmp_path / "png" / "frames").iterdir())
    assert names == ["0003.png", "0005.png", "0008.png"] and png.frames == [2, 4, 7]
    for i, name in zip(png.frames, names):  # label maps: each pixel's lesion id (here lesion 1 only)
        assert np.array_equal(read_png(tmp_path / "png" / "frames" / name), reviewed.labels(i))
    union = export_document(reviewed, tmp_path / "png-union", ExportOptions(format="png", lesions="union"))
    assert union.manifest["lesions"]["mode"] == "union"
    for i, name in zip(union.frames, names):
        assert np.array_equal(read_png(tmp_path / "png-union" / "frames" / name) == 255, reviewed.mask(i))
    nifti = export_document(reviewed, tmp_path / "nii", ExportOptions(format="nifti", selection="all"))
    volume = nib.load(nifti.outputs[0])
    data = np.asarray(volume.dataobj)
    assert volume.shape == (48, 64, 12) and data.dtype == np.uint8
    for i in range(12):
        assert np.array_equal(data[:, :, i], reviewed.mask(i).astype(np.uint8))
    assert json.loads((tmp_path / "nii" / "manifests" / "frames.json").read_text())["export_format"] == "nifti"


def test_export_errors_and_nothing_half_written(reviewed, tmp_path):
    with pytest.raises(ExportError, match="no frame .* was accepted by a human yet"):
        export_document(reviewed, tmp_path / "x", ExportOptions(selection="accepted", frames=range(5, 7)))
    calls = []

    def cancel_after_three():
        calls.append(1)
        return len(calls) > 3
    from vivim_studio.document.export import ExportCancelled
    with pytest.raises(ExportCancelled):
        export_document(reviewed, tmp_path / "fresh", ExportOptions(selection="all"), cancel=cancel_after_three)
    assert not (tmp_path / "fresh").exists() and not list(tmp_path.glob(".fresh*"))
    export_document(reviewed, tmp_path / "root")
    with pytest.raises(ExportCancelled):
        export_document(reviewed, tmp_path / "root", ExportOptions(split="Test"), cancel=lambda: True)
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == ["Train", "Train_GT", "manifests"]


def test_interrupted_commit_is_completed_by_the_next_export(reviewed, tmp_path):
    import shutil
    import subprocess

    out = tmp_path / "out"
    export_document(reviewed, out, ExportOptions(selection="all"))
    # simulate a crash in the middle of a commit: staged video, journal written, one folder moved
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()  # its pid names a process that is no longer running
    dead = finished.pid
    staging = out / f".vivim-export-{dead}-deadbeef"
    shutil.copytree(out / "Train", staging / "Test")
    shutil.copytree(out / "Train_GT", staging / "Test_GT")
    (out / "Test").mkdir()
    (staging / "Test" / "frames").rename(out / "Test" / "frames")  # the first move happened; Test_GT's did not
    (out / f"{staging.name}{JOURNAL_SUFFIX}").write_text(json.dumps(
        {"staging": staging.name, "paths": ["Test/frames", "Test_GT/frames"]}))
    complete_interrupted_exports(out)
    from vivim_core.data.layouts import find_vtus_videos
    assert [len(v) for v in find_vtus_videos(out, "Test")] == [12] and not staging.exists()
    assert not list(out.glob(f"*{JOURNAL_SUFFIX}"))


def test_dicom_export_has_no_patient_identifiers(tmp_path):
    frames, truth = make_frames(4, 32, 40)
    path = write_dicom_cine(tmp_path / "cine.dcm", frames)
    with VideoDocument.open(path, tmp_path / "ws") as doc:
        doc.set_mask(1, truth[1])
        doc.accept(1)
        result = export_document(doc, tmp_path / "out", ExportOptions(selection="accepted"))
    text = result.manifest_path.read_text() + "".join(str(p) for p in (tmp_path / "out").rglob("*"))
    for secret in ("Doe", "Jane", "PAT-123456", "Secret Hospital"):
        assert secret not in text
    assert result.manifest["source"]["metadata"]["modality"] == "US"
    assert (tmp_path / "out" / "Train_GT" / "cine" / "0002.png").is_file()
    with VideoDocument.open_workspace(tmp_path / "ws", read_only=True) as doc:
        import nibabel as nib
        nifti = export_document(doc, tmp_path / "nii", ExportOptions(format="nifti"))
        assert nib.load(nifti.outputs[0]).header.get_zooms() == pytest.approx((0.1, 0.2, 1.0))


def test_masks_only_export_without_the_video(reviewed, tmp_path):
    import shutil

    workspace = reviewed.workspace.folder
    source = reviewed.source.path
    reviewed.close()
    shutil.rmtree(source)
    with VideoDocument.open_workspace(workspace, read_only=True) as doc:
        assert doc.status(2) == FrameStatus.ACCEPTED
        export_document(doc, tmp_path / "png", ExportOptions(format="png"))
        with pytest.raises(ExportError, match="needs the video's frames"):
            export_document(doc, tmp_path / "vtus")


@pytest.mark.shared_data
def test_real_sample_round_trips_bit_exact(vtus_sample, tmp_path):
    """Open the real VTUS case (GT imported), export it: JPEG frames are copied byte for byte and the masks
    equal the expert's, so a VTUS case goes through the Studio without loss."""
    with VideoDocument.open(vtus_sample / "Train" / "0002", tmp_path / "ws") as doc:
        result = export_document(doc, tmp_path / "out", ExportOptions(selection="reviewed"))
    assert len(result.frames) == 91
    for name in ("0001", "0046", "0091"):
        original = (vtus_sample / "Train" / "0002" / f"{name}.jpg").read_bytes()
        assert (tmp_path / "out" / "Train" / "0002" / f"{name}.jpg").read_bytes() == original
        assert np.array_equal(read_png(tmp_path / "out" / "Train_GT" / "0002" / f"{name}.png"),
                              read_png(vtus_sample / "Train_GT" / "0002" / f"{name}.png"))


def test_unwritable_output_is_a_clear_error(reviewed, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="could not be written"):
        export_document(reviewed, tmp_path / "file" / "out")
