"""Plain-Python events (napari style): the document emits, views subscribe. No Qt here.

    doc.events.mask_changed.connect(lambda frame: redraw(frame))

Callbacks run synchronously on the thread that made the change (the proposal job's worker thread for
proposals): the Qt layer re-emits them as Qt signals, which Qt queues across threads. A callback that raises
is logged and does not stop the others, nor undo the change (which is already saved).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Signal:
    """One event type: `connect(callback)`, `disconnect(callback)`, `emit(*args)`."""

    def __init__(self, name: str, signature: str = ""):
        self.name = name
        self.signature = signature
        self._callbacks: list[Callable[..., Any]] = []
        self._lock = threading.Lock()

    def connect(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """Subscribe `callback` (also usable as a decorator); connecting twice is a no-op."""
        with self._lock:
            if callback not in self._callbacks:
                self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable[..., Any]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(*args)
            except Exception:  # a broken view must not break the model nor the other views
                log.exception("callback %r of event %s%s failed", callback, self.name, self.signature)

    def __repr__(self) -> str:
        return f"Signal({self.name}{self.signature}, {len(self._callbacks)} callbacks)"


class DocumentEvents:
    """The events of a `VideoDocument`.

    mask_changed(frame: int)                 the frame's mask changed (edit, undo, proposal, live stroke paint)
    probability_changed(frame: int)          a new probability map (a proposal) arrived for the frame
    status_changed(frame: int, status: FrameStatus)   review status or provenance changed
    current_frame_changed(frame: int)        the frame the user is looking at
    history_changed(frame: int)              undo/redo availability of the frame changed
    lesions_changed(frame: int)              the frame's lesions (ids, per-lesion status or origin) changed
    active_lesion_changed(lesion: int)       the lesion that edits act on changed
    save_failed(message: str)                a background save failed (`save_in_background`); the change
                                             stays in memory and is saved with the next one
    calibration_changed()                    the user's calibration line was set or cleared
    """

    def __init__(self) -> None:
        self.mask_changed = Signal("mask_changed", "(frame)")
        self.probability_changed = Signal("probability_changed", "(frame)")
        self.status_changed = Signal("status_changed", "(frame, status)")
        self.current_frame_changed = Signal("current_frame_changed", "(frame)")
        self.history_changed = Signal("history_changed", "(frame)")
        self.lesions_changed = Signal("lesions_changed", "(frame)")
        self.active_lesion_changed = Signal("active_lesion_changed", "(lesion)")
        self.save_failed = Signal("save_failed", "(message)")
        self.calibration_changed = Signal("calibration_changed", "()")
