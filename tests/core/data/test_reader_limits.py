"""Images and videos are untrusted: sizes come from the file's header and are checked before anything is
decoded or allocated, and a video's decoded frames are checked against what its container announces."""

from __future__ import annotations

import logging
import struct
import zlib

import cv2
import numpy as np
import pytest

import vivim_core.data.readers as readers
from vivim_core.cli import main
from vivim_core.data.layouts import find_prediction_inputs
from vivim_core.data.readers import DataError, VideoFileReader, image_size, read_frame, read_mask


def png_bomb(path, side=20000):
    """A 1-bit grey PNG of side x side pixels, all zero: a few tens of kB on disk, `side`^2 pixels decoded."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (side + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    return png_bomb(tmp_path_factory.mktemp("bomb") / "0001.png")


@pytest.mark.parametrize("reader", [read_frame, read_mask, image_size])
def test_a_decompression_bomb_is_refused_from_its_header(bomb, reader, monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(readers.cv2, "imdecode", no_decoding)
    assert bomb.stat().st_size < 2**20
    with pytest.raises(DataError, match=r"pixels.*more than the 100,000,000 accepted") as caught:
        reader(bomb)
    assert str(bomb) in str(caught.value)


def test_a_bomb_in_a_frame_folder_is_a_one_line_error(bomb, tmp_path, capsys):
    folder = tmp_path / "video"
    folder.mkdir()
    cv2.imwrite(str(folder / "0000.png"), np.zeros((32, 32, 3), np.uint8))
    (folder / "0001.png").write_bytes(bomb.read_bytes())
    with pytest.raises(DataError, match="0001.png"):
        find_prediction_inputs(folder)
    code = main(["predict", str(folder), "--checkpoint", str(tmp_path / "none.safetensors"), "--out",
                 str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "0001.png" in err and "pixels" in err


def test_a_named_pipe_among_images_is_refused_not_read(tmp_path):
    import os

    fifo = tmp_path / "mask.png"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="named pipe"):
        read_mask(fifo)


def test_the_pixel_limit_is_one_module_constant(tmp_path, monkeypatch):
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), np.zeros((40, 30, 3), np.uint8))
    assert read_frame(path).shape == (40, 30, 3)
    monkeypatch.setattr(readers, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(DataError, match=r"1,200 pixels \(30x40\), more than the 1,000 accepted"):
        read_frame(path)


# videos ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def avi(tmp_path_factory):
    """An 8-frame Motion-JPEG AVI and where its frame counts sit in the header."""
    path = tmp_path_factory.mktemp("video") / "scan.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(8):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    return path


def announcing(avi, path, frames):
    """A copy of `avi` whose headers (main header and stream header) announce `frames` frames."""
    data = bytearray(avi.read_bytes())
    main_header, stream_header = data.find(b"avih"), data.find(b"strh")
    data[main_header + 24:main_header + 28] = struct.pack("<I", frames)  # dwTotalFrames
    data[stream_header + 40:stream_header + 44] = struct.pack("<I", frames)  # dwLength
    path.write_bytes(data)
    assert VideoFileReader(path).num_frames in (frames, min(frames, readers.MAX_VIDEO_FRAMES + 1))
    return path


def test_an_absurd_frame_count_is_refused_before_anything_is_allocated(avi, tmp_path):
    with pytest.raises(DataError, match=r"announces 1,000,000,000 frames.*more than the .* accepted"):
        VideoFileReader(announcing(avi, tmp_path / "huge.avi", 10**9))


def test_an_absurd_resolution_is_refused_before_decoding(avi, monkeypatch):
    monkeypatch.setattr(readers, "MAX_IMAGE_PIXELS", 64 * 48 - 1)
    with pytest.raises(DataError, match=r"\(64x48\), more than the 3,071 accepted") as caught:
        VideoFileReader(avi)
    assert str(avi) in str(caught.value)


def test_fewer_frames_than_announced_is_a_clear_error(avi, tmp_path):
    video = announcing(avi, tmp_path / "short.avi", 20)
    with pytest.raises(DataError, match=r"ended after 8 of the 20 frames its container announces"):
        VideoFileReader(video).read_all()


def test_more_frames_than_announced_are_reported_never_dropped_silently(avi, tmp_path, caplog):
    video = announcing(avi, tmp_path / "long.avi", 5)
    reader = VideoFileReader(video)
    with caplog.at_level(logging.WARNING, logger=readers.__name__):
        frames = reader.read_all()
    assert len(frames) == 5 and reader.unread_frames == 1
    assert any("holds more than the 5 frames its container announces" in r.getMessage() and str(video) in r.getMessage()
               for r in caplog.records)


def test_predict_says_when_a_video_held_more_frames_than_announced(avi, tmp_path, capsys):
    import json

    import torch

    from vivim_core.engine.checkpoint import save_checkpoint
    from vivim_core.model import build_model

    torch.manual_seed(0)
    checkpoint = save_checkpoint(build_model("vivim-tiny", embed_dims=(8, 16, 32, 64), transformer_depths=(1,) * 4,
                                             temporal_depths=(1, 0, 0, 1), num_heads=(1,) * 4, decoder_dim=32),
                                 tmp_path / "tiny.safetensors")
    video = announcing(avi, tmp_path / "long.avi", 5)
    out = tmp_path / "pred"
    assert main(["predict", str(video), "--checkpoint", str(checkpoint), "--out", str(out), "--size", "64",
                 "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "warning" in captured.out and "holds more than the 5 frames" in captured.out
    assert len(list((out / "long").glob("*.png"))) == 5
    manifest = json.loads((out / "predictions.json").read_text())
    assert "holds more than the 5 frames" in manifest["videos"]["long"]["warning"]


class _FakeCapture:
    """A capture that decodes frames of changing sizes (what a damaged or spliced stream can do)."""

    def __init__(self, frames):
        self.frames = list(frames)

    def isOpened(self):
        return True

    def read(self):
        return (True, self.frames.pop(0)) if self.frames else (False, None)

    def grab(self):
        return bool(self.frames) and self.frames.pop(0) is not None

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_COUNT: 3, cv2.CAP_PROP_FRAME_WIDTH: 64, cv2.CAP_PROP_FRAME_HEIGHT: 48,
                cv2.CAP_PROP_FPS: 10}.get(prop, 0)

    def release(self):
        pass


def test_a_frame_of_another_size_is_named(avi, monkeypatch):
    sizes = [(48, 64), (48, 64), (96, 64)]
    monkeypatch.setattr(readers.cv2, "VideoCapture",
                        lambda _: _FakeCapture(np.zeros((*s, 3), np.uint8) for s in sizes))
    reader = VideoFileReader(avi)
    with pytest.raises(DataError, match=r"frame 2 is 64x96, the first frame 64x48"):
        reader.read_all()
