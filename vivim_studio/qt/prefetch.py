"""Decode-ahead for scrubbing: the frames next to the one shown are decoded, converted for display and their
masks decoded on a background thread, in the direction the user is moving, so that the GUI thread finds the
next frame ready instead of decoding it (a 1080p video frame: ~4 ms to decode, a 1080p mask: ~8 ms).

Qt-free (a Python thread): the document is thread-safe, and the decoders it calls (OpenCV) release the GIL,
so the work really runs beside the GUI thread on a second core.
"""

from __future__ import annotations

import logging
import threading

import cv2
import numpy as np

log = logging.getLogger(__name__)

AHEAD = 6  # frames prepared in the direction of travel (the document keeps 16 decoded masks: room to spare)
BEHIND = 2  # frames kept behind the current one (stepping back is instant)


def to_display(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> uint8 (H, W, 4) B, G, R, 255: QImage.Format_RGB32 on little-endian machines, the
    format Qt draws fastest."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)


def blank_display(height: int, width: int) -> np.ndarray:
    display = np.zeros((height, width, 4), np.uint8)
    display[..., 3] = 255
    return display


class FramePrefetcher:
    """`frame(i)`: the display image of frame i (prepared already, or made now on the calling thread); each
    call also tells the background thread where the user is, and which way they are going."""

    def __init__(self, document, ahead: int = AHEAD, behind: int = BEHIND):
        self.document = document
        self.ahead, self.behind = ahead, behind
        self._ready: dict[int, np.ndarray] = {}
        self._failed: set[int] = set()  # frames that could not be decoded: the GUI thread reports those itself
        self._current, self._direction = document.current_frame, 1
        self._condition = threading.Condition()
        self._stopping = False
        self.hits = self.misses = 0
        self._thread = threading.Thread(target=self._run, name="vivim-prefetch", daemon=True)

    def start(self) -> None:
        """Start decoding ahead (the canvas starts it once the first frame is up: no competition for it)."""
        if not self._thread.is_alive() and not self._stopping:
            self._thread.start()

    def frame(self, index: int) -> np.ndarray:
        """uint8 (H, W, 4) display image of frame `index`. Raises what `document.frame` raises."""
        with self._condition:
            display = self._ready.get(index)
        if display is None:
            self.misses += 1
            display = to_display(self.document.frame(index))
            with self._condition:
                self._ready[index] = display
        else:
            self.hits += 1
        self._move_to(index)
        return display

    def forget(self, index: int | None = None) -> None:
        """Drop prepared frames (all with None), e.g. after the source changed."""
        with self._condition:
            if index is None:
                self._ready.clear()
                self._failed.clear()
            else:
                self._ready.pop(index, None)
                self._failed.discard(index)

    def close(self, timeout: float = 5.0) -> None:
        with self._condition:
            self._stopping = True
            self._ready.clear()
            self._condition.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # the background thread -------------------------------------------------------------------------------
    def _move_to(self, index: int) -> None:
        with self._condition:
            if index != self._current:
                self._direction = 1 if index > self._current else -1
            self._current = index
            for stale in [i for i in self._ready if not self._wanted_near(i)]:
                del self._ready[stale]
            self._condition.notify_all()

    def _wanted_near(self, index: int) -> bool:
        offset = (index - self._current) * self._direction
        return -self.behind <= offset <= self.ahead

    def _next_wanted(self) -> int | None:
        for step in range(1, self.ahead + 1):
            index = self._current + self._direction * step
            if not 0 <= index < self.document.num_frames:
                return None
            if index not in self._ready and index not in self._failed:
                return index
        return None

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._stopping or self._next_wanted() is not None)
                if self._stopping:
                    return
                index = self._next_wanted()
            try:
                display = to_display(self.document.frame(index))
                self.document.mask(index)  # warms the document's decoded-mask cache for the same frame
            except Exception as exc:  # a frame that cannot be decoded: the GUI thread meets and reports it itself
                log.debug("prefetch of frame %d failed: %s", index, exc)
                with self._condition:
                    self._failed.add(index)
                continue
            with self._condition:
                if not self._stopping and self._wanted_near(index):
                    self._ready[index] = display
