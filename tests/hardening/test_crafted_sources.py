"""Crafted or damaged inputs in the Studio's own readers: a header is never taken at its word. Video files
whose container announces another frame count than what decodes, DICOM files whose header disagrees with their
pixel data or gives a pixel spacing of 0 or less, and images whose header claims an enormous size are either
refused with a clear message or opened as they really are, with a note saying what was repaired."""

from __future__ import annotations

import logging
import re
import struct
import zlib

import numpy as np
import pytest
from hardening_support import assert_user_error, make_frames, run_cli, write_images, write_video

from vivim_studio.cli import main as studio
from vivim_studio.document import SourceError, VideoDocument, open_source
from vivim_studio.document.export import ExportOptions, export_document


# video files -------------------------------------------------------------------------------------------------
def announce_frames(path, count):
    """Rewrite the frame count an MJPG AVI's headers announce (avih dwTotalFrames, strh dwLength)."""
    data = bytearray(path.read_bytes())
    avih, strh = data.find(b"avih"), data.find(b"strh")
    struct.pack_into("<I", data, avih + 8 + 16, count)
    struct.pack_into("<I", data, strh + 8 + 32, count)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("announced", [30, 5])
def test_video_whose_container_announces_another_frame_count(tmp_path, announced, capsys):
    frames = make_frames(12)[0]
    video = announce_frames(write_video(tmp_path / "clip.avi", frames), announced)
    import cv2
    assert cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT) == announced  # OpenCV believes it
    with VideoDocument.open(video) as doc:
        assert doc.num_frames == 12  # what decodes
        assert any(f"announces {announced} frames" in w for w in doc.warnings), doc.warnings
        assert np.abs(doc.frame(11).astype(int) - frames[11]).mean() < 6
        doc.accept(11)
        result = export_document(doc, tmp_path / "out", ExportOptions(selection="all"))
    assert len(result.frames) == 12 and result.manifest["source"]["metadata"]["announced_frames"] == announced
    code, _, err = run_cli(studio, ["export", video.with_name("clip.avi.vivim"), "--out", tmp_path / "cli"], capsys)
    assert code == 0 and f"announces {announced} frames" in err


def test_a_video_header_claiming_enormous_frames_is_refused_before_decoding(tmp_path, monkeypatch, capsys):
    """(OpenCV's FFmpeg probe already decodes while opening, so the file is faked at the capture's report.)"""
    import cv2

    from vivim_studio.document.sources import video_file

    video = write_video(tmp_path / "clip.avi", make_frames(3)[0])
    real_capture = cv2.VideoCapture

    class Claiming:
        def __init__(self, path):
            self.capture = real_capture(path)

        def get(self, prop):
            return {cv2.CAP_PROP_FRAME_WIDTH: 60000, cv2.CAP_PROP_FRAME_HEIGHT: 40000}.get(
                prop, self.capture.get(prop))

        def read(self):
            raise AssertionError("a frame was decoded although the header was refused")

        def __getattr__(self, name):
            return getattr(self.capture, name)

    monkeypatch.setattr(video_file.cv2, "VideoCapture", Claiming)
    with pytest.raises(SourceError, match=r"claims frames of 60000x40000 pixels.*not decoded"):
        open_source(video)


# DICOM -------------------------------------------------------------------------------------------------------
def dicom(tmp_path, name, **changes):
    import pydicom

    from hardening_support import write_dicom

    path = write_dicom(tmp_path / name, make_frames(4, 32, 40)[0])
    ds = pydicom.dcmread(path)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.save_as(path)
    return path


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")  # writing the "nan" test file
@pytest.mark.parametrize("spacing", [[0, 0.1], [-0.2, 0.1], ["nan", 0.1]], ids=["zero", "negative", "nan"])
def test_dicom_pixel_spacing_that_is_not_a_spacing_is_ignored_with_a_note(tmp_path, spacing, caplog, capsys):
    import nibabel as nib

    path = dicom(tmp_path, "cine.dcm", PixelSpacing=spacing)
    with VideoDocument.open(path, tmp_path / "ws") as doc:
        assert "pixel_spacing_mm" not in doc.source.metadata
        assert any("PixelSpacing" in w and "ignored" in w for w in doc.warnings)
        doc.accept(1)
        result = export_document(doc, tmp_path / "nii", ExportOptions(format="nifti"))
    assert nib.load(result.outputs[0]).header.get_xyzt_units()[0] == "unknown"
    code, _, err = run_cli(studio, ["export", tmp_path / "ws", "--format", "nifti", "--out", tmp_path / "cli"], capsys)
    assert code == 0 and "Traceback" not in err


