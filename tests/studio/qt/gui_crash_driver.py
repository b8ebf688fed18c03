"""The Studio process of the whole-app crash test: starts the real app (`vivim_studio.qt.app.run_gui`, off
screen, on a video and its workspace) and works in it like a user until the test SIGKILLs it:

    python gui_crash_driver.py PHASE VIDEO WORKSPACE OUT_DIR CHECKPOINT SEED

PHASE   paint     brush and eraser strokes with the mouse, accept, undo, redo, lasso, frame changes (keys)
        propose   Model > Propose masks (Ctrl+P), painting on while the model runs
        export    File > Export again and again into OUT_DIR/export, a stroke between exports
        finetune  Model > Fine-tune (the job the dialog starts: export of the corrections, then training),
                  painting on meanwhile
It prints the journal described in `crash_journal` (the write journal comes from a wrapper around
`Workspace.save_frame`: the only test instrumentation; the app itself is unchanged).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from crash_journal import KEEP, frame_fingerprints, masks_fingerprint, sha  # noqa: E402


EXPORT_SIZE = (384, 512)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def journal_workspace_writes() -> None:
    """Print W before and K after every frame write of the workspace (any thread)."""
    import threading

    from vivim_studio.document import workspace as workspace_module
    from vivim_studio.document.workspace_format import PROBS_DIR

    original = workspace_module.Workspace.save_frame
    counter, lock = [0], threading.Lock()

    def save_frame(self, index, record, mask, probability=workspace_module.KEEP, durable=True):
        if probability is workspace_module.KEEP:
            name = self._files.get(index, (None, None))[1]
            probability_sha = sha((self.folder / PROBS_DIR / name).read_bytes()) if name else sha(None)
        else:
            probability_sha = sha(probability)
        fp, ufp = frame_fingerprints(mask, record, probability_sha)
        with lock:
            counter[0] += 1
            say(f"W {counter[0]} {index} {fp} {ufp}")
        original(self, index, record, mask, probability, durable)
        say(f"K {index}")

    workspace_module.Workspace.save_frame = save_frame
    assert KEEP  # the journal's name for KEEP writes is the probability hash itself


class Driver:
    """Runs `self.<phase>()`, a generator of waits (ms), on the GUI thread's event loop: no processEvents()."""

    def __init__(self, app, phase: str, out: Path, seed: int):
        self.app, self.phase, self.out = app, phase, out
        self.rng = np.random.default_rng(seed)
        self.window = None
        self.edits = 0
        self._history_events = 0

    def start(self) -> None:
        from vivim_studio.qt.main_window import MainWindow

        self.window = next(w for w in self.app.topLevelWidgets() if isinstance(w, MainWindow))
        self._run(self._main())

    def _run(self, steps) -> None:
        from PySide6.QtCore import QTimer

        def tick() -> None:
            try:
                delay = next(steps)
            except StopIteration:
                return
            QTimer.singleShot(int(delay), tick)

        tick()

    def _main(self):
        window = self.window
        while window.document is None or window.runner.busy:
            yield 20
        window.document.events.history_changed.connect(self._on_history)
        window.runner.progress.connect(lambda title, done, total: say(f"P {title}: {done}/{total}"))
        say("READY")
        yield from getattr(self, self.phase)()

    def _on_history(self, _frame: int) -> None:
        self._history_events += 1

    # user actions --------------------------------------------------------------------------------------
    def _edited(self, before: int) -> None:
        """After a user action: print E when it made an undo step (a user edit the document committed)."""
        if self._history_events > before:
            document = self.window.document
            frame = document.current_frame
            _, ufp = frame_fingerprints(document.masks.mask_bytes(frame), document.record(frame), "")
            say(f"E {self.edits} {frame} {ufp}")
            self.edits += 1

    def stroke(self, erase: bool = False, moves: int = 12):
        from PySide6.QtCore import QPoint, Qt
        from PySide6.QtTest import QTest

        canvas, before = self.window.canvas, self._history_events
        self.key(Qt.Key.Key_E if erase else Qt.Key.Key_B)
        h, w = self.window.document.frame_size
        x, y = self.rng.uniform(8, w - 8), self.rng.uniform(8, h - 8)
        viewport = canvas.view.viewport()
        QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         QPoint(canvas.widget_point(x, y)))
        for _ in range(moves):
            yield 8  # a mouse reports every 8 ms
            x, y = np.clip([x + self.rng.normal(0, 4), y + self.rng.normal(0, 4)], 0, [w - 1, h - 1])
            QTest.mouseMove(viewport, QPoint(canvas.widget_point(x, y)))
        yield 8
        QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                           QPoint(canvas.widget_point(x, y)))
        self._edited(before)

    def key(self, key, modifiers=None) -> None:
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest

        before = self._history_events
        QTest.keyClick(self.window, key, modifiers or Qt.KeyboardModifier.NoModifier)
        self._edited(before)

    def user_work(self, undo: bool = True):
        """One random action of an expert reviewing frames."""
        from PySide6.QtCore import Qt

        action = self.rng.choice(["stroke", "stroke", "stroke", "erase", "accept", "undo", "redo", "next", "back"])
        if action in ("undo", "redo") and not undo:
            action = "stroke"
        if action in ("stroke", "erase"):
            yield from self.stroke(erase=action == "erase")
        elif action == "accept":
            self.key(Qt.Key.Key_A)
        elif action == "undo":
            self.key(Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        elif action == "redo":
            self.key(Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
        else:
            self.key(Qt.Key.Key_Right if action == "next" else Qt.Key.Key_Left)
        yield int(self.rng.integers(5, 40))

    # phases ------------------------------------------------------------------------------------------
    def paint(self):
        while True:
            yield from self.user_work()

    def propose(self):
        from PySide6.QtCore import Qt

        busy = []
        self.window.runner.progress.connect(lambda *_: busy or (busy.append(1), say("BUSY proposing")))
        self.key(Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
        while True:  # the expert keeps correcting while proposals arrive (no undo: it could hand frames back)
            yield from self.user_work(undo=False)
            if not self.window.runner.busy and busy:
                self.key(Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)  # propose again (re-threshold etc.)

    def export(self):
        from vivim_studio.document.export import ExportOptions

        from vivim_studio.document.export import _resize

        window, root = self.window, self.out / "export"
        # every frame (the fingerprints cover them all), upscaled: an export lasts long enough to be hit
        options = ExportOptions(format="vtus", size=EXPORT_SIZE, selection="all")
        for j in range(10_000):
            document = window.document
            masks = [(i, _resize(document.mask(i), EXPORT_SIZE, mask=True)) for i in range(document.num_frames)]
            say(f"X {j} START {masks_fingerprint(masks)}")
            window.last_export = None
            assert window.export_to(root, options), window.messages[-1:]
            while window.runner.busy:
                yield 5
            assert window.last_export is not None, window.messages[-1:]
            say(f"X {j} DONE")
            yield from self.stroke(moves=2)  # the next export differs from this one

    def finetune(self):
        window = self.window  # the first training report takes minutes on a CPU: the kill window opens at the start
        window.runner.started.connect(lambda title: say(f"BUSY {title}"))
        assert window.start_finetune(max_steps=40, size=(64, 64), eval_every=5, batch_size=1), window.messages[-1:]
        while True:
            yield from self.user_work(undo=False)


def main() -> int:
    phase, video, workspace, out, checkpoint, seed = sys.argv[1:7]
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from vivim_studio.qt import error_reporting
    from vivim_studio.qt.app import run_gui

    app = QApplication(sys.argv[:1])
    journal_workspace_writes()
    error_reporting.show_error = lambda parent, title, text, *rest: say(f"ERROR {title}: {text}")  # never modal
    out = Path(out)
    driver = Driver(app, phase, out, int(seed))
    QTimer.singleShot(0, driver.start)
    argv = [video, "--workspace", workspace, "--device", "cpu"] + (["--checkpoint", checkpoint] if checkpoint != "-"
                                                                   else [])
    return run_gui(argv, interactive=False, probe_device=False, settings_file=out / "settings.ini",
                   runs_dir=out / "runs", inference=dict(size=(64, 64), batch_size=1))


if __name__ == "__main__":
    sys.exit(main())
