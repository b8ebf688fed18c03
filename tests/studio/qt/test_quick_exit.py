"""The real app, started on a video with a checkpoint and left early (the window closed while the video
opens, the device probe imports torch, or proposals run; or `--screenshot`, which closes as soon as the view
has settled) exits 0: no job or probe thread outlives the window ("QThread: Destroyed while thread is still
running" aborted the process before). Each run is a subprocess, as a user's is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import write_small_video

ROOT = Path(__file__).resolve().parents[3]
DRIVER = Path(__file__).with_name("quick_exit_driver.py")


@pytest.fixture
def isolated_env(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CACHE_HOME=str(tmp_path / "cache"),
               XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               PYTHONPATH=str(ROOT))
    env.pop("VIVIM_STUDIO_CHECKPOINT", None)
    return env


def check_clean_exit(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, f"exit code {done.returncode}\n{done.stderr[-4000:]}"
    assert "QThread: Destroyed" not in done.stderr and "Traceback" not in done.stderr, done.stderr[-4000:]


@pytest.mark.parametrize("when", ["start", "opened", "propose"])
def test_closing_early_exits_cleanly(tmp_path, tiny_checkpoint, isolated_env, when):
    video = write_small_video(tmp_path)
    done = subprocess.run([sys.executable, str(DRIVER), str(video), str(tiny_checkpoint),
                           str(tmp_path / "settings.ini"), when], env=isolated_env, cwd=ROOT, capture_output=True,
                          text=True, timeout=180)
    check_clean_exit(done)


def test_screenshot_of_a_video_with_a_checkpoint_exits_cleanly_every_time(tmp_path, tiny_checkpoint, isolated_env):
    video = write_small_video(tmp_path)
    for attempt in range(2):
        shot = tmp_path / f"shot-{attempt}.png"
        done = subprocess.run([sys.executable, "-m", "vivim_studio.cli", str(video), "--checkpoint",
                               str(tiny_checkpoint), "--device", "cpu", "--screenshot", str(shot)],
                              env=isolated_env, cwd=ROOT, capture_output=True, text=True, timeout=180)
        check_clean_exit(done)
        assert shot.is_file()
