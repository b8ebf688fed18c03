"""Model jobs from the GUI: proposals run in a worker thread (the event loop stays responsive, frames arrive on
the GUI thread as they are predicted), the no-checkpoint message, fine-tune then re-propose, threshold."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer

from vivim_studio.document import FrameStatus
from vivim_studio.services.finetune import FinetuneResult

from .conftest import drag, open_video, wait_idle, write_small_video

TIMER_MS = 5


def test_propose_in_worker_keeps_event_loop_responsive(make_window, tiny_checkpoint, tmp_path, qtbot):
    video = write_small_video(tmp_path, num_frames=60, size=64)
    window = make_window(checkpoint=tiny_checkpoint)
    document = open_video(qtbot, window, video)
    drag(qtbot, window.canvas, [(20, 20), (30, 30)])  # a human edit the proposals must keep
    human_mask = document.mask(0).copy()
    gui_thread = threading.get_ident()
    model_threads, arrivals = set(), []
    document.events.probability_changed.connect(lambda i: model_threads.add(threading.get_ident()))
    window.bridge.probability_changed.connect(
        lambda i: arrivals.append((i, threading.get_ident(), window.runner.busy)))
    progress = []
    window.runner.progress.connect(lambda _title, done, total: progress.append((done, total)))

    ticks = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TIMER_MS)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    with qtbot.waitSignal(window.proposals_finished, timeout=180_000):
        timer.start()
        assert window.propose()
        assert window.status.progress.isVisible() and window.status.cancel_button.isVisible()
    timer.stop()

    lateness_ms = np.diff(ticks) * 1000 - TIMER_MS
    p50, p99, worst = np.percentile(lateness_ms, 50), np.percentile(lateness_ms, 99), lateness_ms.max()
    report = {"event_loop_lateness_ms": {"p50": round(float(p50), 2), "p99": round(float(p99), 2),
                                        "max": round(float(worst), 2)}, "ticks": len(ticks),
              "seconds": round(ticks[-1] - ticks[0], 2), "frames": 60, "size": "64x64", "model": "vivim-tiny",
              "device": "cpu", "cpus": os.cpu_count()}
    print("\nevent-loop latency while proposing:", json.dumps(report))
    (tmp_path / "latency.json").write_text(json.dumps(report))
    assert len(ticks) > 50, "the job ended too fast to measure anything"
    assert p99 < 50, report

    assert gui_thread not in model_threads  # the model ran in the worker ...
    assert {t for _, t, _ in arrivals} == {gui_thread}  # ... and the views heard of it on the GUI thread
    assert sorted({i for i, _, _ in arrivals}) == list(range(60))
    assert sum(busy for _, _, busy in arrivals) > 30  # frames filled in while the job ran, not at the end
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
    assert window.banner.isVisible() and "--checkpoint" in window.banner.text()
    assert "Model: none" in window.status.checkpoint_label.text()
    open_video(qtbot, window, small_video)
    qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert not window.runner.busy
    assert "no Vivim model checkpoint" in window.messages[-1] and "vivim-core train" in window.messages[-1]


def test_finetune_then_offer_to_repropose(make_window, small_video, tiny_checkpoint, qtbot, monkeypatch, tmp_path):
    """The GUI flow around the fine-tune service (the service itself is tested without Qt)."""
    from vivim_studio.services import finetune as finetune_service

    calls = {}

    def fake_finetune(document, checkpoint, run_dir, progress=None, cancel=None, **options):
        calls.update(thread=threading.get_ident(), checkpoint=checkpoint, options=options)
        for step in range(1, 4):
            progress(step, 3)
        return FinetuneResult(run_dir, run_dir / "corrections", [0], tiny_checkpoint, 3, "completed", 0.9)

    monkeypatch.setattr(finetune_service, "finetune_on_corrections", fake_finetune)
    window = make_window(checkpoint=tiny_checkpoint)
    document = open_video(qtbot, window, small_video)
    drag(qtbot, window.canvas, [(20, 20), (30, 30)])
    qtbot.keyClick(window, Qt.Key.Key_A)
    monkeypatch.setattr(window, "confirm", lambda title, question: "re-propose" in question)
    with qtbot.waitSignal(window.proposals_finished, timeout=120_000):
        assert window.start_finetune(max_steps=3)
    assert calls["thread"] != threading.get_ident() and calls["options"]["max_steps"] == 3
    assert any("Fine-tuning finished after 3 step(s)" in m for m in window.messages)
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
    assert "(bundled default)" in window.status.checkpoint_label.text()
    window.actions_by_id["task_polyp"].trigger()
    assert window.checkpoint_path.name == "vivim-tiny-polyp.safetensors"
    assert make_window().task == "polyp"  # remembered (QSettings)
    window.set_checkpoint(tiny_checkpoint)  # a checkpoint the user chose is kept when the task changes
    window.set_task("thyroid")
    assert window.checkpoint_path == tiny_checkpoint
