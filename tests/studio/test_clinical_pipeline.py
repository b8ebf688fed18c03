"""A calibrated ultrasound cine (Sequence of Ultrasound Regions, no Pixel Spacing, no Frame of Reference) goes
through the report, then DICOM-SEG, NIfTI and VTUS exports, with every number checked against the shapes drawn.

Two lesions go through the functions (label maps painted into the document), and through the headless verbs:
`import` of a folder of label PNGs, review (accept), `report`, then `export` as DICOM-SEG, NIfTI and VTUS."""

from __future__ import annotations

import csv
import json

import cv2
import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest

from vivim_studio.cli import main as studio
from vivim_studio.document import VideoDocument
from vivim_studio.document.export import ExportOptions, export_document
from vivim_studio.document.report import ReportOptions, write_report

from .clinical_helpers import ellipse, ultrasound_region, with_labels, within, write_us_cine

H, W, T = 96, 160, 8
MM = 0.15  # the scan region's Physical Delta X/Y: 0.015 cm
REVIEWED = range(6)  # frames 0-5 painted (edited), 6 accepted without lesion, 7 an unreviewed proposal
LESIONS = {1: ((40.3, 50.2), [(14.2, 9.1), (16.3, 9.8), (19.6, 11.2), (17.1, 10.4), (15.5, 9.3), (13.8, 8.7)], 30),
           2: ((118.6, 46.4), [(10.2, 6.1), (11.4, 6.6), (12.3, 7.2), (13.9, 7.9), (12.6, 7.0), (11.1, 6.4)], 100)}


def label_map(t: int, lesions=(1, 2)) -> np.ndarray:
    labels = np.zeros((H, W), np.uint8)
    for k in lesions:
        centre, axes, angle = LESIONS[k]
        if t in REVIEWED:
            labels[ellipse((H, W), centre, axes[t], angle + 7 * t)] = k
    return labels


@pytest.fixture
def study(tmp_path):
    """The cine (a scan region in cm, a Doppler-like region in seconds that gives no length) and its path."""
    frames = np.random.default_rng(3).integers(0, 180, (T, H, W), dtype=np.uint8)
    regions = [ultrasound_region(0, 8, W - 1, H - 1, MM / 10), ultrasound_region(0, 0, W - 1, 7, 0.5, units=4)]
    return write_us_cine(tmp_path / "thyroid.dcm", frames, regions=regions)


def review(doc, lesions) -> None:
    for t in REVIEWED:
        doc.set_mask(t, label_map(t, lesions) > 0)
    doc.accept(6)
    doc.set_proposal(7, (label_map(2, lesions) > 0).astype(np.float32), model="9" * 64)


def check_report(folder, lesions) -> None:
    """Every row against the ellipse drawn, in px and mm; the key frame of each lesion is its largest."""
    with open(folder / "measurements.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted((int(r["frame"]), int(r["lesion"])) for r in rows) == sorted(
        (t + 1, k) for t in REVIEWED for k in lesions)
    for row in rows:
        t, k = int(row["frame"]) - 1, int(row["lesion"])
        a, b = LESIONS[k][1][t]
        assert "ultrasound region 1" in row["spacing_source"]
        for column, true in (("long_axis", 2 * a), ("short_axis", 2 * b)):
            assert within(float(row[f"{column}_px"]), true), (row, column)
            assert within(float(row[f"{column}_mm"]), true * MM, pixel=MM), (row, column)
        assert within(float(row["area_mm2"]), np.pi * a * b * MM * MM, pixel=2 * (a + b) * MM * MM)
    summary = json.loads((folder / "summary.json").read_text())
    for lesion in summary["lesions"]:
        axes = LESIONS[lesion["lesion"]][1]
        largest = max(range(len(axes)), key=lambda t: axes[t][0])
        assert lesion["key_frame"]["frame"] == largest + 1
        assert within(lesion["key_frame"]["long_axis_mm"], 2 * axes[largest][0] * MM, pixel=MM)
        assert lesion["size_information"]["guideline"].startswith("ACR TI-RADS")
    assert summary["frames_measured"] == [t + 1 for t in (*REVIEWED, 6)]
    assert cv2.imread(str(folder / "report.png")) is not None


