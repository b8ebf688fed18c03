"""Model jobs from the GUI: proposals run in a worker thread (the GUI thread shows the frames as they are
predicted), the no-checkpoint message, fine-tune then re-propose, threshold."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt

from vivim_studio.document import FrameStatus
from vivim_studio.services.finetune import FinetuneResult

from .conftest import drag, open_video, wait_idle, write_small_video

HANDSHAKE_FRAME = 20


def test_proposals_run_in_the_worker_while_the_gui_thread_shows_them(make_window, tiny_checkpoint, tmp_path, qtbot):
    """The model runs in the worker and the GUI thread shows each frame while the job still runs. The job checks
    it itself: right after writing HANDSHAKE_FRAME it waits until the GUI thread has shown that frame, which
    could never happen if the work blocked the GUI thread. (How late the event loop runs while proposing is a
    benchmark figure: benchmarks/gui_speed.py.)"""
    video = write_small_video(tmp_path, num_frames=60, size=64)
    window = make_window(checkpoint=tiny_checkpoint)
    document = open_video(qtbot, window, video)
    drag(qtbot, window.canvas, [(20, 20), (30, 30)])  # a human edit the proposals must keep
    human_mask = document.mask(0).copy()
    gui_thread = threading.get_ident()
    writer_threads, arrivals, handshakes = set(), [], []
    shown_on_gui = threading.Event()

    def written(index: int) -> None:  # the document's event: on the thread that wrote the proposal
        writer_threads.add(threading.get_ident())
        if index == HANDSHAKE_FRAME:
            handshakes.append(shown_on_gui.wait(60))

    def shown(index: int) -> None:  # the bridge's queued signal: on the GUI thread
        arrivals.append((index, threading.get_ident(), window.runner.busy))
        if index == HANDSHAKE_FRAME:
            shown_on_gui.set()

    document.events.probability_changed.connect(written)
    window.bridge.probability_changed.connect(shown)
    progress = []
    window.runner.progress.connect(lambda _title, done, total: progress.append((done, total)))
    with qtbot.waitSignal(window.proposals_finished, timeout=180_000):
        assert window.propose()
        assert window.status.progress.isVisible() and window.status.cancel_button.isVisible()

    assert handshakes == [True], "the GUI thread could not show a frame while the job ran"
    assert gui_thread not in writer_threads  # the model ran in the worker ...
    assert {t for _, t, _ in arrivals} == {gui_thread}  # ... and the views heard of it on the GUI thread
    assert (HANDSHAKE_FRAME, gui_thread, True) in arrivals  # shown while the job was still running
    assert sorted({i for i, _, _ in arrivals}) == list(range(60))
    assert progress[-1] == (60, 60) and len(progress) > 2
    counts = document.status_counts()
    assert counts[FrameStatus.PROPOSED] == 59 and counts[FrameStatus.EDITED] == 1
    assert np.array_equal(document.mask(0), human_mask)
    assert "CPU" in window.status.device_label.text()
    assert not window.status.progress.isVisible()
    assert np.isfinite(document.confidences()).all()
    assert window.timeline.confidence_curve.yData is not None


def test_cancel_keeps_finished_frames(make_window, tiny_checkpoint, tmp_path, qtbot):
    video = write_small_video(tmp_path, num_frames=40, size=64)
    window = make_window(checkpoint=tiny_checkpoint)
    document = open_video(qtbot, window, video)
    window.runner.progress.connect(lambda _t, done, _total: window.cancel_job() if done >= 5 else None)
    with qtbot.waitSignal(window.proposals_finished, timeout=120_000):
        assert window.propose()
    proposed = document.status_counts()[FrameStatus.PROPOSED]
    assert 5 <= proposed < 40
    assert "cancelled" in window.messages[-1]


def test_no_checkpoint_says_how_to_get_one(make_window, small_video, qtbot, monkeypatch):
    from vivim_studio.qt import model_jobs
    from vivim_studio.services import CheckpointNotFound

    def none(task=None):
        raise CheckpointNotFound("no default checkpoint installed")

    monkeypatch.setattr(model_jobs, "find_default_checkpoint", none)
    window = make_window()
    assert window.banner.isVisible() and "--checkpoint" in window.banner.text().replace("\u2060", "")
    assert "Model: none" in window.status.checkpoint_label.full_text()
    open_video(qtbot, window, small_video)
    qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert not window.runner.busy
    assert "no Vivim model checkpoint" in window.messages[-1] and "vivim-core train" in window.messages[-1]


def test_finetune_runs_in_the_worker_then_reproposes(make_window, small_video, tiny_checkpoint, qtbot, monkeypatch,
                                                     tmp_path):
    """The GUI flow around the fine-tune service (the service itself is tested without Qt): a run whose model
    could not become the workspace's (here: the fake does not adopt it) is loaded as the checkpoint."""
    from vivim_studio.services import finetune as finetune_service

    calls = {}

    def fake_finetune(document, checkpoint, run_dir, progress=None, cancel=None, **options):
        calls.update(thread=threading.get_ident(), checkpoint=checkpoint, options=options)
        for step in range(1, 4):
            progress(step, 3)
        return FinetuneResult(run_dir, run_dir / "corrections", [0], tiny_checkpoint, 3, "completed",
                              trained_frames=[0])

    monkeypatch.setattr(finetune_service, "finetune_on_corrections", fake_finetune)
    window = make_window(checkpoint=tiny_checkpoint)
    document = open_video(qtbot, window, small_video)
    drag(qtbot, window.canvas, [(20, 20), (30, 30)])
    qtbot.keyClick(window, Qt.Key.Key_A)
    with qtbot.waitSignal(window.proposals_finished, timeout=120_000):
        assert window.start_finetune(max_steps=3)
    assert calls["thread"] != threading.get_ident() and calls["options"]["max_steps"] == 3
    assert calls["checkpoint"] == tiny_checkpoint
    summary = next(m for m in window.messages if m.startswith("Fine-tuning finished after 3 step(s)"))
    assert "quality cannot be measured yet" in summary
    assert document.status(0) == FrameStatus.ACCEPTED
    assert document.status_counts()[FrameStatus.PROPOSED] == document.num_frames - 1


