"""Crash and recovery of the whole app: the real Studio process (`gui_crash_driver.py`) is SIGKILLed while the
user paints, while proposals run, while it exports and while it fine-tunes, each time on a line of its journal
(a random number of edits, frames or steps into that work). After every kill:

* the workspace reopens, holds every frame write the process finished, each frame as it was or as it became
  (never half), and every edit the user finished except at most the latest (`crash_journal.Journal`);
* the next start of the app on the same workspace works (each kill's successor is that start);
* the export folder is the previous complete export or the new complete one, never a mix (after the
  recovery that the next export runs first: an interrupted commit is journaled), and no staging folder stays;
* a fine-tuning run's corrections folder is complete or absent, and each checkpoint it holds loads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from vivim_studio.document import FrameStatus, VideoDocument
from vivim_studio.document.export import STAGING_PREFIX, complete_interrupted_exports

from .crash_journal import Journal, document_fingerprints, read_vtus_export

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(sys.platform.startswith("win"), reason="SIGKILL is POSIX")]

ROOT = Path(__file__).resolve().parents[3]
DRIVER = Path(__file__).with_name("gui_crash_driver.py")
CHECKPOINT = ROOT / "resources" / "vivim-tiny-thyroid.safetensors"
START_TIMEOUT_S = 240  # app start, torch import, model load and the first training steps, on a loaded box


def make_video(folder: Path, frames: int = 40) -> Path:
    from vivim_core.data.synthetic import make_ultrasound_video, write_video_file

    images, _ = make_ultrasound_video(num_frames=frames, height=96, width=128, seed=3)
    return write_video_file(folder / "clip.avi", images, fps=10)


def prepare_workspace(video: Path, workspace: Path, reviewed: int) -> None:
    """A workspace with a lesion mask accepted on the first `reviewed` frames (what fine-tuning learns from)."""
    with VideoDocument.open(video, workspace) as document:
        h, w = document.frame_size
        yy, xx = np.mgrid[0:h, 0:w]
        for index in range(reviewed):
            document.set_mask(index, (xx - 40 - index) ** 2 + (yy - 48) ** 2 < 15 ** 2)
            document.accept(index)


def fingerprints(video: Path, workspace: Path) -> dict:
    with VideoDocument.open(video, workspace) as document:  # reopens (and drops a crash's leftovers) or raises
        return document_fingerprints(document)


@dataclass(frozen=True)
class KillAt:
    """When to kill: `count` lines starting with `prefix` after the first line starting with `marker` (count 0:
    at the marker), then `jitter_s` more: the event makes the kill land in the work under test whatever the
    machine's speed; the jitter only spreads the kills over that work (nothing asserted depends on it)."""

    marker: str
    prefix: str = ""
    count: int = 0
    jitter_s: float = 0.0

    def reached(self, lines: list[str]) -> bool:
        starts = [i for i, line in enumerate(lines) if line.startswith(self.marker)]
        if not starts:
            return False
        return sum(1 for line in lines[starts[0] + 1:] if line.startswith(self.prefix)) >= self.count


