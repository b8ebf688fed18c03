"""Background jobs: any Qt-free service call runs in a QThread, reporting progress through queued signals.

    runner = JobRunner(parent)
    runner.start("Proposing masks", lambda progress, cancel: service.propose(doc, progress=progress, cancel=cancel),
                 on_done=show_result)

The job function gets `progress(done, total)` and a `threading.Event` to poll (the services' contract,
`vivim_studio.services.jobs`). Nothing runs on the GUI thread and nothing pumps `processEvents()`: the worker's
signals are queued to the GUI thread, which stays free to paint and handle input. One job at a time (the
status bar shows it); starting a second one while busy is refused (returns False).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.03  # at most ~30 progress updates a second reach the GUI (the last one always does)

JobFunction = Callable[[Callable[[int, int], None], threading.Event], Any]


class _Worker(QObject):
    progress = Signal(int, int)
    succeeded = Signal(object)
    failed = Signal(object, str)  # the exception, its formatted traceback

    def __init__(self, function: JobFunction, cancel: threading.Event):
        super().__init__()
        self._function, self._cancel = function, cancel
        self._last_progress = 0.0

    def _report(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - self._last_progress >= PROGRESS_INTERVAL_S:
            self._last_progress = now
            self.progress.emit(int(done), int(total))

    @Slot()
    def run(self) -> None:
        try:
            result = self._function(self._report, self._cancel)
        except BaseException as exc:  # reported to the GUI thread, which decides how to tell the user
            self.failed.emit(exc, traceback.format_exc())
        else:
            self.succeeded.emit(result)
        finally:
            self.thread().quit()  # the thread ends with its job, so that `JobRunner.wait` (closing) can return


class JobRunner(QObject):
    """Runs one job at a time on its own QThread; signals arrive on the GUI thread."""

    started = Signal(str)  # title
    progress = Signal(str, int, int)  # title, done, total
    finished = Signal(str)  # title; after on_done / on_error ran (also after a failure), which may have
    # started the next job already: check `busy`, not the order of signals

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: _Worker | None = None
        self._cancel = threading.Event()
        self.title = ""
        self._on_done: Callable[[Any], None] | None = None
        self._on_error: Callable[[BaseException, str], None] | None = None
        self.cancel_requested = False

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def start(self, title: str, function: JobFunction, on_done: Callable[[Any], None] | None = None,
              on_error: Callable[[BaseException, str], None] | None = None) -> bool:
        if self.busy:
            return False
        self.title, self._on_done, self._on_error = title, on_done, on_error
        self._cancel = threading.Event()
        self.cancel_requested = False
        thread = QThread()
        thread.setObjectName(f"vivim-job: {title}")
        worker = _Worker(function, self._cancel)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.progress.connect(self._on_progress)
        worker.succeeded.connect(self._on_succeeded)
        worker.failed.connect(self._on_failed)
        self._thread, self._worker = thread, worker
        thread.start()
        self.started.emit(title)
        return True

    def cancel(self) -> None:
        """Ask the job to stop at its next check (the job keeps what it finished)."""
        if self.busy:
            self.cancel_requested = True
            self._cancel.set()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the thread ended (closing the window; tests). True if no thread is left running."""
        thread = self._thread
        return thread is None or thread.wait(timeout_ms)

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        self.progress.emit(self.title, done, total)

    @Slot(object)
    def _on_succeeded(self, result: Any) -> None:
        callback, title = self._on_done, self.title
        self._end()
        if callback is not None:
            self._call(callback, result)
        self.finished.emit(title)

    @Slot(object, str)
    def _on_failed(self, error: BaseException, details: str) -> None:
        callback, title = self._on_error, self.title
        self._end()
        log.info("job %r failed: %s", title, error)
        if callback is not None:
            self._call(callback, error, details)
        self.finished.emit(title)

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:  # a broken callback must not leave the runner busy; the excepthook reports it
            import sys

            sys.excepthook(*sys.exc_info())

    def _end(self) -> None:
        thread, worker = self._thread, self._worker
        self._thread = self._worker = None
        if thread is not None:
            thread.quit()
            thread.wait()  # returns at once: the worker's run() has returned before its last signal arrived
            worker.deleteLater()
            thread.deleteLater()
