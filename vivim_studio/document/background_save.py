"""Durable saves on a background thread, for an interactive editor (the Studio turns it on; scripts and the
command line keep saving before each call returns).

A durable save of one edit costs several fsyncs (tens of milliseconds on an ordinary disk): longer than a
frame of a 60 Hz display. With a `BackgroundSaver` an edit returns once it is applied in memory (and its views
are notified); the saver thread then writes every unsaved frame durably, exactly as the synchronous save would.

Crash safety is unchanged in kind: each file is still replaced atomically, so a killed process leaves each frame
either as it was or as it became, and the next edit waits until the previous one is on disk
(`wait_idle`), so at most one edit - the latest - is ever not yet saved. Synchronous saving loses the edit in
progress too; here that edit is the one being written while the user already sees it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class BackgroundSaver:
    """Runs `save()` on one daemon thread whenever `request()`ed; `on_error(exc)` hears of failed saves (the
    document keeps the unsaved frames and writes them with the next save)."""

    def __init__(self, save: Callable[[], None], on_error: Callable[[BaseException], None], name: str = "save"):
        self._save, self._on_error = save, on_error
        self._condition = threading.Condition()
        self._requested = False
        self._busy = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"vivim-{name}", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> bool:
        """A save is requested or running."""
        with self._condition:
            return self._requested or self._busy

    def request(self) -> None:
        with self._condition:
            if self._stopping:
                raise RuntimeError("the background saver is closed")
            self._requested = True
            self._condition.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no save is requested or running (True), or the timeout passed (False)."""
        with self._condition:
            return self._condition.wait_for(lambda: not (self._requested or self._busy), timeout)

    def close(self, timeout: float | None = None) -> None:
        """Finish the requested saves, then stop the thread."""
        self.wait_idle(timeout)
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._requested or self._stopping)
                if not self._requested:
                    return  # stopping, nothing left to save
                self._requested, self._busy = False, True
            try:
                self._save()
            except BaseException as exc:  # reported to the document's owner; the frames stay unsaved
                log.warning("background save failed: %s", exc)
                try:
                    self._on_error(exc)
                except Exception:
                    log.exception("the save-failure callback failed")
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()