def run_and_kill(phase: str, video: Path, workspace: Path, out: Path, seed: int, kill: KillAt,
                 checkpoint: Path | None = None) -> list[str]:
    """Start the app in `phase`, SIGKILL it when `kill` is reached; returns the journal lines it printed."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(out / "cache"),
               XDG_DATA_HOME=str(out / "data"), XDG_CONFIG_HOME=str(out / "config"))
    env.pop("VIVIM_STUDIO_CHECKPOINT", None)
    command = [sys.executable, str(DRIVER), phase, str(video), str(workspace), str(out),
               str(checkpoint) if checkpoint else "-", str(seed)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    reached = threading.Event()

    def read() -> None:
        for line in process.stdout:
            lines.append(line.strip())
            if not reached.is_set() and kill.reached(lines):
                reached.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not reached.wait(START_TIMEOUT_S) or process.poll() is not None:
        process.kill()
        process.wait()
        raise AssertionError(f"{phase}: the app never got to {kill}: {lines[-5:]}\n{process.stderr.read()[-3000:]}")
    time.sleep(kill.jitter_s)
    process.send_signal(signal.SIGKILL)
    process.wait()
    reader.join(5)
    stderr = process.stderr.read()
    assert process.returncode == -signal.SIGKILL, f"{phase}: the app ended by itself: {lines[-5:]}\n{stderr[-3000:]}"
    errors = [line for line in lines if line.startswith("ERROR")]
    assert not errors and "Traceback" not in stderr, f"{phase}: the app reported errors: {errors}\n{stderr[-3000:]}"
    return lines


def check_workspace_after_kill(video: Path, workspace: Path, before: dict, lines: list[str]) -> dict:
    journal = Journal.parse(lines)
    after = fingerprints(video, workspace)
    problems = journal.check_workspace(before, after)
    assert not problems, "\n".join(problems)
    assert not [p.name for p in workspace.rglob(".*tmp-*")], "temp files survived the reopen"
    return after


@pytest.fixture
def setup(tmp_path):
    def make(reviewed: int = 0) -> tuple[Path, Path, Path]:
        video = make_video(tmp_path)
        workspace, out = tmp_path / "clip.vivim", tmp_path / "out"
        out.mkdir()
        prepare_workspace(video, workspace, reviewed)
        return video, workspace, out
    return make


def test_kill_while_painting(setup):
    video, workspace, out = setup()
    rng = np.random.default_rng(11)
    for iteration in range(3):
        before = fingerprints(video, workspace)
        after_edits = int(rng.integers(1, 5))
        kill = KillAt("READY", "E ", after_edits, float(rng.uniform(0.0, 0.3)))
        lines = run_and_kill("paint", video, workspace, out, iteration, kill)
        check_workspace_after_kill(video, workspace, before, lines)
        assert len(Journal.parse(lines).edits) >= after_edits


def test_kill_while_proposing(setup):
    video, workspace, out = setup(reviewed=2)
    rng = np.random.default_rng(12)
    for iteration in range(2):
        before = fingerprints(video, workspace)
        kill = KillAt("BUSY proposing", "P Proposing", int(rng.integers(1, 30)), float(rng.uniform(0.0, 0.2)))
        lines = run_and_kill("propose", video, workspace, out, 100 + iteration, kill, CHECKPOINT)
        check_workspace_after_kill(video, workspace, before, lines)
    with VideoDocument.open(video, workspace) as document:  # human work survived the model and the kills
        assert all(document.status(i) in (FrameStatus.ACCEPTED, FrameStatus.EDITED) for i in range(2))
        assert document.status_counts()[FrameStatus.PROPOSED] > 0


def test_kill_while_exporting(setup):
    video, workspace, out = setup(reviewed=4)
    root, rng = out / "export", np.random.default_rng(13)
    previous, in_flight, journaled = None, 0, 0
    for iteration in range(4):
        before = fingerprints(video, workspace)
        export, frames_written = int(rng.integers(0, 3)), int(rng.integers(1, 40))
        kill = KillAt(f"X {export} START", "P Exporting", frames_written, float(rng.uniform(0.0, 0.2)))
        lines = run_and_kill("export", video, workspace, out, 200 + iteration, kill)
        check_workspace_after_kill(video, workspace, before, lines)
        journal = Journal.parse(lines)
        last_done = max(journal.exports_done, default=None)
        allowed = {journal.export_starts[j] for j in journal.export_starts if last_done is None or j >= last_done}
        allowed |= {previous} if last_done is None else set()
        in_flight += max(journal.export_starts) not in journal.exports_done
        journaled += bool(root.is_dir() and list(root.glob(f"{STAGING_PREFIX}*.journal.json")))
        complete_interrupted_exports(root)  # what the next export does first
        if root.exists():
            exported, count = read_vtus_export(root)
            assert count == 40 and exported in allowed, f"iteration {iteration}: the export folder is a mix"
            previous = exported
        else:
            assert None in allowed, "a finished export vanished"
        staging = list(root.glob(f"{STAGING_PREFIX}*")) + list(out.glob(f".export{STAGING_PREFIX}*"))
        assert not staging, f"staging folders left behind: {staging}"
    print(f"\nexport kills: {in_flight} of 4 during an export, {journaled} during its journaled commit")
    assert in_flight >= 1, "no kill landed during an export"


def test_kill_while_finetuning(setup):
    from safetensors import safe_open

    from vivim_studio.services import is_vivim_checkpoint

    video, workspace, out = setup(reviewed=8)
    rng = np.random.default_rng(14)
    for iteration in range(2):
        before = fingerprints(video, workspace)
        steps = 0 if iteration == 0 else int(rng.integers(1, 8))  # while exporting the corrections; while training
        kill = KillAt("BUSY Fine-tuning", "P Fine-tuning", steps, float(rng.uniform(0.0, 0.5)))
        lines = run_and_kill("finetune", video, workspace, out, 300 + iteration, kill, CHECKPOINT)
        check_workspace_after_kill(video, workspace, before, lines)
    runs = list((out / "runs").iterdir())
    assert len(runs) == 2
    for run in runs:
        corrections = run / "corrections"
        if corrections.exists():  # written whole or not at all (a fresh folder appears in one rename)
            _, count = read_vtus_export(corrections)
            # the accepted frames but every 4th (held out to measure the model, never exported), and those
            # the user corrected meanwhile
            assert count >= 6
        for saved in run.rglob("*.safetensors"):  # model checkpoints, and the optimizer state beside the last
            assert saved.name.endswith(".optim.safetensors") or is_vivim_checkpoint(saved), saved
            with safe_open(str(saved), framework="numpy") as f:
                for name in f.keys():
                    f.get_tensor(name)  # every tensor readable: the file is complete
