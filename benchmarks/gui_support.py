"""Harness of the GUI benchmarks (`gui_speed.py`): the real main window, a clock on its paints, an event loop
that waits without `processEvents()` pumping, statistics and the JSON record.

Timing "to screen": `PaintClock` wraps pyqtgraph's `GraphicsView.paintEvent`, so a change counts as shown when
the canvas view has painted it into the window's backing store. Off screen that is the whole way; under Xvfb
the X server copy follows (not timed; it is the same for every build of the app).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

MB = 2**20


class PaintClock:
    """Calls `on_paint(view, t_end)` after every paint of a pyqtgraph view; counts the paints per view."""

    def __init__(self):
        import pyqtgraph as pg

        self.listeners: list[Callable[[object, float], None]] = []
        self.counts: dict[int, int] = {}
        original = pg.GraphicsView.paintEvent
        clock = self

        def paint_event(view, event):
            result = original(view, event)
            now = time.perf_counter()
            clock.counts[id(view)] = clock.counts.get(id(view), 0) + 1
            for listener in list(clock.listeners):
                listener(view, now)
            return result

        pg.GraphicsView.paintEvent = paint_event

    def count(self, view) -> int:
        return self.counts.get(id(view), 0)


def run_until(predicate: Callable[[], bool], timeout_s: float, poll_ms: int = 2) -> bool:
    """Run the Qt event loop until predicate() holds (True) or the timeout (False)."""
    from PySide6.QtCore import QEventLoop, QTimer

    if predicate():
        return True
    loop, timer, deadline = QEventLoop(), QTimer(), time.monotonic() + timeout_s
    timer.timeout.connect(lambda: loop.quit() if predicate() or time.monotonic() > deadline else None)
    timer.start(poll_ms)
    loop.exec()
    timer.stop()
    return predicate()


def make_app():
    """The QApplication configured as `vivim-studio` configures it."""
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from vivim_studio.qt.compat import guard_none_refcount
    from vivim_studio.qt.theme import apply_dark_theme

    guard_none_refcount()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)
    apply_dark_theme(app)
    return app


def make_window(workdir: Path, checkpoint: Path | None, device: str, width: int = 1500, height: int = 940):
    from vivim_studio.qt.main_window import MainWindow, StudioOptions

    window = MainWindow(StudioOptions(checkpoint=checkpoint, device=device, interactive=False, probe_device=False,
                                      settings_file=workdir / "settings.ini", runs_dir=workdir / "runs"))
    window.resize(width, height)
    window.show()
    return window


def stats_ms(seconds: list[float] | np.ndarray) -> dict[str, float]:
    ms = np.asarray(seconds, dtype=np.float64) * 1000
    if ms.size == 0:
        return {"n": 0}
    return {"n": int(ms.size), "p50": round(float(np.percentile(ms, 50)), 2),
            "p90": round(float(np.percentile(ms, 90)), 2), "p99": round(float(np.percentile(ms, 99)), 2),
            "max": round(float(ms.max()), 2), "mean": round(float(ms.mean()), 2)}


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / MB


def machine_info() -> dict:
    import cv2
    import psutil
    import PySide6
    import pyqtgraph
    from PySide6.QtGui import QGuiApplication

    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), platform.processor())
    except OSError:
        model = platform.processor()
    return {"host": platform.node(), "platform": platform.platform(), "cpu": model, "cpu_count": os.cpu_count(),
            "load_avg_at_start": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "ram_gb": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
            "pyside6": PySide6.__version__, "pyqtgraph": pyqtgraph.__version__, "opencv": cv2.__version__,
            "qt_platform": QGuiApplication.platformName(), "display": os.environ.get("DISPLAY")}


def write_record(path: Path, benchmark: str, config: dict, results: dict, machine: dict) -> dict:
    record = {"benchmark": benchmark, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine, "config": config,
              "results": results}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return record
