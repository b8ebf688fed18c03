"""Fixtures of the Studio document tests (no Qt anywhere)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import make_frames, write_frame_folder, write_video


@pytest.fixture
def frames_and_masks():
    return make_frames()


@pytest.fixture
def video_file(tmp_path, frames_and_masks) -> Path:
    return write_video(tmp_path / "clip.avi", frames_and_masks[0], fourcc="MJPG")


@pytest.fixture
def frame_folder(tmp_path, frames_and_masks) -> Path:
    return write_frame_folder(tmp_path / "frames", frames_and_masks[0])


@pytest.fixture
def document(frame_folder, tmp_path):
    """An open document (lossless PNG frame folder) with a workspace in tmp_path/ws."""
    from vivim_studio.document import VideoDocument

    doc = VideoDocument.open(frame_folder, tmp_path / "ws")
    yield doc
    doc.close()
