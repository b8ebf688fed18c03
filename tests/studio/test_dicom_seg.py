"""DICOM-SEG export: one segment per lesion, every SEG frame referencing its source frame, on ultrasound cines
without a Frame of Reference (what highdicom's constructor refuses) and with one; read back with pydicom and
highdicom, frame by frame equal to the document's lesions; the source's identifiers in that file only."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from vivim_studio.cli import main as studio
from vivim_studio.document import ExportError, VideoDocument
from vivim_studio.document.export import ExportOptions, export_document
from vivim_studio.document.export_dicom_seg import PRIVACY_NOTE, tracking_uid

from .clinical_helpers import PATIENT, ellipse, ultrasound_region, with_labels, write_us_cine

H, W, T = 48, 64, 6


def lesion_maps() -> dict[int, np.ndarray]:
    """Frames 0-3: lesion 1 (left) on 0, 1, 3; lesion 2 (right) on 1, 2, 3; frame 4 reviewed without lesion."""
    maps = {}
    for t in range(5):
        labels = np.zeros((H, W), np.uint8)
        if t in (0, 1, 3):
            labels[ellipse((H, W), (14.2 + t, 20.5), (8.3, 5.1), 20 * t)] = 1
        if t in (1, 2, 3):
            labels[ellipse((H, W), (46.7, 26.1 + t), (6.4, 9.2), 0)] = 2
        maps[t] = labels
    return maps


@pytest.fixture(params=[False, True], ids=["no-frame-of-reference", "frame-of-reference"])
def labelled(request, tmp_path):
    frames = np.random.default_rng(1).integers(0, 200, (T, H, W), dtype=np.uint8)
    path = write_us_cine(tmp_path / "cine.dcm", frames, regions=[ultrasound_region(0, 0, W - 1, H - 1, 0.01)],
                         frame_of_reference=request.param)
    maps = lesion_maps()
    doc = VideoDocument.open(path, tmp_path / "ws")
    for t, labels in maps.items():
        doc.set_mask(t, labels > 0)
    yield with_labels(doc, maps), maps, path, request.param
    doc.close()


def test_every_seg_frame_references_its_source_frame_and_reads_back_equal(labelled, tmp_path):
    import highdicom as hd

    doc, maps, path, has_frame_of_reference = labelled
    result = export_document(doc, tmp_path / "out", ExportOptions(format="dicom-seg"))
    (seg_path,) = result.outputs
    assert seg_path.name == "cine.seg.dcm"
    source, seg = pydicom.dcmread(path, stop_before_pixels=True), pydicom.dcmread(seg_path)
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and seg.Modality == "SEG"
    assert seg.SegmentationType == "BINARY" and seg.BitsAllocated == 1 and seg.SegmentsOverlap == "NO"
    assert ("FrameOfReferenceUID" in seg) == has_frame_of_reference
    if has_frame_of_reference:
        assert seg.FrameOfReferenceUID == source.FrameOfReferenceUID
    assert "PlanePositionSequence" not in seg.SharedFunctionalGroupsSequence[0]  # no geometry is invented
    assert seg.StudyInstanceUID == source.StudyInstanceUID and seg.PatientID == source.PatientID
    assert seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID \
        == source.SOPInstanceUID
    expected = [(k, t) for k in (1, 2) for t in range(5) if (maps[t] == k).any()]
    assert seg.NumberOfFrames == len(expected) == 6
    pixels = seg.pixel_array
    for index, (item, (lesion, t)) in enumerate(zip(seg.PerFrameFunctionalGroupsSequence, expected)):
        reference = item.DerivationImageSequence[0].SourceImageSequence[0]
        assert reference.ReferencedSOPInstanceUID == source.SOPInstanceUID
        assert int(reference.ReferencedFrameNumber) == t + 1
        assert reference.PurposeOfReferenceCodeSequence[0].CodeValue == "121322"
        assert item.SegmentIdentificationSequence[0].ReferencedSegmentNumber == lesion
        assert list(item.FrameContentSequence[0].DimensionIndexValues) == [lesion, t + 1]
        assert np.array_equal(pixels[index] > 0, maps[t] == lesion)
    reader = hd.seg.segread(seg_path)
    assert list(reader.segment_numbers) == [1, 2]
    back = reader.get_pixels_by_source_frame(source.SOPInstanceUID, [t + 1 for t in range(5)], segment_numbers=[1, 2],
                                             assert_missing_frames_are_empty=True, dtype=bool)
    for t in range(5):
        for k in (1, 2):
            assert np.array_equal(back[t, :, :, k - 1], maps[t] == k), (t, k)
    identity = doc.workspace.identity.digest
    segments = {int(s.SegmentNumber): s for s in seg.SegmentSequence}
    assert {k: s.SegmentLabel for k, s in segments.items()} == {1: "Lesion 1", 2: "Lesion 2"}
    assert {k: s.TrackingUID for k, s in segments.items()} == {k: tracking_uid(identity, k) for k in (1, 2)}
    assert {s.SegmentAlgorithmType for s in segments.values()} == {"MANUAL"}  # painted by hand


def test_tracking_uids_are_kept_across_exports_and_identifiers_stay_in_the_seg(labelled, tmp_path):
    doc = labelled[0]
    first = export_document(doc, tmp_path / "a", ExportOptions(format="dicom-seg"))
    second = export_document(doc, tmp_path / "b", ExportOptions(format="dicom-seg"))
    a, b = (pydicom.dcmread(r.outputs[0]) for r in (first, second))
    assert [s.TrackingUID for s in a.SegmentSequence] == [s.TrackingUID for s in b.SegmentSequence]
    assert a.SOPInstanceUID != b.SOPInstanceUID
    seg_bytes = first.outputs[0].read_bytes()
    assert PATIENT["PatientID"].encode() in seg_bytes  # the one place they are copied
    assert PATIENT["InstitutionName"].encode() not in seg_bytes  # institution fields are never copied
    manifest = first.manifest_path.read_text()
    assert json.loads(manifest)["privacy"] == PRIVACY_NOTE
    assert json.loads(manifest)["dicom_seg"]["segments"][0]["tracking_uid"] == a.SegmentSequence[0].TrackingUID
    for value in PATIENT.values():
        if len(value) >= 5:
            assert value not in manifest
    workspace_text = "".join(p.read_text(errors="replace") for p in (tmp_path / "ws").rglob("*.json"))
    assert PATIENT["PatientID"] not in workspace_text and "Doe" not in workspace_text


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools' dciodvfy is not installed")
def test_dciodvfy_finds_nothing_wrong(labelled, tmp_path):
    result = export_document(labelled[0], tmp_path / "out", ExportOptions(format="dicom-seg"))
    run = subprocess.run(["dciodvfy", "-new", str(result.outputs[0])], capture_output=True, text=True)
    assert "Error" not in run.stdout + run.stderr, run.stdout + run.stderr


def test_a_proposed_then_accepted_lesion_is_semiautomatic(tmp_path):
    frames = np.zeros((T, H, W), np.uint8)
    path = write_us_cine(tmp_path / "cine.dcm", frames)
    with VideoDocument.open(path, tmp_path / "ws") as doc:  # the proposal's two blobs become lesions 1 and 2
        doc.set_proposal(2, (lesion_maps()[1] > 0).astype(np.float32), model="9" * 64)
        doc.accept(2)
        doc.active_lesion = 3
        doc.paint_stroke(3, [(30, 10)], 3)  # lesion 3 drawn by hand on another frame
        result = export_document(doc, tmp_path / "out", ExportOptions(format="dicom-seg"))
        proposed = doc.labels(2).copy()
    seg = pydicom.dcmread(result.outputs[0])
    algorithms = {int(s.SegmentNumber): s.SegmentAlgorithmType for s in seg.SegmentSequence}
    assert algorithms == {1: "SEMIAUTOMATIC", 2: "SEMIAUTOMATIC", 3: "MANUAL"}
    assert {s.SegmentAlgorithmName for s in seg.SegmentSequence if s.SegmentAlgorithmType != "MANUAL"} == {"Vivim"}
    assert np.array_equal(proposed > 0, lesion_maps()[1] > 0) and set(np.unique(proposed)) == {0, 1, 2}
    assert np.array_equal(seg.pixel_array[0] > 0, proposed == 1)


def test_what_cannot_become_a_seg_is_refused_with_the_formats_that_work(tmp_path, document, capsys):
    document.accept(0)
    with pytest.raises(ExportError, match="vtus, png or nifti"):
        export_document(document, tmp_path / "out", ExportOptions(format="dicom-seg"))
    assert not (tmp_path / "out").exists()
    frames = np.zeros((T, H, W), np.uint8)
    path = write_us_cine(tmp_path / "cine.dcm", frames)
    with VideoDocument.open(path, tmp_path / "cine-ws") as doc:
        doc.set_mask(1, lesion_maps()[1] > 0)
        with pytest.raises(ExportError, match="pixel for pixel"):
            export_document(doc, tmp_path / "out", ExportOptions(format="dicom-seg", size=(24, 32)))
        doc.accept(0)  # reviewed, no lesion
    path.rename(tmp_path / "moved.dcm")
    with VideoDocument.open_workspace(tmp_path / "cine-ws", read_only=True) as doc:
        with pytest.raises(ExportError, match="not at hand.*--source"):
            export_document(doc, tmp_path / "out", ExportOptions(format="dicom-seg"))
    capsys.readouterr()
    assert studio(["export", str(tmp_path / "cine-ws"), "--source", str(tmp_path / "moved.dcm"), "--format",
                   "dicom-seg", "--out", str(tmp_path / "cli")]) == 0
    captured = capsys.readouterr()
    assert "patient and study identifiers" in captured.err and "moved.seg.dcm" in captured.out


def test_a_seg_needs_a_lesion(tmp_path):
    path = write_us_cine(tmp_path / "cine.dcm", np.zeros((T, H, W), np.uint8))
    with VideoDocument.open(path, tmp_path / "ws") as doc:
        doc.accept(0)
        with pytest.raises(ExportError, match="no lesion is painted"):
            export_document(doc, tmp_path / "out", ExportOptions(format="dicom-seg"))
    assert not (tmp_path / "out").exists()


def test_frames_whose_bits_do_not_fill_whole_bytes(tmp_path):
    """45 x 61 = 2745 pixels: SEG frames follow each other without padding, mid-byte (PS3.5 8.1.1)."""
    import highdicom as hd

    h, w = 45, 61
    path = write_us_cine(tmp_path / "odd.dcm", np.zeros((4, h, w), np.uint8))
    masks = {t: ellipse((h, w), (20.2 + 3 * t, 22.7), (9.1, 5.3), 30 * t) for t in range(4)}
    with VideoDocument.open(path, tmp_path / "ws") as doc:
        for t, mask in masks.items():
            doc.set_mask(t, mask)
        result = export_document(doc, tmp_path / "out", ExportOptions(format="dicom-seg"))
    seg = pydicom.dcmread(result.outputs[0])
    assert len(seg.PixelData) == (4 * h * w + 7) // 8 + ((4 * h * w + 7) // 8) % 2
    assert all(np.array_equal(seg.pixel_array[t] > 0, masks[t]) for t in range(4))
    uid = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
    back = hd.seg.segread(result.outputs[0]).get_pixels_by_source_frame(uid, [1, 2, 3, 4], dtype=bool)
    assert all(np.array_equal(back[t, :, :, 0], masks[t]) for t in range(4))
