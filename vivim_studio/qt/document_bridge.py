"""Re-emits the document model's plain-Python events as Qt signals, so views update on the GUI thread.

The document calls its subscribers on whatever thread made the change: the GUI thread for edits, a worker
thread for proposals, propagation and re-thresholding. `DocumentBridge` lives on the GUI thread; a Qt signal
emitted from a worker thread reaches its GUI-thread slots through the event queue (Qt's automatic queued
connection), never directly. The document itself is thread-safe (one lock), so the views read it freely.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from ..document import VideoDocument


class DocumentBridge(QObject):
    mask_changed = Signal(int)
    probability_changed = Signal(int)
    status_changed = Signal(int)
    current_frame_changed = Signal(int)
    history_changed = Signal(int)
    save_failed = Signal(str)  # from the document's background saver thread
    calibration_changed = Signal()  # the user's calibration line was set or removed
    lesions_changed = Signal(int)  # a frame's lesions (ids, per-lesion status) changed
    active_lesion_changed = Signal(int)

    def __init__(self, document: VideoDocument, parent: QObject | None = None):
        super().__init__(parent)
        self.document = document
        events = document.events
        self._subscriptions = [
            (events.mask_changed, self.mask_changed.emit),
            (events.probability_changed, self.probability_changed.emit),
            (events.status_changed, lambda frame, _status: self.status_changed.emit(frame)),
            (events.current_frame_changed, self.current_frame_changed.emit),
            (events.history_changed, self.history_changed.emit),
            (events.save_failed, self.save_failed.emit),
            (events.calibration_changed, self.calibration_changed.emit),
            (events.lesions_changed, self.lesions_changed.emit),
            (events.active_lesion_changed, self.active_lesion_changed.emit),
        ]
        for event, callback in self._subscriptions:
            event.connect(callback)

    def disconnect_document(self) -> None:
        """Stop listening (before the document is closed and the bridge dropped)."""
        for event, callback in self._subscriptions:
            event.disconnect(callback)
        self._subscriptions = []
