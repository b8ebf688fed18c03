"""The path rules every output and input goes through."""

from __future__ import annotations

import os

import pytest

from vivim_core.file_safety import (UnsafePathError, check_output_apart, confined, is_within, regular_file,
                                    safe_name)


@pytest.mark.parametrize("bad", ["", ".", "..", "../x", "a/b", "a\\b", "/abs", "C:", "x\x00y", " padded", "nul",
                                 "dot.", "x" * 201])
def test_safe_name_refuses_anything_but_one_plain_component(bad):
    with pytest.raises(UnsafePathError, match="--split"):
        safe_name(bad, "--split")


def test_safe_name_keeps_ordinary_names_including_non_latin_ones():
    for good in ("Train", "0002", "case-1.v2", "甲状腺"):
        assert safe_name(good, "name") == good


def test_confined_refuses_a_symlink_that_leads_out(tmp_path):
    root, outside = tmp_path / "out", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    assert confined(root, "Train", "a.png") == root / "Train" / "a.png"
    with pytest.raises(UnsafePathError, match="outside"):
        confined(root, "link", "a.png")
    with pytest.raises(UnsafePathError):
        confined(root, "..", "a.png")


def test_outputs_never_overlap_inputs(tmp_path):
    data = tmp_path / "data"
    (data / "Train").mkdir(parents=True)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x")
    for bad in (data, data / "Train" / "pred", tmp_path):
        with pytest.raises(UnsafePathError, match="overlaps"):
            check_output_apart(bad, [data])
    for bad in (tmp_path, tmp_path.parent, video):  # the video's own folder, a parent, the file itself
        with pytest.raises(UnsafePathError):
            check_output_apart(bad, [video])
    check_output_apart(tmp_path / "predictions", [data, video])
    assert is_within(data / "Train", data) and not is_within(tmp_path, data)


def test_regular_file_refuses_fifos_and_folders(tmp_path):
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(UnsafePathError, match="named pipe"):
        regular_file(fifo, "checkpoint")
    with pytest.raises(UnsafePathError, match="folder"):
        regular_file(tmp_path, "checkpoint")
    big = tmp_path / "big.bin"
    big.write_bytes(b"0" * 10)
    with pytest.raises(UnsafePathError, match="more than"):
        regular_file(big, "header", max_bytes=5)
    assert regular_file(big, "file") == big
