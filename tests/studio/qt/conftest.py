"""Fixtures of the GUI tests: small synthetic videos, a tiny checkpoint, and a main window isolated from the
user's settings (its own .ini, no modal dialogs, no background device probe)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised vivim-tiny saved as a Vivim checkpoint (the proposals are noise, the plumbing real)."""
    import vivim_core

    path = tmp_path_factory.mktemp("ckpt") / "vivim-tiny-test.safetensors"
    vivim_core.save_checkpoint(vivim_core.build_model("vivim-tiny"), path)
    return path


@pytest.fixture(scope="session")
def prompt_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised vivim-tiny with prompt inputs (`add_prompt_inputs`): clicks, boxes and learning
    rounds can use it."""
    import vivim_core
    from vivim_core.model import add_prompt_inputs

    path = tmp_path_factory.mktemp("ckpt") / "vivim-tiny-prompts.safetensors"
    vivim_core.save_checkpoint(add_prompt_inputs(vivim_core.build_model("vivim-tiny")), path)
    return path


def write_small_video(folder: Path, num_frames: int = 10, size: int = 64, seed: int = 0) -> Path:
    from vivim_core.data.synthetic import make_ultrasound_video, write_video_file

    frames, _ = make_ultrasound_video(num_frames=num_frames, height=size, width=size, seed=seed)
    return write_video_file(folder / "clip.avi", frames, fps=10)


@pytest.fixture
def small_video(tmp_path) -> Path:
    return write_small_video(tmp_path)


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch):
    """make_window(checkpoint=None, **options) -> a shown MainWindow; closed (jobs cancelled) after the test."""
    from vivim_studio.qt.main_window import MainWindow, StudioOptions

    monkeypatch.delenv("VIVIM_STUDIO_CHECKPOINT", raising=False)
    windows = []

    def make(checkpoint: Path | None = None, **overrides) -> MainWindow:
        options = dict(checkpoint=checkpoint, device="cpu", interactive=False, probe_device=False,
                       settings_file=tmp_path / "settings.ini", runs_dir=tmp_path / "runs",
                       inference=dict(size=(64, 64), batch_size=1), learning=dict(steps=1, seconds=None))
        options.update(overrides)
        window = MainWindow(StudioOptions(**options))
        qtbot.addWidget(window)
        window.resize(1200, 800)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


def open_video(qtbot, window, path: Path, workspace: Path | None = None):
    """Open `path` and wait until the document is shown."""
    assert window.open_path(path, workspace)
    qtbot.waitUntil(lambda: window.document is not None and not window.runner.busy, timeout=20_000)
    return window.document


def wait_idle(qtbot, window, timeout: int = 60_000) -> None:
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=timeout)


def drag(qtbot, canvas, points, button=None) -> None:
    """Press at the first image point, move through the others, release at the last (real mouse events on the
    canvas viewport, mapped from image pixel coordinates)."""
    from PySide6.QtCore import Qt

    button = button or Qt.MouseButton.LeftButton
    viewport = canvas.view.viewport()
    positions = [canvas.widget_point(x, y) for x, y in points]
    qtbot.mousePress(viewport, button, pos=positions[0])
    for position in positions[1:]:
        qtbot.mouseMove(viewport, position)
    qtbot.mouseRelease(viewport, button, pos=positions[-1])


def mask_pixels(document, index) -> int:
    return int(np.count_nonzero(document.mask(index)))


@pytest.fixture(autouse=True)
def _no_modal_dialogs(monkeypatch):
    """A modal dialog would wait forever for a click in a test: fail loudly instead."""
    from PySide6.QtWidgets import QDialog, QMessageBox

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"a modal dialog was opened in a test: {self.windowTitle()!r}")

    monkeypatch.setattr(QDialog, "exec", refuse)
    monkeypatch.setattr(QMessageBox, "exec", refuse)
