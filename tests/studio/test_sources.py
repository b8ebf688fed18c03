"""Video sources: video files, frame folders, VTUS cases (synthetic and the real sample), DICOM cines."""

from __future__ import annotations

import os
import shutil

import cv2
import numpy as np
import pytest

from vivim_studio.document import (DicomCineSource, FrameFolderSource, SourceError, VideoFileSource, open_source)
from vivim_studio.document.frame_cache import FrameCache
from vivim_studio.document.sources import find_inputs

from .helpers import make_frames, write_dicom_cine, write_frame_folder, write_video


@pytest.mark.parametrize("suffix, fourcc", [(".avi", "MJPG"), (".mp4", "mp4v")])
def test_video_file_random_access_matches_sequential_decoding(tmp_path, suffix, fourcc):
    frames, _ = make_frames(40, 48, 64)
    path = write_video(tmp_path / f"clip{suffix}", frames, fps=12.5, fourcc=fourcc)
    with open_source(path) as source:
        assert isinstance(source, VideoFileSource)
        assert (source.num_frames, source.frame_size, source.fps) == (40, (48, 64), 12.5)
        assert source.video_id == "clip"
        sequential = [f for _, f in source.iter_frames()]
        assert len(sequential) == 40
        for index in [7, 3, 39, 0, 20, 21, 22, 30, 5, 38]:  # backward seeks, jumps, steps
            assert np.array_equal(source.frame(index), sequential[index]), index
        assert source.frame(5).flags.writeable is False
        assert np.abs(sequential[10].astype(int) - frames[10]).mean() < 12  # lossy codec, same picture
        with pytest.raises(IndexError):
            source.frame(40)


def test_video_file_errors_name_the_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match="empty.mp4.*empty"):
        open_source(empty)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(os.urandom(5000))
    with pytest.raises(SourceError, match="garbage.mp4"):
        open_source(garbage)
    with pytest.raises(SourceError, match="not found"):
        open_source(tmp_path / "missing.mp4")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(SourceError, match="unsupported file type"):
        open_source(tmp_path / "notes.txt")


def test_frame_folder_natural_order_and_lossless(tmp_path):
    frames, _ = make_frames(12)
    folder = write_frame_folder(tmp_path / "case", frames, names=[str(i + 1) for i in range(12)])
    with open_source(folder) as source:
        assert isinstance(source, FrameFolderSource)
        assert [p.name for p in source.frame_paths][:3] == ["1.png", "2.png", "3.png"]
        assert source.frame_paths[9].name == "10.png"  # natural, not lexicographic
        assert source.fps is None and source.video_id == "case"
        for i in (0, 9, 11):
            assert np.array_equal(source.frame(i), frames[i])
        assert list(source.initial_masks()) == []


def test_frame_folder_with_mixed_sizes_names_the_odd_frame(tmp_path):
    frames, _ = make_frames(3)
    folder = write_frame_folder(tmp_path / "mixed", frames)
    cv2.imwrite(str(folder / "2.png"), np.zeros((10, 10, 3), np.uint8))
    with open_source(folder) as source, pytest.raises(SourceError, match="2.png.*10x10"):
        source.frame(1)


def test_vtus_case_brings_its_ground_truth(tmp_path):
    from vivim_core.data.synthetic import write_vtus_dataset

    root = write_vtus_dataset(tmp_path / "vtus", num_videos=1, frames_per_video=6, size=(32, 32))
    (root / "Train_GT" / "0001" / "0006.png").unlink()  # a frame without GT starts without a mask
    with open_source(root / "Train" / "0001") as source:
        masks = dict(source.initial_masks())
        assert sorted(masks) == [0, 1, 2, 3, 4] and masks[0].dtype == bool
        assert source.initial_mask_origin == "import:vtus-gt"
        assert any("0006" in w for w in source.warnings)
        # the default workspace stays out of the dataset's split folder
        assert source.default_workspace() == root / "Train.vivim" / "0001"


