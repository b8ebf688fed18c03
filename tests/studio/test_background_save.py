"""Durable saves on a background thread (`VideoDocument.save_in_background`, what the Studio uses): edits return
before the disk is done, at most one edit is ever unsaved, failures are reported and retried, close saves all.

The disk is a gate the test holds closed (`HeldSaves`): while a save waits at it, whatever returns has provably
not waited for that save; what must wait is seen waiting on the saver before the gate opens. No timing."""

from __future__ import annotations

import threading

import numpy as np

from vivim_studio.document import FrameStatus, VideoDocument
from vivim_studio.document.background_save import BackgroundSaver
from vivim_studio.document.workspace import Workspace

GATE_TIMEOUT_S = 60  # only reached when the code under test is wrong (it waited for a save held at the gate)


class HeldSaves:
    """Workspace.save_frame behind a gate: each save says it started, then waits until the test opens the gate.
    `saved`: (frame, status of frame `watch` when that save wrote) in order."""

    def __init__(self, monkeypatch, document: VideoDocument, watch: int = 1):
        self.started, self.gate = threading.Event(), threading.Event()
        self.saved: list[tuple[int, FrameStatus]] = []
        original = Workspace.save_frame

        def held(workspace, index, *args, **kwargs):
            self.started.set()
            self.gate.wait(GATE_TIMEOUT_S)
            original(workspace, index, *args, **kwargs)
            self.saved.append((index, document.status(watch)))

        monkeypatch.setattr(Workspace, "save_frame", held)


def test_edit_returns_before_its_save_and_the_next_waits_for_it(document, frame_folder, tmp_path, monkeypatch):
    saves = HeldSaves(monkeypatch, document, watch=1)
    waiting = threading.Event()  # a caller is waiting for the saver to be idle
    wait_idle = BackgroundSaver.wait_idle

    def announced_wait_idle(saver, timeout=None):
        waiting.set()
        return wait_idle(saver, timeout)

    monkeypatch.setattr(BackgroundSaver, "wait_idle", announced_wait_idle)
    document.save_in_background()
    assert document.paint_stroke(0, [(10, 10), (20, 12)], radius=3)  # returns while its save is held at the gate
    assert saves.started.wait(GATE_TIMEOUT_S) and saves.saved == []
    assert document.mask(0)[10, 10] and document.status(0) == FrameStatus.EDITED  # applied in memory

    waiting.clear()
    second = threading.Thread(target=document.accept, args=(1,))
    second.start()  # the next edit must wait for the stroke's save: never two edits unsaved
    assert waiting.wait(GATE_TIMEOUT_S)
    assert second.is_alive() and document.status(1) != FrameStatus.ACCEPTED  # waiting, not applied
    saves.gate.set()
    second.join(GATE_TIMEOUT_S)
    assert not second.is_alive() and document.status(1) == FrameStatus.ACCEPTED
    document.close()
    assert saves.saved[0] == (0, FrameStatus.UNREVIEWED)  # the stroke was on disk before frame 1 was accepted
    assert [frame for frame, _ in saves.saved] == [0, 1]
    with VideoDocument.open(frame_folder, tmp_path / "ws") as reopened:
        assert reopened.mask(0)[10, 10] and reopened.status(1) == FrameStatus.ACCEPTED


def test_scrubbing_never_waits_for_the_disk(document, monkeypatch):
    saves = HeldSaves(monkeypatch, document)
    document.save_in_background()
    document.paint_stroke(2, [(5, 5)], radius=2)  # its save is now held at the gate
    assert saves.started.wait(GATE_TIMEOUT_S)
    for index in (1, 3, 5, 7):  # the frames, masks and current frame of scrubbing, all while the disk is busy
        document.current_frame = index
        document.mask(index)
        document.frame(index)
    assert saves.saved == [] and document.current_frame == 7
    saves.gate.set()
    document.flush()
    assert saves.saved[0][0] == 2


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
    reported = threading.Event()
    document.events.save_failed.connect(lambda message: (messages.append(message), reported.set()))
    document.save_in_background()
    mask = np.zeros(document.frame_size, bool)
    mask[4:9, 4:9] = True
    assert document.set_mask(3, mask)  # returns at once; its save fails on the saver thread
    assert reported.wait(GATE_TIMEOUT_S) and "No space left" in messages[0]
    failing.clear()  # space freed: the next save writes the frame that failed too
    document.close()
    with VideoDocument.open(frame_folder, tmp_path / "ws") as reopened:
        assert np.array_equal(reopened.mask(3), mask)


def test_closing_joins_the_saver_thread(document):
    before = set(threading.enumerate())
    document.save_in_background()
    savers = [t for t in set(threading.enumerate()) - before if t.name == "vivim-save"]
    assert len(savers) == 1 and savers[0].is_alive()
    document.paint_stroke(0, [(3, 3)], radius=2)
    document.close()  # saves the stroke, stops the saver and joins its thread
    assert not savers[0].is_alive()
