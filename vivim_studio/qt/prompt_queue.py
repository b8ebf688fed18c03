"""The Prompt tool's worker: clicks and boxes go to the model one at a time, in the order the user made them,
on a thread of their own, so the GUI never waits for the model and a click made while another computes is
queued, not lost.

    queue = PromptQueue(parent)
    queue.finished.connect(show_outcome)                  # on the GUI thread, in submission order
    queue.submit(request, lambda: assist.click(document, frame, x, y, True))

It is separate from the window's `JobRunner` (one long job at a time, e.g. proposing): a click must not wait
for a proposal run to end, and the document is thread-safe.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot


@dataclass(frozen=True)
class PromptRequest:
    """One click or box: on `frame` of `document`; `click` (x, y, positive) or `box` (x0, y0, x1, y1)."""

    document: Any
    frame: int
    click: tuple[int, int, bool] | None = None
    box: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class PromptOutcome:
    """What the model did with a request: `value` (True when the mask changed) or `error` (with its
    traceback in `details`), and how long the model took."""

    request: PromptRequest
    value: Any = None
    error: BaseException | None = None
    details: str = ""
    seconds: float = 0.0


class PromptQueue(QObject):
    finished = Signal(object)  # PromptOutcome, delivered on the GUI thread

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vivim-prompt")
        self._futures: list[Future] = []
        self._lock = threading.Lock()
        self.pending = 0  # submitted, outcome not yet delivered (GUI thread only)
        self.finished.connect(self._delivered)

    def submit(self, request: PromptRequest, function: Callable[[], Any]) -> None:
        """Run `function()` after every request submitted before it; `finished(PromptOutcome)` follows."""
        def run() -> None:
            started = time.perf_counter()
            try:
                outcome = PromptOutcome(request, value=function(), seconds=time.perf_counter() - started)
            except BaseException as exc:  # reported on the GUI thread, which tells the user
                outcome = PromptOutcome(request, error=exc, details=traceback.format_exc(),
                                        seconds=time.perf_counter() - started)
            self.finished.emit(outcome)  # queued to the GUI thread (this object lives there)

        self.pending += 1
        with self._lock:
            self._futures = [f for f in self._futures if not f.done()]
            self._futures.append(self._executor.submit(run))

    @Slot(object)
    def _delivered(self, _outcome: PromptOutcome) -> None:
        self.pending = max(0, self.pending - 1)

    def drain(self) -> int:
        """Drop the requests not started yet and wait for the one running (before its document closes);
        returns how many were dropped."""
        with self._lock:
            futures, self._futures = self._futures, []
        dropped = sum(1 for f in futures if f.cancel())
        self.pending = max(0, self.pending - dropped)
        wait([f for f in futures if not f.cancelled()])
        return dropped

    def close(self) -> None:
        self.drain()
        self._executor.shutdown(wait=True)
