"""The lesions of a frame as the clinical outputs (report, DICOM-SEG) see them: one bool mask per lesion id, and
each lesion's own status and origin.

    lesion_masks(document, 12)        # {1: bool (H, W), 2: bool (H, W)}: the lesions present in frame 12
    lesion_status(document, 12, 2)    # FrameStatus of lesion 2 on frame 12
    lesion_from_model(document, 12, 2)  # True when a model (or optical flow) made lesion 2's pixels there

The masks come from the frame's label map (`document.labels(i)`: uint8 (H, W), 0 background, 1..N lesion ids);
an id names the same lesion on every frame of the clip (`lesion_tracking`), so a report row or a DICOM-SEG
segment follows one nodule through the video.
"""

from __future__ import annotations

import numpy as np

from .status import HUMAN, FrameStatus


def lesion_masks(document, frame: int) -> dict[int, np.ndarray]:
    """{lesion id: bool (H, W)} of the lesions present (non-empty) in `frame`, in increasing id."""
    label_map = np.asarray(document.labels(frame))
    return {int(k): label_map == k for k in np.unique(label_map) if k != 0}


def lesion_status(document, frame: int, lesion: int) -> FrameStatus:
    """The lesion's review status on `frame` (the frame's when the record has no entry for it)."""
    record = document.lesion_record(frame, lesion)
    return record.status if record is not None else document.status(frame)


def lesion_from_model(document, frame: int, lesion: int) -> bool:
    """Whether the lesion's pixels on `frame` came from a model or optical flow rather than a human's hand
    (accepting a proposal leaves its origin: a semi-automatic segmentation)."""
    record = document.lesion_record(frame, lesion)
    origin = record.origin if record is not None else document.record(frame).mask_origin
    return (origin or HUMAN) != HUMAN
