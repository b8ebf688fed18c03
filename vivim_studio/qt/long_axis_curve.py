"""The long axis over the video, for the timeline: per frame, the longest long axis among its lesions, in mm
where a calibration backs it, else in pixels (a video's frames are all one or the other: a calibration the
file states for a region only leaves lesions outside it in pixels, and those frames then have no value).

    series = LongAxisSeries(); series.set_document(document)
    series.start()                    # measures a few frames at a time on the GUI thread's idle time
    series.values(), series.unit      # float (N,) with NaN where not measured or no lesion; "mm" | "px"
    series.invalidate(12)             # frame 12's mask changed (None: every frame, e.g. a new calibration)

Measuring a frame takes a few milliseconds (`measurements`), so the series is filled in slices that keep the
window responsive, and only while the curve is shown.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from ..document.report import measure_frames

SLICE_SECONDS = 0.03  # measuring time per event-loop turn


class LongAxisSeries(QObject):
    updated = Signal()  # more frames measured, or the unit changed
    finished = Signal()  # every frame measured

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.document = None
        self._mm = np.zeros(0)
        self._px = np.zeros(0)
        self._pending: set[int] = set()
        self._timer = QTimer(self, singleShot=True, interval=0)
        self._timer.timeout.connect(self._measure_slice)
        self.active = False

    def set_document(self, document) -> None:
        self.document = document
        count = document.num_frames if document is not None else 0
        self._mm, self._px = np.full(count, np.nan), np.full(count, np.nan)
        self._pending = set(range(count))
        self._schedule()

    def start(self) -> None:
        self.active = True
        self._schedule()

    def stop(self) -> None:
        self.active = False
        self._timer.stop()

    def invalidate(self, frame: int | None = None) -> None:
        if self.document is None:
            return
        if frame is None:
            self._pending = set(range(self.document.num_frames))
        elif 0 <= frame < len(self._mm):
            self._pending.add(frame)
        self._schedule()

    @property
    def complete(self) -> bool:
        return not self._pending

    @property
    def unit(self) -> str:
        return "mm" if np.isfinite(self._mm).any() else "px"

    def values(self) -> np.ndarray:
        return (self._mm if self.unit == "mm" else self._px).copy()

    def _schedule(self) -> None:
        if self.active and self._pending and not self._timer.isActive():
            self._timer.start()

    def _measure_slice(self) -> None:
        document = self.document
        if document is None or not self.active:
            return
        deadline = time.perf_counter() + SLICE_SECONDS
        while self._pending and time.perf_counter() < deadline:
            frame = min(self._pending)
            self._pending.discard(frame)
            rows = measure_frames(document, [frame])
            self._px[frame] = max((row.pixels.long_axis.length for row in rows), default=np.nan)
            mm = [row.long_axis_mm for row in rows if row.long_axis_mm is not None]
            self._mm[frame] = max(mm) if mm else np.nan
        self.updated.emit()
        if self._pending:
            self._timer.start()
        else:
            self.finished.emit()
