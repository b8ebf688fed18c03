"""Exports of lesions: VTUS stays binary (the union) or adds a folder per lesion that training ignores, PNG writes
label maps, NIfTI a label volume; manifests say which lesions exist."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from vivim_studio.cli import main
from vivim_studio.document import ExportError
from vivim_studio.document.export import ExportOptions, export_document

H, W = 48, 64


@pytest.fixture
def two_lesions(document):
    for t in range(4):
        labels = np.zeros((H, W), np.uint8)
        cv2.circle(labels, (12 + t, 12), 5, 1, -1)
        if t != 2:  # lesion 3 is absent from frame 3
            cv2.circle(labels, (45, 30), 6, 3, -1)
        document.set_labels(t, labels)
    return document


def read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_vtus_separate_lesions_still_train_as_the_union(two_lesions, tmp_path):
    from vivim_core.data.layouts import find_vtus_videos, validate_video
    from vivim_core.data.readers import read_mask

    result = export_document(two_lesions, tmp_path / "out", ExportOptions(lesions="separate"))
    videos = find_vtus_videos(tmp_path / "out", "Train")
    assert [v.video_id for v in videos] == ["frames"] and validate_video(videos[0]) == (H, W)
    gt = tmp_path / "out" / "Train_GT" / "frames"
    assert sorted(p.name for p in gt.iterdir() if p.is_dir()) == ["lesion1", "lesion3"]
    for t, mask_path in enumerate(videos[0].mask_paths):
        assert np.array_equal(read_mask(mask_path), two_lesions.mask(t))  # the union, what finetune reads
        for lesion in (1, 3):
            assert np.array_equal(read(gt / f"lesion{lesion}" / mask_path.name) == 255,
                                  two_lesions.lesion_mask(t, lesion))
    lesions = result.manifest["lesions"]
    assert lesions["mode"] == "separate" and lesions["ids"] == [1, 3]
    assert lesions["folders"] == {"1": "lesion1", "3": "lesion3"}
    assert [x["id"] for x in result.manifest["frames"][2]["lesions"]] == [1]
    export_document(two_lesions, tmp_path / "out", ExportOptions())  # the union again: lesion folders replaced
    assert not [p for p in gt.iterdir() if p.is_dir()]


def test_png_label_maps_and_nifti_label_volume(two_lesions, tmp_path):
    import nibabel as nib

    png = export_document(two_lesions, tmp_path / "png", ExportOptions(format="png"))
    assert png.manifest["lesions"] == {"mode": "labels", "ids": [1, 3],
                                       "values": "each pixel's lesion id, 0 background"}
    for t in range(4):
        assert np.array_equal(read(tmp_path / "png" / "frames" / f"{t + 1:04d}.png"), two_lesions.labels(t))
    nifti = export_document(two_lesions, tmp_path / "nii", ExportOptions(format="nifti"))
    data = np.asarray(nib.load(nifti.outputs[0]).dataobj)
    assert all(np.array_equal(data[:, :, t], two_lesions.labels(t)) for t in range(4))
    union = export_document(two_lesions, tmp_path / "nii1", ExportOptions(format="nifti", lesions="union"))
    assert np.asarray(nib.load(union.outputs[0]).dataobj).max() == 1
    for options, message in ((ExportOptions(lesions="labels"), "VTUS export holds binary masks"),
                             (ExportOptions(format="nifti", lesions="separate"), "NIfTI export is one volume"),
                             (ExportOptions(lesions="each"), "unknown lesion mode")):
        with pytest.raises(ExportError, match=message):
            export_document(two_lesions, tmp_path / "bad", options)


def test_export_command_lesions_option(two_lesions, tmp_path, capsys):
    workspace = two_lesions.workspace.folder
    two_lesions.close()
    assert main(["export", str(workspace), "--format", "png", "--lesions", "separate", "--out",
                 str(tmp_path / "out")]) == 0
    manifest = json.loads((tmp_path / "out" / "manifests" / "frames.json").read_text())
    assert manifest["lesions"]["mode"] == "separate" and (tmp_path / "out" / "frames" / "lesion3").is_dir()
    assert read(tmp_path / "out" / "frames" / "0001.png").max() == 255
