"""`vivim-studio import`: masks a site already has (PNG folders, VTUS ground truth, lesion folders, NIfTI
volumes) become human frames, after checks whose errors name the file; reviewed frames are kept unless asked."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from vivim_studio.cli import main
from vivim_studio.document import FrameStatus, ImportMasksError, VideoDocument
from vivim_studio.document.export import ExportOptions, export_document
from vivim_studio.document.mask_import import import_masks

H, W = 48, 64


def disk(x, y, r):
    mask = np.zeros((H, W), np.uint8)
    cv2.circle(mask, (x, y), r, 1, -1)
    return mask > 0


def label_map(t):
    labels = np.zeros((H, W), np.uint8)
    labels[disk(12 + t, 12, 5)] = 1
    labels[disk(45, 30 + t, 6)] = 2
    return labels


def write_pngs(folder, images, names=None):
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        cv2.imwrite(str(folder / f"{names[i] if names else f'{i + 1:04d}'}.png"), image)
    return folder


def test_a_folder_of_binary_masks_named_by_frame_number(document, tmp_path):
    masks = [disk(10 + 2 * t, 20, 6).astype(np.uint8) * 255 for t in range(3)]
    write_pngs(tmp_path / "masks", masks, ["0002", "0003", "0005"])
    result = import_masks(document, tmp_path / "masks")
    assert result.imported == [1, 2, 4] and result.lesion_ids == [1] and not result.kept
    for index, mask in zip((1, 2, 4), masks):
        assert np.array_equal(document.mask(index), mask > 0) and document.lesions(index) == [1]
        record = document.record(index)
        assert record.status == FrameStatus.EDITED and record.mask_origin == f"imported:{index + 1:04d}.png"
        assert document.lesion_record(index, 1).origin == record.mask_origin
    assert document.status(0) == FrameStatus.UNREVIEWED
    assert document.undo(2) == "import masks (3 frames)" and not document.mask(1).any()  # undone together


def test_label_maps_and_the_status_asked_for(document, tmp_path):
    write_pngs(tmp_path / "labels", [label_map(t) for t in range(4)])
    result = import_masks(document, tmp_path / "labels", status="accepted")
    assert result.imported == [0, 1, 2, 3] and result.lesion_ids == [1, 2]
    assert np.array_equal(document.labels(3), label_map(3)) and document.status(3) == FrameStatus.ACCEPTED
    assert all(x.status == FrameStatus.ACCEPTED for x in document.record(3).lesions)
    assert import_masks(document, tmp_path / "labels", status="accepted").kept == [0, 1, 2, 3]
    replaced = import_masks(document, tmp_path / "labels", status="accepted", replace_reviewed=True)
    assert replaced.unchanged == [0, 1, 2, 3] and not replaced.imported


def test_human_frames_are_kept_unless_replace_reviewed(document, tmp_path):
    document.paint_stroke(0, [(30, 30)], 4)
    document.set_proposal(1, np.full((H, W), 0.9, np.float32), model="a" * 64)
    write_pngs(tmp_path / "m", [label_map(0), label_map(1)])
    result = import_masks(document, tmp_path / "m")
    assert result.kept == [0] and result.imported == [1]  # a proposal is not human work: replaced
    assert document.labels(0)[30, 30] == 1 and not document.labels(0)[12, 12]
    assert import_masks(document, tmp_path / "m", replace_reviewed=True).imported == [0]
    assert np.array_equal(document.labels(0), label_map(0))


def test_a_vtus_ground_truth_case_folder_pairs_by_frame_name(tmp_path):
    from .helpers import make_frames, write_frame_folder

    frames, truth = make_frames(5, H, W)
    video = write_frame_folder(tmp_path / "Train" / "case", frames, names=[f"{i:03d}" for i in range(10, 15)])
    gt = write_pngs(tmp_path / "site" / "case_GT", [m.astype(np.uint8) * 255 for m in truth[:3]],
                    [f"{i:03d}" for i in range(11, 14)])
    with VideoDocument.open(video, tmp_path / "ws") as doc:
        result = import_masks(doc, gt)
        assert result.imported == [1, 2, 3] and np.array_equal(doc.mask(1), truth[0])


def test_lesion_folders_of_a_separate_export_round_trip(document, tmp_path):
    for t in range(3):
        document.set_labels(t, label_map(t))
    export_document(document, tmp_path / "out", ExportOptions(format="png", lesions="separate"))
    folder = tmp_path / "out" / "frames"
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["lesion1", "lesion2"]
    with VideoDocument.open(document.source.path, tmp_path / "other") as other:
        result = import_masks(other, folder)
        assert result.imported == [0, 1, 2] and result.lesion_ids == [1, 2]
        assert all(np.array_equal(other.labels(t), label_map(t)) for t in range(3))
        assert other.record(0).mask_origin == "imported:0001.png"
    cv2.imwrite(str(folder / "lesion2" / "0002.png"), disk(12, 12, 5).astype(np.uint8) * 255)  # lesion 1's place
    with VideoDocument.open(document.source.path, tmp_path / "third") as third:
        with pytest.raises(ImportMasksError, match="lesion2/0002.png: .*another lesion's mask too"):
            import_masks(third, folder)
        assert not third.lesion_ids()  # checked before anything was written


def test_a_nifti_label_volume_round_trips(document, tmp_path):
    import nibabel as nib

    for t in range(document.num_frames):
        document.set_labels(t, label_map(t % 4))
    export_document(document, tmp_path / "nii", ExportOptions(format="nifti"))
    volume = tmp_path / "nii" / "frames.nii.gz"
    assert np.array_equal(np.asarray(nib.load(volume).dataobj)[:, :, 2], label_map(2))
    with VideoDocument.open(document.source.path, tmp_path / "other") as other:
        result = import_masks(other, volume, status="accepted")
        assert result.imported == list(range(12)) and other.status(5) == FrameStatus.ACCEPTED
        assert all(np.array_equal(other.labels(t), label_map(t % 4)) for t in range(12))
        assert other.record(5).mask_origin == "imported:frames.nii.gz#6"


def nifti(path, data, **header):
    import nibabel as nib

    image = nib.Nifti1Image(data, np.eye(4))
    for key, value in header.items():
        image.header[key] = value
    nib.save(image, path)
    return path


@pytest.mark.parametrize("case", ["size", "number", "name", "noise", "colour", "two", "range"])
def test_bad_png_folders_are_clear_errors_and_import_nothing(document, tmp_path, case):
    folder = tmp_path / case
    good = disk(20, 20, 5).astype(np.uint8) * 255
    bad = {"size": (np.zeros((H, W + 1), np.uint8), "0002",
                    r"0002.png: mask is 65x48 but the video's frames are 64x48"),
           "number": (good, "0013", r"0013.png: frame number 13, but the video has frames 1..12"),
           "name": (good, "mask_b", r"mask_b.png: not named like a frame of the video nor by a frame number"),
           "noise": (np.random.default_rng(0).integers(0, 256, (H, W), dtype=np.uint8), "0002",
                     r"0002.png: \d+ distinct values: not a mask"),
           "colour": (np.dstack([good, good * 0, good]), "0002", r"0002.png: mask has colour"),
           "two": (good, "02", r"02.png: a second mask for frame 2"),
           "range": (np.where(good > 0, 300, 0).astype(np.uint16), "0002", r"0002.png: values up to 300")}
    image, name, message = bad[case]
    write_pngs(folder, [good, image], ["0002" if case == "two" else "0001", name])
    with pytest.raises(ImportMasksError, match=message):
        import_masks(document, folder)
    assert not document.lesion_ids() and not document.can_undo(0)


def test_bad_nifti_volumes_are_clear_errors(document, tmp_path):
    cases = {"frames": (np.zeros((H, W, 5), np.uint8), {}, r"5 slices, but the video has 12 frames"),
             "swapped": (np.zeros((W, H, 12), np.uint8), {},
                         r"slices of 48x64 pixels \(rows and columns swapped\?\)"),
             "fraction": (np.full((H, W, 12), 0.5, np.float32), {}, r"slice 0 holds fractional values"),
             "negative": (np.full((H, W, 12), -1, np.int16), {}, r"slice 0 holds values -1..-1"),
             "scaled": (np.zeros((H, W, 12), np.int16), {"scl_slope": 2.0, "scl_inter": 0.0}, r"values are scaled")}
    for name, (data, header, message) in cases.items():
        path = nifti(tmp_path / f"{name}.nii.gz", data, **header)
        with pytest.raises(ImportMasksError, match=message):
            import_masks(document, path)
    (tmp_path / "junk.nii").write_bytes(b"not a volume")
    with pytest.raises(ImportMasksError, match="junk.nii: not a readable NIfTI volume"):
        import_masks(document, tmp_path / "junk.nii")
    with pytest.raises(ImportMasksError, match="not found"):
        import_masks(document, tmp_path / "absent")
    assert not document.lesion_ids()


def test_the_import_command(frame_folder, tmp_path, capsys):
    write_pngs(tmp_path / "m", [label_map(0), label_map(1)])
    assert main(["import", str(frame_folder), "--workspace", str(tmp_path / "ws"), "--masks", str(tmp_path / "m"),
                 "--status", "accepted"]) == 0
    out = capsys.readouterr().out
    assert "imported 2 frame(s)" in out and "as accepted (lesions 1, 2)" in out
    assert main(["import", str(tmp_path / "ws"), "--masks", str(tmp_path / "m")]) == 0
    assert "2 frame(s) a human edited or accepted were kept" in capsys.readouterr().err
    with VideoDocument.open_workspace(tmp_path / "ws", read_only=True) as doc:
        assert doc.status(1) == FrameStatus.ACCEPTED and np.array_equal(doc.labels(1), label_map(1))
    write_pngs(tmp_path / "bad", [np.zeros((10, 10), np.uint8)])
    assert main(["import", str(tmp_path / "ws"), "--masks", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().rsplit("\r", 1)[-1]  # after the progress bar, cleared
    assert err.startswith("vivim-studio import: error: ") and "0001.png: mask is 10x10" in err
    assert len(err.splitlines()) == 1
    manifest_free = json.loads((tmp_path / "ws" / "workspace.json").read_text())
    assert manifest_free["format_version"] == 3
