"""Durable saves on a background thread (`VideoDocument.save_in_background`, what the Studio uses): edits return
before the disk is done, at most one edit is ever unsaved, failures are reported and retried, close saves all."""

from __future__ import annotations

import threading
import time

import numpy as np

from vivim_studio.document import FrameStatus, VideoDocument
from vivim_studio.document.workspace import Workspace

SLOW_S = 0.3


def _slow_saves(monkeypatch) -> list[tuple[int, float, float]]:
    """Every frame save takes SLOW_S; returns the (frame, start, end) log of the saves."""
    log: list[tuple[int, float, float]] = []
    original = Workspace.save_frame

    def slow(self, index, *args, **kwargs):
        start = time.monotonic()
        time.sleep(SLOW_S)
        original(self, index, *args, **kwargs)
        log.append((index, start, time.monotonic()))

    monkeypatch.setattr(Workspace, "save_frame", slow)
    return log


def test_edit_returns_before_its_save_and_waits_for_the_previous_one(document, frame_folder, tmp_path, monkeypatch):
    log = _slow_saves(monkeypatch)
    document.save_in_background()
    started = time.monotonic()
    assert document.paint_stroke(0, [(10, 10), (20, 12)], radius=3)
    first_returned = time.monotonic()
    assert first_returned - started < SLOW_S / 2  # applied in memory, not yet on disk
    assert document.mask(0)[10, 10] and document.status(0) == FrameStatus.EDITED
    assert document.accept(1)  # waits for the stroke's save first: never two edits unsaved
    second_returned = time.monotonic()
    assert log and log[0][0] == 0 and second_returned >= log[0][2]
    document.close()
    assert [frame for frame, _, _ in log] == [0, 1]
    with VideoDocument.open(frame_folder, tmp_path / "ws") as reopened:
        assert reopened.mask(0)[10, 10] and reopened.status(1) == FrameStatus.ACCEPTED


def test_scrubbing_never_waits_for_the_disk(document, monkeypatch):
    _slow_saves(monkeypatch)
    document.save_in_background()
    document.paint_stroke(2, [(5, 5)], radius=2)  # its save now runs for SLOW_S
    started = time.monotonic()
    for index in (1, 3, 5, 7):
        document.current_frame = index
        document.mask(index)
    assert time.monotonic() - started < SLOW_S / 2
    document.flush()


def test_a_failed_background_save_is_reported_and_written_later(document, frame_folder, tmp_path, monkeypatch):
    original = Workspace.save_frame
    failing = threading.Event()
    failing.set()

    def flaky(self, *args, **kwargs):
        if failing.is_set():
            raise OSError(28, "No space left on device")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Workspace, "save_frame", flaky)
    messages: list[str] = []
    document.events.save_failed.connect(messages.append)
    document.save_in_background()
    mask = np.zeros(document.frame_size, bool)
    mask[4:9, 4:9] = True
    assert document.set_mask(3, mask)
    document._wait_for_saves()
    assert messages and "No space left" in messages[0]
    failing.clear()  # space freed: the next save writes the frame that failed too
    document.close()
    with VideoDocument.open(frame_folder, tmp_path / "ws") as reopened:
        assert np.array_equal(reopened.mask(3), mask)


def test_closing_stops_the_saver_thread(document):
    document.save_in_background()
    thread_names = {t.name for t in threading.enumerate()}
    assert "vivim-save" in thread_names
    document.paint_stroke(0, [(3, 3)], radius=2)
    document.close()
    time.sleep(0.05)
    assert "vivim-save" not in {t.name for t in threading.enumerate()}
