"""The entry point: `vivim-studio --demo --screenshot` headless smoke mode, the screenshot waiting for proposals,
friendly errors instead of tracebacks, and the view options."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QMessageBox

from vivim_studio.document import FrameStatus

from .conftest import drag, open_video, wait_idle

ROOT = Path(__file__).resolve().parents[3]


def test_demo_screenshot_smoke(tmp_path):
    """The real command, in a subprocess, off screen: generates the demo video, opens it, saves, exits 0."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CACHE_HOME=str(tmp_path / "cache"),
               XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               VIVIM_STUDIO_CHECKPOINT=str(tmp_path / "no-such-checkpoint.safetensors"))
    shot = tmp_path / "shot.png"
    done = subprocess.run([sys.executable, "-m", "vivim_studio.cli", "--demo", "--task", "polyp", "--screenshot",
                           str(shot)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    image = QImage(str(shot))
    assert image.width() >= 800 and image.height() >= 600
    assert list((tmp_path / "cache").rglob("polyp-demo.*"))
    assert "Traceback" not in done.stderr


def test_screenshot_waits_for_proposals(make_window, tiny_checkpoint, small_video, qtbot, tmp_path):
    from PySide6.QtCore import QTimer

    from vivim_studio.qt.app import _ScreenshotWhenSettled

    class FakeApp:
        code = None

        def exit(self, code):
            self.code = code

    window = make_window(checkpoint=tiny_checkpoint)
    window.document_opened.connect(window.propose)  # as --demo does
    app, shot = FakeApp(), tmp_path / "after-proposals.png"
    assert window.open_path(small_video)
    window.taker = _ScreenshotWhenSettled(window, shot, {"open_failed": False, "opening": True}, app, QTimer)
    qtbot.waitUntil(lambda: app.code is not None, timeout=60_000)
    assert app.code == 0 and shot.is_file()
    assert window.document is None  # the window closed after the shot ...
    assert any(m.startswith("Proposed 10 frame(s)") for m in window.messages)  # ... once proposals were done


def test_uncaught_errors_are_logged_and_shown_kindly(tmp_path, qtbot, monkeypatch):
    from vivim_studio.qt import error_reporting

    shown = []
    monkeypatch.setattr(QMessageBox, "exec", lambda box: shown.append((box.text(), box.informativeText())))
    root = logging.getLogger()
    handlers = list(root.handlers)
    try:
        log_file = error_reporting.setup_logging(tmp_path)
        error_reporting.set_interactive(True)
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            error_reporting._excepthook(*sys.exc_info())
    finally:
        error_reporting.set_interactive(True)
        for handler in root.handlers[len(handlers):]:
            handler.close()
            root.removeHandler(handler)
    text, advice = shown[0]
    assert "RuntimeError: boom" in text and "Traceback" not in text + advice
    assert "Your work is saved" in advice and str(log_file) in advice
    assert "Traceback" in log_file.read_text() and "boom" in log_file.read_text()


def test_heatmap_opacity_propagate_and_accept_range(make_window, small_video, qtbot):
    import numpy as np

    window = make_window()
    document = open_video(qtbot, window, small_video)
    document.set_proposal(0, np.full((64, 64), 0.2, np.float32), model="0" * 64)
    qtbot.keyClick(window, Qt.Key.Key_V)  # heat map on
    assert window.canvas.heat_item.isVisible() and window.canvas.heat_item.image is not None
    window.panel.opacity_slider.setValue(70)
    assert abs(window.canvas.fill_item.opacity() - 0.7) < 1e-6
    qtbot.keyClick(window, Qt.Key.Key_O)  # mask overlay off and on
    assert not window.canvas.contour_item.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_O)
    drag(qtbot, window.canvas, [(20, 30), (30, 30)])
    qtbot.keyClick(window, Qt.Key.Key_P)  # propagate by optical flow (worker thread)
    wait_idle(qtbot, window)
    assert document.status(5) == FrameStatus.PROPOSED and document.mask(5).any()
    assert window.accept_range(range(2, 6), include_edited=False)
    wait_idle(qtbot, window)
    assert [document.status(i) for i in range(1, 7)] == [FrameStatus.PROPOSED] + [FrameStatus.ACCEPTED] * 4 + [
        FrameStatus.PROPOSED]


def test_every_shortcut_is_unique_and_in_the_cheat_sheet():
    from PySide6.QtGui import QKeySequence

    from vivim_studio.qt.shortcuts import COMMANDS, cheat_sheet_html

    keys = [QKeySequence(k).toString() for c in COMMANDS for k in c.keys]
    assert len(keys) == len(set(keys)), "two commands share a shortcut: Qt would run neither"
    html = cheat_sheet_html()
    for command in COMMANDS:
        if command.keys:
            assert command.tip in html


def test_none_refcount_guard_survives_many_none_returning_qt_calls():
    """PySide6 6.12 on Python 3.11 loses a reference to None per void call: 100k calls would abort CPython
    ("none_dealloc") without the guard. In a subprocess, so that a failure cannot take the test run with it."""
    code = ("from vivim_studio.qt.compat import guard_none_refcount, none_refcount_leak_per_call\n"
            "guard_none_refcount()\n"
            "from PySide6.QtGui import QPainterPath\n"
            "path = QPainterPath()\n"
            "for i in range(100_000):\n"
            "    path.lineTo(i, i)\n"
            "print('leak per call', none_refcount_leak_per_call())\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert done.returncode == 0, done.stderr
