"""The editing process of the crash test: opens a workspace, performs a deterministic sequence of edits and
prints `DONE <n>` after each one returns (so the parent knows which edits completed), until it is killed.

    python crash_editor.py VIDEO WORKSPACE SEED

`perform_edit(doc, seed, n)` is shared with the parent, which replays the sequence to know the expected state.
"""

from __future__ import annotations

import hashlib
import sys

import numpy as np

from vivim_studio.document import VideoDocument

EDITED_FRAMES = 6


def perform_edit(doc: VideoDocument, seed: int, n: int) -> None:
    """Edit number `n` of the sequence `seed` (deterministic)."""
    rng = np.random.default_rng([seed, n])
    frame = int(rng.integers(0, EDITED_FRAMES))
    h, w = doc.frame_size
    op = rng.choice(["stroke", "stroke", "stroke", "erase", "accept", "clear", "undo", "redo", "propose",
                     "polygon", "threshold"])
    points = rng.uniform([0, 0], [w, h], size=(int(rng.integers(1, 6)), 2))
    if op in ("stroke", "erase"):
        stroke = doc.stroke(frame, radius=float(rng.uniform(1, 6)), erase=op == "erase")
        for point in points:  # painted incrementally, as the GUI does
            stroke.add_points([point])
        stroke.finish()
    elif op == "accept":
        doc.accept(frame)
    elif op == "clear":
        doc.clear(frame)
    elif op == "undo":
        doc.undo(frame)
    elif op == "redo":
        doc.redo(frame)
    elif op == "propose":
        centre = rng.uniform([0, 0], [w, h])
        yy, xx = np.mgrid[0:h, 0:w]
        probability = np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * 8.0 ** 2)).astype(np.float32)
        doc.set_proposal(frame, probability, model="f" * 64)
    elif op == "polygon" and len(points) >= 3:
        doc.add_polygon(frame, points, subtract=bool(rng.integers(0, 2)))
    elif op == "threshold" and doc.probability(frame) is not None:
        doc.rethreshold(frame, float(rng.uniform(0.2, 0.8)))


def fingerprint(doc: VideoDocument) -> list[tuple]:
    """Everything saved per frame except timestamps."""
    out = []
    for i in range(doc.num_frames):
        r = doc.record(i)
        prob = doc.masks.probability(i)
        out.append((hashlib.sha256(np.packbits(doc.mask(i))).hexdigest()[:16], r.status.value, r.mask_origin,
                    r.model, r.threshold, r.area, None if prob is None else hashlib.sha256(prob).hexdigest()[:16]))
    return out


def main(video: str, workspace: str, seed: int) -> None:
    doc = VideoDocument.open(video, workspace)
    print("READY", flush=True)
    n = 0
    while True:
        perform_edit(doc, seed, n)
        print(f"DONE {n}", flush=True)
        n += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
