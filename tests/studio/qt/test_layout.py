"""The window at laptop size and without a display: it fits a 1366x768 screen with the tool panel whole, the
timeline numbers frames from 1 like the frame label, long status messages stay readable, and a start without a
display ends with a message that says what to do (exit 2), not with Qt's abort."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSize

from vivim_studio.qt.display import display_problem, platform_failure_message
from vivim_studio.qt.main_window import initial_size
from vivim_studio.qt.timeline import FrameAxis

from .conftest import open_video

ROOT = Path(__file__).resolve().parents[3]
LAPTOP = QSize(1366, 768 - 40)  # the screen a 1366x768 laptop leaves above its task bar


def ticks(axis: FrameAxis, low: float, high: float, pixels: float = 800) -> list[float]:
    return sorted(v for _spacing, values in axis.tickValues(low, high, pixels) for v in values)


def test_window_fits_a_1366x768_laptop_with_the_tool_panel_whole(make_window, small_video, qtbot):
    window = make_window()
    open_video(qtbot, window, small_video)
    size = initial_size(LAPTOP)
    assert size.width() <= 1366 - 16 and size.height() <= 768 - 40 - 40  # room for the title bar and borders
    minimum = window.minimumSizeHint()
    assert minimum.width() <= size.width() and minimum.height() <= size.height(), minimum
    window.resize(size)
    qtbot.waitUntil(lambda: window.size() == size)
    scroll = window.panel_scroll

    def panel_shown_whole() -> bool:  # once laid out at the new size, the panel needs no scrolling
        return scroll.viewport().height() < size.height() and scroll.verticalScrollBar().maximum() == 0

    qtbot.waitUntil(panel_shown_whole)
    assert window.panel.accept_button.isVisible() and window.timeline.isVisible()
    assert initial_size(QSize(2560, 1400)) == QSize(1500, 940)  # a large screen gets the preferred size


def test_timeline_axis_numbers_frames_from_one(make_window, small_video, qtbot):
    window = make_window()
    open_video(qtbot, window, small_video)
    assert window.timeline.position_label.text().startswith("Frame <b>1</b> / 10")
    axis = window.timeline.strip.getAxis("bottom")
    low, high = window.timeline.strip.vb.viewRange()[0]
    shown = ticks(axis, low, high)
    assert shown[0] == 1 and shown[-1] <= 10 and all(v.is_integer() for v in shown), shown

    long_video = FrameAxis()
    long_video.set_frame_count(1000)
    shown = ticks(long_video, -19.5, 1020.5)  # the whole video with the view's margins
    assert shown[0] == 1 and 0 not in shown and shown[-1] <= 1000, shown
    assert 200 in shown and 1000 in shown  # round numbers beyond the first frame
    zoomed = ticks(long_video, 2.3, 4.6)  # a few frames: whole frame numbers only
    assert zoomed == [3.0, 4.0]


def test_a_long_status_message_is_elided_with_the_whole_text_in_its_tooltip(make_window, small_video, qtbot):
    window = make_window()
    window.resize(initial_size(LAPTOP))
    open_video(qtbot, window, small_video)
    label = window.status.message_label
    long = "Opened clip.avi: 10 frames of 64x64, workspace " + "/very/long/folder/name" * 20 + "/clip.avi.vivim"
    window.tell(long)
    fields = (window.status.counts_label, window.status.device_label, window.status.saved_label)
    qtbot.waitUntil(lambda: label.is_elided() and all(f.width() >= f.sizeHint().width() for f in fields))  # laid out
    assert label.toolTip() == long and label.text().endswith("…")
    assert label.width() > 200  # the message has room, and no field is cut off
    window.tell("Saved.")
    assert label.text() == "Saved." and not label.is_elided() and label.toolTip() == ""


def test_display_problem_only_when_linux_has_no_display():
    assert display_problem({}, "linux") is not None
    assert display_problem({"DISPLAY": ":0"}, "linux") is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert display_problem({}, "darwin") is None and display_problem({}, "win32") is None
    text = platform_failure_message("xcb", ["could not connect to display :9"])
    assert "cannot be reached" in text and "Qt: could not connect to display :9" in text


def _environment_without_display() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    return dict(env, PYTHONPATH=str(ROOT))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY / WAYLAND_DISPLAY are Linux's")
def test_starting_without_a_display_says_what_to_do(tmp_path):
    done = subprocess.run([sys.executable, "-m", "vivim_studio.cli", str(tmp_path / "clip.mp4")],
                          env=_environment_without_display(), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "no display" in done.stderr and "QT_QPA_PLATFORM=offscreen" in done.stderr
    assert "--screenshot" in done.stderr and "apt-get install" in done.stderr
    assert "Traceback" not in done.stderr and "qt.qpa" not in done.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb platform is Linux's")
def test_an_unreachable_x_display_ends_with_a_message_not_an_abort(tmp_path):
    env = dict(_environment_without_display(), QT_QPA_PLATFORM="xcb", DISPLAY=":197")  # no X server there
    done = subprocess.run([sys.executable, "-m", "vivim_studio.cli", str(tmp_path / "clip.mp4")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Qt could not start its 'xcb' platform" in done.stderr and "QT_QPA_PLATFORM=offscreen" in done.stderr
    assert "Traceback" not in done.stderr