def test_threshold_slider_rethresholds_proposed_frames(make_window, small_video, qtbot):
    window = make_window()
    document = open_video(qtbot, window, small_video)
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))
    for index in range(3):
        document.set_proposal(index, ramp, model="0" * 64)
    before = int(document.mask(1).sum())
    window.panel.threshold_slider.setValue(80)
    window.panel.threshold_slider.sliderReleased.emit()
    wait_idle(qtbot, window)
    assert int(document.mask(1).sum()) < before and document.proposal_threshold == 0.8
    assert "3 proposed frame(s) changed" in window.messages[-1]


def test_task_picks_the_bundled_default_checkpoint(make_window, tiny_checkpoint, tmp_path, monkeypatch):
    import shutil

    from vivim_studio.qt import model_jobs

    defaults = {task: shutil.copy(tiny_checkpoint, tmp_path / f"vivim-tiny-{task}.safetensors")
                for task in ("thyroid", "polyp")}
    monkeypatch.setattr(model_jobs, "find_default_checkpoint", lambda task=None: Path(defaults[task or "thyroid"]))
    window = make_window()
    assert window.task == "thyroid" and window.checkpoint_path.name == "vivim-tiny-thyroid.safetensors"
    assert "(bundled default)" in window.status.checkpoint_label.full_text()
    window.actions_by_id["task_polyp"].trigger()
    assert window.checkpoint_path.name == "vivim-tiny-polyp.safetensors"
    assert make_window().task == "polyp"  # remembered (QSettings)
    window.set_checkpoint(tiny_checkpoint)  # a checkpoint the user chose is kept when the task changes
    window.set_task("thyroid")
    assert window.checkpoint_path == tiny_checkpoint


def test_a_runner_thread_ends_with_its_job(qtbot):
    """Closing waits for the running job (`JobRunner.wait`): the thread must end when the job returns, not
    later when the GUI thread next hears of it (the GUI thread is the one waiting)."""
    from vivim_studio.qt.workers import JobRunner

    release = threading.Event()
    runner = JobRunner()
    assert runner.start("Waiting", lambda progress, cancel: release.wait(60))
    release.set()
    assert runner.wait(60_000)  # returns as the job does (it would time out if the thread outlived it)
    qtbot.waitUntil(lambda: not runner.busy)


def test_closing_during_the_device_probe_waits_for_it(make_window, tiny_checkpoint):
    window = make_window(checkpoint=tiny_checkpoint, probe_device=True)  # imports torch in a worker thread
    assert window.device_probe is not None
    window.close()
    assert window.device_probe.wait(0), "the probe's thread outlived the window"