@pytest.mark.shared_data
def test_real_vtus_sample_opens_in_place(vtus_sample, tmp_path):
    from vivim_studio.document import VideoDocument

    case = vtus_sample / "Train" / "0002"
    before = sorted(p.name for p in vtus_sample.iterdir())
    with VideoDocument.open(case, tmp_path / "ws") as doc:  # workspace elsewhere: the sample is read-only
        assert doc.num_frames == 91 and doc.frame_size == (256, 256)
        assert doc.status(0).value == "edited" and doc.record(0).mask_origin == "import:vtus-gt"
        from vivim_core.data.readers import read_mask
        assert np.array_equal(doc.mask(45), read_mask(vtus_sample / "Train_GT" / "0002" / "0046.png"))
        assert doc.frame(90).shape == (256, 256, 3)
    assert sorted(p.name for p in vtus_sample.iterdir()) == before


@pytest.mark.parametrize("photometric, bits", [("RGB", 8), ("MONOCHROME2", 8), ("MONOCHROME1", 8),
                                               ("MONOCHROME2", 16)])
def test_dicom_cine(tmp_path, photometric, bits):
    frames, _ = make_frames(5, 32, 40)
    path = write_dicom_cine(tmp_path / "cine.dcm", frames, photometric, bits)
    with open_source(path) as source:
        assert isinstance(source, DicomCineSource)
        assert (source.num_frames, source.frame_size, source.fps) == (5, (32, 40), 25.0)
        grey = frames[..., 0]
        expected = {"RGB": frames[3], "MONOCHROME2": np.repeat(grey[3][..., None], 3, 2),
                    "MONOCHROME1": np.repeat(255 - grey[3][..., None], 3, 2)}[photometric]
        assert np.array_equal(source.frame(3), expected)
        assert [i for i, _ in source.iter_frames()] == [0, 1, 2, 3, 4]
        assert "Doe" not in repr(source.metadata) and "PAT-123456" not in repr(source.metadata)


def test_dicom_compressed_without_decoder_is_a_clear_error(tmp_path):
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGLSLossless

    frames, _ = make_frames(2, 16, 16)
    path = write_dicom_cine(tmp_path / "jpegls.dcm", frames, "MONOCHROME2", 8, transfer_syntax=JPEGLSLossless,
                            pixel_data=b"\xff\xd8 not really JPEG-LS \xff\xd9")
    expected = "cannot decode" if not get_decoder(JPEGLSLossless).is_available else "cannot be decoded"
    with pytest.raises(SourceError, match=f"jpegls.dcm.*(JPEG-LS|{expected})"):
        open_source(path)


def test_dicom_without_pixel_data(tmp_path):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.save_as(tmp_path / "report.dcm", enforce_file_format=True)
    with pytest.raises(SourceError, match="report.dcm: this DICOM file has no pixel data"):
        open_source(tmp_path / "report.dcm")


def test_identity_is_content_based(tmp_path, frames_and_masks):
    frames = frames_and_masks[0]
    a = write_video(tmp_path / "a.avi", frames, fourcc="MJPG")
    b = tmp_path / "copy" / "renamed.avi"
    b.parent.mkdir()
    shutil.copy(a, b)
    os.utime(b, (1, 1))  # another mtime
    c = write_video(tmp_path / "c.avi", frames[::-1].copy(), fourcc="MJPG")
    identities = []
    for path in (a, b, c):
        with open_source(path) as source:
            identities.append(source.identity)
    assert identities[0] == identities[1] and identities[0].digest != identities[2].digest
    folder = write_frame_folder(tmp_path / "f", frames)
    with open_source(folder) as source:
        before = source.identity
    cv2.imwrite(str(folder / "6.png"), np.zeros((48, 64, 3), np.uint8))  # one frame changed
    with open_source(folder) as source:
        assert source.identity != before


def test_frame_cache_is_bounded_by_bytes():
    cache = FrameCache(max_bytes=3 * 1000)
    for i in range(10):
        cache.put(i, np.zeros(1000, np.uint8))
    assert len(cache) == 3 and cache.nbytes == 3000 and cache.get(9) is not None and cache.get(0) is None


def test_find_inputs_expands_folders(tmp_path, frames_and_masks):
    frames = frames_and_masks[0]
    (tmp_path / "night").mkdir()
    write_video(tmp_path / "night" / "b.avi", frames, fourcc="MJPG")
    write_frame_folder(tmp_path / "night" / "a_frames", frames[:3])
    (tmp_path / "night" / "b.avi.vivim").mkdir()  # a workspace is not an input
    found = find_inputs([tmp_path / "night"])
    assert [p.name for p in found] == ["a_frames", "b.avi"]
    with pytest.raises(SourceError, match="no video"):
        find_inputs([tmp_path / "night" / "b.avi.vivim"])
