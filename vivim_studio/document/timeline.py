"""Per-frame summaries for the timeline and review navigation, read from the records (no mask decoding, so
they stay instant on a 10,000-frame video). Mixed into `VideoDocument`."""

from __future__ import annotations

import numpy as np

from .status import FrameRecord, FrameStatus


class TimelineMixin:
    def _records_snapshot(self) -> dict[int, FrameRecord]:
        """A consistent copy of the frame records while a worker may be adding some. dict.copy() runs in C
        under the GIL (no Python code, no iteration a concurrent insert could break), so readers need not
        take the document lock, which a worker holds while it writes files (the GUI must not wait for that)."""
        return self._records.copy()

    def statuses(self) -> list[FrameStatus]:
        """Review status of every frame, in order."""
        records, unreviewed = self._records_snapshot(), FrameStatus.UNREVIEWED
        return [records[i].status if i in records else unreviewed for i in range(self.num_frames)]

    def propagated(self) -> np.ndarray:
        """bool (T,): the frames proposed by optical flow (`FrameRecord.propagated`)."""
        out = np.zeros(self.num_frames, bool)
        for i, r in self._records_snapshot().items():
            out[i] = r.propagated
        return out

    def status_counts(self) -> dict[FrameStatus, int]:
        counts = {s: 0 for s in FrameStatus}
        for record in self._records_snapshot().values():
            counts[record.status] += 1
        counts[FrameStatus.UNREVIEWED] += self.num_frames - sum(counts.values())
        return counts

    def areas(self) -> np.ndarray:
        """int64 (T,) mask pixel counts."""
        out = np.zeros(self.num_frames, np.int64)
        for i, r in self._records_snapshot().items():
            out[i] = r.area
        return out

    def lesion_areas(self, lesion: int) -> np.ndarray:
        """int64 (T,) pixel count of lesion `lesion` on each frame (0 where absent), from the records."""
        out = np.zeros(self.num_frames, np.int64)
        for i, r in self._records_snapshot().items():
            found = r.lesion(lesion)
            if found is not None:
                out[i] = found.area
        return out

    def lesion_presence(self) -> tuple[list[int], np.ndarray]:
        """(ids, bool (len(ids), T)): every lesion id used in the video, increasing, and the frames each is on
        (from the records)."""
        records = self._records_snapshot()
        ids = sorted({k for r in records.values() for k in r.lesion_ids})
        row = {k: n for n, k in enumerate(ids)}
        out = np.zeros((len(ids), self.num_frames), bool)
        for i, r in records.items():
            for k in r.lesion_ids:
                out[row[k], i] = True
        return ids, out

    def confidences(self) -> np.ndarray:
        """float32 (T,) proposal confidence per frame (`codec.proposal_confidence`), NaN without a proposal."""
        out = np.full(self.num_frames, np.nan, np.float32)
        for i, r in self._records_snapshot().items():
            if r.confidence is not None:
                out[i] = r.confidence
        return out

    def frames_with_status(self, *statuses: FrameStatus) -> list[int]:
        return [i for i, s in enumerate(self.statuses()) if s in statuses]

    def next_frame_with_status(self, start: int, *statuses: FrameStatus, step: int = 1) -> int | None:
        """The first frame after `start` (before it with step=-1) whose status is one of `statuses`, wrapping
        around; None if there is none. E.g. "next unreviewed": next_frame_with_status(i, UNREVIEWED, PROPOSED)."""
        wanted = set(statuses)
        records = self._records_snapshot()
        for k in range(1, self.num_frames + 1):
            index = (start + step * k) % self.num_frames
            if records.get(index, FrameRecord()).status in wanted:
                return index
        return None

    def next_low_confidence(self, start: int, below: float = 0.8, step: int = 1) -> int | None:
        """The next not-yet-accepted frame whose proposal confidence is under `below` (wrapping), or None."""
        records = self._records_snapshot()
        for k in range(1, self.num_frames + 1):
            index = (start + step * k) % self.num_frames
            record = records.get(index)
            if (record is not None and record.confidence is not None and record.confidence < below
                    and record.status != FrameStatus.ACCEPTED):
                return index
        return None
