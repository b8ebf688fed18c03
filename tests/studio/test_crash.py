"""Crash safety: a process editing a workspace is SIGKILLed many times, each time right after it reported a
random number of edits complete, while it performs the next one. Every time the workspace must reopen, hold
every edit the process reported complete, and at most the one edit in progress more (never a half-written
one): exactly the state after k or k + 1 edits of the replayed sequence."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vivim_studio.document import VideoDocument

from .crash_editor import fingerprint, perform_edit
from .helpers import make_frames, write_frame_folder

KILLS = 16
START_TIMEOUT_S = 120  # the editor's start and its first edits, on a loaded CI machine
CHILD = Path(__file__).with_name("crash_editor.py")


def run_and_kill(video: Path, workspace: Path, seed: int, after_edits: int, jitter_s: float) -> int:
    """Start the editor, SIGKILL it `jitter_s` after it reported edit number `after_edits` complete (it is then
    somewhere in the next ones: the jitter spreads the kills over their computing and writing, and nothing
    asserted depends on it); returns the number of edits it reported complete."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    process = subprocess.Popen([sys.executable, str(CHILD), str(video), str(workspace), str(seed)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    reached = threading.Event()

    def read() -> None:
        for line in process.stdout:
            lines.append(line.strip())
            if line.strip() == f"DONE {after_edits}":
                reached.set()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not reached.wait(START_TIMEOUT_S):
        process.kill()
        raise AssertionError(f"editor never reported edit {after_edits}: {lines[-3:]} {process.stderr.read()}")
    time.sleep(jitter_s)
    process.send_signal(signal.SIGKILL)
    process.wait()
    reader.join(5)
    if lines[0] != "READY" or process.returncode != -signal.SIGKILL:
        raise AssertionError(f"editor failed by itself (not killed): {lines[-3:]} {process.stderr.read()}")
    return sum(1 for line in lines if line.startswith("DONE"))


def replay(video: Path, start_copy: Path, seed: int, edits: int) -> tuple[list, list]:
    """Fingerprints after `edits` and after `edits + 1` edits, replayed from the iteration's start state."""
    with VideoDocument.open(video, start_copy) as doc:
        for n in range(edits):
            perform_edit(doc, seed, n)
        after_k = fingerprint(doc)
        perform_edit(doc, seed, edits)
        return after_k, fingerprint(doc)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform.startswith("win"), reason="SIGKILL is POSIX")
def test_sigkill_at_random_moments_never_loses_a_completed_edit(tmp_path):
    video = write_frame_folder(tmp_path / "video", make_frames(8, 40, 48)[0])
    workspace = tmp_path / "ws"
    VideoDocument.open(video, workspace).close()
    rng = np.random.default_rng(1234)
    for iteration in range(KILLS):
        start_copy = tmp_path / f"start-{iteration}"
        shutil.copytree(workspace, start_copy, ignore=shutil.ignore_patterns(".lock"))
        after_edits, jitter_s = int(rng.integers(0, 12)), float(rng.uniform(0.0, 0.05))
        completed = run_and_kill(video, workspace, iteration, after_edits, jitter_s)
        assert completed > after_edits
        with VideoDocument.open(video, workspace) as doc:  # must always reopen (and cleans leftovers)
            on_disk = fingerprint(doc)
        after_k, after_k1 = replay(video, start_copy, iteration, completed)
        assert on_disk in (after_k, after_k1), f"iteration {iteration}: {completed} edits reported, state differs"
        shutil.rmtree(start_copy)
        leftovers = [p.name for p in workspace.rglob(".*tmp-*")]
        assert not leftovers, leftovers