def check_exports(seg_path, nifti_path, vtus_root, source_path, lesions) -> None:
    exported = [*REVIEWED, 6]  # the reviewed frames; the unreviewed proposal stays out
    source = pydicom.dcmread(source_path, stop_before_pixels=True)
    seg = hd.seg.segread(seg_path)
    assert list(seg.segment_numbers) == list(lesions)
    pixels = seg.get_pixels_by_source_frame(source.SOPInstanceUID, [t + 1 for t in exported],
                                            segment_numbers=list(lesions), assert_missing_frames_are_empty=True,
                                            dtype=bool)
    for i, t in enumerate(exported):
        for j, k in enumerate(lesions):
            assert np.array_equal(pixels[i, :, :, j], label_map(t, lesions) == k), (t, k)
    volume = nib.load(nifti_path)
    assert volume.shape == (H, W, len(exported)) and volume.header.get_xyzt_units()[0] == "mm"
    assert volume.header.get_zooms()[:2] == pytest.approx((MM, MM))
    data = np.asarray(volume.dataobj)
    for i, t in enumerate(exported):
        assert np.array_equal(data[:, :, i] > 0, label_map(t, lesions) > 0)
        mask = cv2.imread(str(vtus_root / "Train_GT" / "thyroid" / f"{t + 1:04d}.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(mask > 0, label_map(t, lesions) > 0)
    assert sorted(p.name for p in (vtus_root / "Train" / "thyroid").iterdir()) == [f"{t + 1:04d}.jpg"
                                                                                    for t in exported]


def test_two_lesions_through_the_report_and_every_export(study, tmp_path):
    maps = {t: label_map(t) for t in range(T)}
    with VideoDocument.open(study, tmp_path / "ws") as doc:
        review(doc, (1, 2))
        labelled = with_labels(doc, maps)
        write_report(labelled, tmp_path / "report", ReportOptions(task="thyroid"))
        seg = export_document(labelled, tmp_path / "seg", ExportOptions(format="dicom-seg"))
        nifti = export_document(labelled, tmp_path / "nifti", ExportOptions(format="nifti"))
        export_document(labelled, tmp_path / "vtus", ExportOptions(format="vtus"))
    check_report(tmp_path / "report", (1, 2))
    check_exports(seg.outputs[0], nifti.outputs[0], tmp_path / "vtus", study, (1, 2))
    assert seg.manifest["reviewed_frames"] == nifti.manifest["reviewed_frames"] == [*REVIEWED, 6]
    assert nifti.manifest["pixel_spacing"] == {"mm": [MM, MM], "source": "the DICOM file"}


def write_label_pngs(folder, frames) -> None:
    """Label PNGs named by 1-based frame number (0001.png), as a site's annotation tool would leave them."""
    folder.mkdir()
    for t in frames:
        assert cv2.imwrite(str(folder / f"{t + 1:04d}.png"), label_map(t))


def test_two_lesions_imported_reviewed_and_exported_through_the_headless_verbs(study, tmp_path, capsys):
    masks = tmp_path / "site_masks"
    write_label_pngs(masks, [*REVIEWED, 6])  # frame 6: an empty mask, "no lesion here"
    before = sorted(p.name for p in masks.iterdir())
    capsys.readouterr()
    assert studio(["import", str(study), "--masks", str(masks)]) == 0, capsys.readouterr().err
    assert "imported 7 frame(s)" in capsys.readouterr().out
    assert sorted(p.name for p in masks.iterdir()) == before  # nothing written beside the masks
    workspace = study.with_name("thyroid.dcm.vivim")
    with VideoDocument.open_workspace(workspace) as doc:
        assert doc.lesion_ids() == [1, 2]
        for t in (*REVIEWED, 6):
            assert np.array_equal(doc.labels(t), label_map(t))
            assert doc.record(t).mask_origin == f"imported:{t + 1:04d}.png"
            doc.accept(t)  # the expert reviews each imported frame
        doc.set_proposal(7, (label_map(2) > 0).astype(np.float32), model="9" * 64)  # not reviewed: stays out
        identity = doc.workspace.identity.digest
    commands = [["report", workspace, "--out", tmp_path / "report", "--task", "thyroid"],
                ["export", workspace, "--format", "dicom-seg", "--out", tmp_path / "seg"],
                ["export", workspace, "--format", "nifti", "--out", tmp_path / "nifti"],
                ["export", workspace, "--format", "vtus", "--out", tmp_path / "vtus"],
                ["export", workspace, "--format", "vtus", "--lesions", "separate", "--out", tmp_path / "separate"]]
    for command in commands:
        capsys.readouterr()
        assert studio([str(a) for a in command]) == 0, capsys.readouterr().err
    check_report(tmp_path / "report", (1, 2))
    with open(tmp_path / "report" / "measurements.csv", newline="") as f:
        assert {row["status"] for row in csv.DictReader(f)} == {"accepted"}
    seg_path, nifti_path = tmp_path / "seg" / "thyroid.seg.dcm", tmp_path / "nifti" / "thyroid.nii.gz"
    check_exports(seg_path, nifti_path, tmp_path / "vtus", study, (1, 2))
    seg = pydicom.dcmread(seg_path)
    from vivim_studio.document.export_dicom_seg import tracking_uid

    assert len(seg.SegmentSequence) == 2
    assert {int(s.SegmentNumber): (s.TrackingID, s.TrackingUID) for s in seg.SegmentSequence} == {
        k: (f"Lesion {k}", tracking_uid(identity, k)) for k in (1, 2)}
    frames_of = {}  # segment -> the source frames its SEG frames reference: the lesion's frames, one id throughout
    for item in seg.PerFrameFunctionalGroupsSequence:
        segment = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        frame = int(item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedFrameNumber)
        frames_of.setdefault(segment, []).append(frame)
    assert frames_of == {1: [t + 1 for t in REVIEWED], 2: [t + 1 for t in REVIEWED]}
    data = np.asarray(nib.load(nifti_path).dataobj)
    for i, t in enumerate([*REVIEWED, 6]):
        assert np.array_equal(data[:, :, i], label_map(t))  # a label volume: each voxel its lesion's id
        for k in (1, 2):
            mask = cv2.imread(str(tmp_path / "separate" / "Train_GT" / "thyroid" / f"lesion{k}" / f"{t + 1:04d}.png"),
                              cv2.IMREAD_UNCHANGED)
            assert np.array_equal(mask > 0, label_map(t) == k), (t, k)
    manifest = json.loads(next((tmp_path / "nifti" / "manifests").glob("*.json")).read_text())
    assert manifest["lesions"]["ids"] == [1, 2]
    assert {f["mask_origin"] for f in manifest["frames"]} == {f"imported:{t + 1:04d}.png" for t in (*REVIEWED, 6)}
