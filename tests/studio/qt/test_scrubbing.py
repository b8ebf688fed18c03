"""Changing frame on the fast path (frames decoded ahead on a background thread, overlays rewritten inside the
mask's bounding box) shows exactly the document's frame and mask; saves run off the GUI thread and a failed
one is told to the user, then written once the disk is back."""

from __future__ import annotations

import numpy as np

from vivim_studio.document import VideoDocument
from vivim_studio.document.workspace import Workspace

from .conftest import drag, open_video


def shown_fill(canvas, shape) -> np.ndarray:
    return np.array([[canvas.fill_item.pixel_is_set(x, y) for x in range(shape[1])] for y in range(shape[0])])


def test_every_frame_shows_its_image_and_mask_both_ways(make_window, small_video, qtbot):
    window = make_window()
    document = open_video(qtbot, window, small_video)
    h, w = document.frame_size
    for index, (x0, y0, size) in {2: (5, 6, 20), 3: (30, 30, 12), 5: (40, 2, 8)}.items():
        mask = np.zeros((h, w), bool)
        mask[y0:y0 + size, x0:x0 + size] = True
        document.set_mask(index, mask)
    canvas = window.canvas
    for index in [1, 2, 3, 4, 5, 6, 5, 4, 3, 2, 1, 0, 9, 3]:
        window.go_to(index)
        assert np.array_equal(canvas.frame_item.image, document.frame(index)), index
        assert np.array_equal(shown_fill(canvas, (h, w)), document.mask(index)), index
        outline = canvas.contour_item.path().boundingRect()
        if document.mask(index).any():
            ys, xs = np.nonzero(document.mask(index))
            assert (outline.left(), outline.top()) == (xs.min() + 0.5, ys.min() + 0.5)
        else:
            assert outline.isEmpty()


def test_the_next_frames_are_ready_before_they_are_asked_for(make_window, small_video, qtbot):
    window = make_window()
    open_video(qtbot, window, small_video)
    prefetcher = window.canvas._prefetcher
    window.go_to(1)
    qtbot.waitUntil(lambda: all(i in prefetcher._ready for i in range(2, 6)), timeout=10_000)
    hits = prefetcher.hits
    for index in range(2, 6):
        window.go_to(index)
    assert prefetcher.hits == hits + 4


def test_a_failed_save_is_told_and_written_later(make_window, small_video, qtbot, monkeypatch, tmp_path):
    window = make_window()
    document = open_video(qtbot, window, small_video, tmp_path / "ws")
    original = Workspace.save_frame

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Workspace, "save_frame", full_disk)
    drag(qtbot, window.canvas, [(20, 20), (30, 24)])
    painted = document.mask(0).copy()
    assert painted.any()  # the edit is in memory (and on screen) at once
    qtbot.waitUntil(lambda: any("No space left" in m for m in window.messages), timeout=10_000)
    monkeypatch.setattr(Workspace, "save_frame", original)  # space freed
    window.close()  # closing saves what is pending
    with VideoDocument.open(small_video, tmp_path / "ws") as reopened:
        assert np.array_equal(reopened.mask(0), painted)