@pytest.mark.parametrize("spacing", [[0.0, 0.1], [-1, 2], [float("inf"), 1], "abc", [1.0]])
def test_nifti_writer_never_crashes_on_a_recorded_spacing(tmp_path, spacing, caplog):
    """A spacing recorded elsewhere (a workspace's metadata, an older Studio) reaches the writer unchecked."""
    import nibabel as nib

    video = write_images(tmp_path / "video", make_frames(3)[0])
    with VideoDocument.open(video, tmp_path / "ws") as doc:
        doc.accept(0)
        doc.source.metadata["pixel_spacing_mm"] = spacing
        with caplog.at_level(logging.WARNING):
            result = export_document(doc, tmp_path / "nii", ExportOptions(format="nifti"))
    assert nib.load(result.outputs[0]).shape == (48, 64, 1)
    assert any("pixel spacing" in r.getMessage() and "ignored" in r.getMessage() for r in caplog.records)


def test_dicom_frame_count_against_its_pixel_data(tmp_path, capsys):
    more = dicom(tmp_path, "more.dcm", NumberOfFrames=10)  # announces 10, holds 4
    with VideoDocument.open(more) as doc:
        assert doc.num_frames == 4 and doc.frame(3).shape == (32, 40, 3)
        assert any("announces 10 frames" in w and "holds 4" in w for w in doc.warnings)
    fewer = dicom(tmp_path, "fewer.dcm", NumberOfFrames=2)  # announces 2, holds 4
    with VideoDocument.open(fewer) as doc:
        assert doc.num_frames == 2 and any("more than the" in w for w in doc.warnings)
    larger = dicom(tmp_path, "rows.dcm", Rows=320, Columns=400)  # claims frames bigger than its whole data
    with pytest.raises(SourceError, match=r"rows\.dcm: the pixel data holds 15,360 bytes, less than one frame"):
        VideoDocument.open(larger)
    huge = dicom(tmp_path, "huge.dcm", Rows=60000, Columns=60000)
    with pytest.raises(SourceError, match=r"claims frames of 60000x60000 pixels"):
        VideoDocument.open(huge)
    code, _, err = run_cli(studio, ["export", huge, "--out", tmp_path / "out"], capsys)
    assert_user_error(code, err, str(huge), "60000x60000")
    assert not (tmp_path / "huge.dcm.vivim").exists()


# decompression bombs ------------------------------------------------------------------------------------------
def png_header_claiming(path, width, height):
    """A PNG whose header claims width x height 8-bit grey pixels (with a few rows of data): opening it
    promises width * height bytes to whoever decodes it."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    rows = zlib.compress(b"\x00" * (width + 1) * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("width,height", [(12000, 12000), (40000, 40000)], ids=["above 67 MP", "Pillow's bomb"])
def test_a_frame_whose_header_claims_an_enormous_size_is_never_decoded(tmp_path, width, height, capsys):
    folder = write_images(tmp_path / "video", make_frames(4)[0])
    png_header_claiming(folder / "0003.png", width, height)  # a later frame: refused when it is reached
    refusal = r"0003\.png: the image has .*pixels.*decompression bomb"
    with VideoDocument.open(folder, tmp_path / "ws") as doc:
        with pytest.raises(SourceError, match=refusal):
            doc.frame(2)
        doc.accept(0)
        doc.accept(2)
    code, _, err = run_cli(studio, ["export", tmp_path / "ws", "--out", tmp_path / "out"], capsys)
    assert re.search(refusal, assert_user_error(code, err, "0003.png")), err
    alone = tmp_path / "bomb"
    alone.mkdir()
    png_header_claiming(alone / "0001.png", width, height)  # the first frame
    code, _, err = run_cli(studio, ["export", alone, "--out", tmp_path / "out2"], capsys)
    assert_user_error(code, err, "0001.png", "decompression bomb")
    assert not (tmp_path / "bomb.vivim").exists()


def test_a_ground_truth_mask_claiming_an_enormous_size_is_refused(tmp_path):
    from vivim_core.data.synthetic import write_vtus_dataset

    root = write_vtus_dataset(tmp_path / "vtus", num_videos=1, frames_per_video=3, size=(32, 32))
    mask = next((root / "Train_GT").rglob("0002.png"))
    png_header_claiming(mask, 40000, 40000)
    with pytest.raises(SourceError, match=r"0002\.png: the image has .*pixels.*decompression bomb"):
        VideoDocument.open(mask.parent.parent.parent / "Train" / mask.parent.name, tmp_path / "ws")
    assert not (tmp_path / "ws").exists()
