"""Memory on a long video is bounded by design: the decoded-frame cache keeps to its byte budget, masks are
held compressed, saved probability maps leave memory, and the undo history keeps to its budget. Checked by
counting the bytes each store holds, not by measuring the process (the resident-memory figures of a
10,000-frame 1080p video come from benchmarks/document_memory.py)."""

from __future__ import annotations

import numpy as np

from vivim_studio.document import VideoDocument
from vivim_studio.document.history import FrameState, UndoHistory
from vivim_studio.document.status import FrameRecord

from .helpers import make_frames, write_video

FRAMES, HEIGHT, WIDTH = 240, 96, 128
FRAME_BYTES = HEIGHT * WIDTH * 3
CACHED_FRAMES = 8


def test_stepping_through_a_long_video_keeps_every_store_within_its_budget(tmp_path):
    frames, masks = make_frames(FRAMES, HEIGHT, WIDTH)
    video = write_video(tmp_path / "long.avi", frames, fourcc="MJPG")
    budget = CACHED_FRAMES * FRAME_BYTES
    drawn, largest_cache = 0, 0
    with VideoDocument.open(video, tmp_path / "long.vivim", cache_bytes=budget) as document:
        for t in range(FRAMES):  # as scrubbing through it while reviewing does
            document.current_frame = t
            document.frame(t)
            largest_cache = max(largest_cache, document.source.cache.nbytes)
            if t % 4 == 0:
                document.set_mask(t, masks[t])
                drawn += 1
            if t % 50 == 0:
                document.set_proposal(t, masks[t].astype(np.float32) * 0.9, model="0" * 64, overwrite_reviewed=True,
                                      durable=False)
        assert largest_cache <= budget and len(document.source.cache) == CACHED_FRAMES
        assert FRAMES * FRAME_BYTES > 25 * budget  # the video decoded whole would be far more
        held = document.masks.memory_bytes()  # masks (1-bit PNG) and probability maps not yet written
        encoded_masks = sum(len(document.masks.mask_bytes(t) or b"") for t in range(FRAMES))
        assert held == encoded_masks < drawn * HEIGHT * WIDTH / 8  # masks below a bit a pixel; no map held ...
        assert document.masks.probability(0) is not None  # ... the written maps are read back from the workspace


def test_undo_history_keeps_to_its_byte_budget():
    history = UndoHistory(depth=100, budget_bytes=10_000)
    state = FrameState(mask=bytes(800), record=FrameRecord())
    for step in range(500):
        history.record(step % 40, "brush stroke", state)
        assert history.nbytes <= 10_000
    assert history.can_undo(499 % 40)  # the latest edit stays undoable
    assert not history.can_undo(0)  # the least recently edited frames gave their steps up first
