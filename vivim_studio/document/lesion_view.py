"""The lesions of a frame as the clinical outputs (report, DICOM-SEG) see them: one bool mask per lesion number.

    lesion_masks(document, 12)      # {1: bool (H, W), 2: bool (H, W)}: the lesions present in frame 12

A document with lesion label maps (`document.labels(i)`: uint8 (H, W), 0 background, 1..N lesions) gives one
mask per label present; a document without them has one lesion, its mask (numbered 1). This is the only place
the clinical outputs read masks, so they follow the document's lesions either way.
"""

from __future__ import annotations

import numpy as np


def lesion_masks(document, frame: int) -> dict[int, np.ndarray]:
    """{lesion number: bool (H, W)} of the lesions present (non-empty) in `frame`, in increasing number."""
    labels = getattr(document, "labels", None)
    if labels is None:
        mask = np.asarray(document.mask(frame), dtype=bool)
        return {1: mask} if mask.any() else {}
    label_map = np.asarray(labels(frame))
    return {int(k): label_map == k for k in np.unique(label_map) if k != 0}
