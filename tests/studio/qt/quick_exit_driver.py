"""Starts the real app (`vivim_studio.qt.app.run_gui`, off screen) on a video with a checkpoint and closes its
window early, the way a user who changes their mind does:

    python quick_exit_driver.py VIDEO CHECKPOINT SETTINGS_FILE WHEN

WHEN    start     as soon as the event loop runs (the video is opening, the device probe imports torch)
        opened    right after the video opened
        propose   right after Model > Propose masks started
The process must exit 0 with no "QThread: Destroyed while thread is still running" abort.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from vivim_studio.qt.app import run_gui

    video, checkpoint, settings, when = sys.argv[1:5]
    app = QApplication(sys.argv[:1])

    def windows():
        return [w for w in app.topLevelWidgets() if type(w).__name__ == "MainWindow"]

    def close_all() -> None:
        for window in windows():
            window.close()

    def arm() -> None:  # runs once the window exists (the first turn of the event loop)
        window = windows()[0]
        if when == "start":
            close_all()
        elif when == "opened":
            window.document_opened.connect(lambda: QTimer.singleShot(0, close_all))
        else:
            window.document_opened.connect(lambda: (window.propose(), QTimer.singleShot(0, close_all)))

    QTimer.singleShot(0, arm)
    return run_gui([video, "--checkpoint", checkpoint, "--device", "cpu"], interactive=False,
                   settings_file=Path(settings), inference=dict(size=(64, 64), batch_size=1))


if __name__ == "__main__":
    sys.exit(main())
